"""On-disk cache helpers shared by the speech and scene generators.

Everything is written to a temporary file in the destination directory and then moved into
place with os.replace, so an aborted or concurrent run never leaves a half-written entry.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Root of the test cache: $MADOGUCHI_TEST_CACHE or ~/.cache/madoguchi-tests."""
    base = os.environ.get("MADOGUCHI_TEST_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "madoguchi-tests")
    return Path(base)


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON rendering; sort_keys keeps it independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_array(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_array(path: Path) -> np.ndarray | None:
    """The cached array, or None when missing or unreadable (then the caller regenerates)."""
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:  # truncated by something outside our atomic writes
        log.warning("ignoring unreadable cache entry %s: %s", path, e)
        return None
