"""What ``madoguchi models …`` runs: list, fetch, verify, import, convert, lock.

Each helper prints to ``out`` and returns 0, or raises a ``ModelError``/``ManifestError``
(a ``MadoguchiError``: the CLI prints it as one line and exits non-zero). ``models_dir``,
``manifest`` and ``lock`` default to $MADOGUCHI_MODELS_DIR or /var/lib/madoguchi/models, the
repository's (or installed) models/manifest.toml, and manifest.lock next to it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

from madoguchi.models.errors import ModelError, ModelMissingError
from madoguchi.models.fetch import convert_model, fetch_model
from madoguchi.models.importer import import_model
from madoguchi.models.store import ModelStore, file_sha256

log = logging.getLogger(__name__)


def _store(models_dir: Path | None, manifest: Path | None, lock: Path | None) -> ModelStore:
    return ModelStore.open(models_dir, manifest, lock)


def _sources(entry) -> str:
    kinds = [s.describe() for s in entry.sources if s.kind != "upstream"]
    return kinds[0] if kinds else "upstream only (import)"


def models_list(out: TextIO = sys.stdout, *, models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """One line per model: id, engine, size, licence, status in the store (sizes only), source."""
    store = _store(models_dir, manifest, lock)
    out.write(f"# store: {store.root}  lock: {store.lock_path}\n")
    out.write(f"{'id':26} {'engine':23} {'MB':>5}  {'licence':22} {'status':10} source\n")
    for entry in store.manifest.models.values():
        licence = entry.licence + ("" if entry.commercial else " (NC)")
        out.write(f"{entry.id:26} {entry.engine:23} {entry.size_mb:5.0f}  {licence:22} {store.status(entry.id):10} {_sources(entry)}\n")
    return 0


def models_fetch(ids: list[str], accept_licence: bool = False, out: TextIO = sys.stdout, *, progress: bool = True, assets: Path | None = None,
                 models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """Fetch (or convert) each model; a model already present and verified is not fetched again."""
    store = _store(models_dir, manifest, lock)
    for model_id in ids:
        out.write(f"{model_id}: ok ({fetch_model(store, model_id, accept_licence, progress, assets)})\n")
    return 0


def models_convert(ids: list[str], out: TextIO = sys.stdout, *, progress: bool = True, assets: Path | None = None,
                   models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """(Re)make converted models (e.g. whisper-base-ggml-q8_0 from whisper-base-ct2), checked against the lock."""
    store = _store(models_dir, manifest, lock)
    for model_id in ids:
        entry = store.manifest.get(model_id)
        source = next((s for s in entry.sources if s.kind == "convert"), None)
        if source is None:
            raise ModelError(f"{model_id}: is not made by conversion; fix: `madoguchi models fetch {model_id}`", model_id)
        out.write(f"{model_id}: ok ({convert_model(store, entry, source, progress, assets)})\n")
    return 0


def models_verify(ids: list[str], out: TextIO = sys.stdout, *, progress: bool = False,
                  models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """Check presence, size and sha256 of each model (no ids: every model present in the store)."""
    store = _store(models_dir, manifest, lock)
    ids = ids or [m for m in store.manifest.models if store.status(m) != "absent"]
    failed: list[ModelError] = []
    for model_id in ids:
        try:
            store.verify(model_id, progress=progress)
            out.write(f"{model_id}: ok\n")
        except ModelError as err:
            out.write(f"{model_id}: FAILED [{err.code}] {err}\n")
            failed.append(err)
    if len(failed) == 1:
        raise failed[0]
    if failed:
        raise type(failed[0])(f"{len(failed)} of {len(ids)} models failed verification: {', '.join(e.model_id for e in failed)} (details above)", failed[0].model_id)
    if not ids:
        out.write(f"no models in {store.root}; fetch one with `madoguchi models fetch ID`\n")
    return 0


def models_import(model_id: str, folder: Path, accept_licence: bool = False, out: TextIO = sys.stdout, *, progress: bool = True,
                  models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """Copy a model from a folder or USB stick into the store, verified against the lock."""
    store = _store(models_dir, manifest, lock)
    out.write(f"{model_id}: imported ({import_model(store, model_id, Path(folder), accept_licence, progress)})\n")
    return 0


def models_lock(ids: list[str], out: TextIO = sys.stdout, *, models_dir: Path | None = None, manifest: Path | None = None, lock: Path | None = None) -> int:
    """Record (overwrite) the lock entries of models from the files now in the store: only on purpose."""
    store = _store(models_dir, manifest, lock)
    if not ids:
        raise ModelError("name the models to lock: `madoguchi models lock ID …` (it trusts the files now in the store)")
    for model_id in ids:
        entry, folder = store.manifest.get(model_id), store.folder(model_id)
        missing = [n for n in entry.files if not (folder / n).is_file()]
        if missing:
            raise ModelMissingError(f"{model_id}: cannot lock, {folder / missing[0]} is missing; fix: `madoguchi models fetch {model_id}` first", model_id, folder / missing[0])
        files = {n: {"size": (folder / n).stat().st_size, "sha256": file_sha256(folder / n)} for n in entry.files}
        store.set_lock(model_id, files)
        out.write(f"{model_id}: locked {len(files)} files in {store.lock_path}\n")
    return 0
