"""Import a model from a folder or USB stick (offline sites), verified against the lock, atomically.

The files are copied (and hashed while copied) into a temp folder inside the store, checked
against the lock, and only then renamed into place: a corrupt or incomplete import is refused
and leaves the installed model as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from madoguchi.models.errors import ModelError, ModelMissingError
from madoguchi.models.store import ModelStore, Progress, copy_hashing

log = logging.getLogger(__name__)


def find_source_folder(model_id: str, folder: Path, files: tuple[str, ...]) -> Path:
    """The folder holding the model's files: FOLDER itself, or FOLDER/<id> (a stick carrying several models)."""
    for candidate in (folder, folder / model_id):
        if all((candidate / name).is_file() for name in files):
            return candidate
    base = folder / model_id if (folder / model_id).is_dir() else folder
    missing = next(name for name in files if not (base / name).is_file())
    raise ModelMissingError(f"{model_id}: cannot import from {folder}: {base / missing} is missing (the model needs {', '.join(files)}); "
                            f"fix: copy the whole model folder onto the stick, as FOLDER or FOLDER/{model_id}", model_id, base / missing)


def import_model(store: ModelStore, model_id: str, folder: Path, accept_licence: bool = False, progress: bool = True) -> Path:
    """Copy a model into the store, verify it against the lock (recording it if unlocked), swap it in."""
    entry = store.manifest.get(model_id)
    store.check_licence(entry, accept_licence, "import")
    src = find_source_folder(model_id, Path(folder), entry.files)
    staged = store.scratch(f"import-{model_id}")
    try:
        files = {}
        for name in entry.files:
            dst = staged / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            bar = Progress(f"import {model_id}/{name}", (src / name).stat().st_size, enabled=progress)
            try:
                with (src / name).open("rb") as fin, dst.open("wb") as fout:
                    size, sha = copy_hashing([fin], fout, bar.update)
                    fout.flush()
                    os.fsync(fout.fileno())
            finally:
                bar.close()
            files[name] = {"size": size, "sha256": sha}
        locked = store.locked(model_id)
        if locked:
            try:
                store.verify(model_id, folder=staged)
            except ModelError as err:
                where = src / err.file.name if err.file is not None else src
                raise type(err)(f"{model_id}: import refused, {where} does not match {store.lock_path} ({err.code}); "
                                f"the installed model was not touched. fix: copy {model_id} again from a good source", model_id, where) from None
        store.install_folder(model_id, staged)
        if not locked:
            store.set_lock(model_id, files)
            log.warning("%s: not in the lock yet; recorded the sha256 of the imported files in %s", model_id, store.lock_path)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    log.info("%s imported from %s", model_id, src)
    return store.folder(model_id)
