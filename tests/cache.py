"""The tests' on-disk cache: where it lives, how entries are keyed, how they are written.

Every generated artefact (speech clips, simulated scenes, converted or generated models) is
keyed on what made it: its inputs, the source of the code that generates it, and the versions
of the libraries and tools that shape its output (``made_by``). A change to any of them makes a
new entry, so a warm cache can never hide what a fresh machine would produce. Entries are
written to a temporary file beside their place and moved in with os.replace, so an aborted or
concurrent run never leaves a half-written one.

One root holds it all: $MADOGUCHI_TEST_CACHE, default ~/.cache/madoguchi-tests. Point it at
an empty folder to run the suite as a fresh machine would (weights are fetched again too,
unless $MADOGUCHI_MODEL_CACHE names another place for them).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def cache_root() -> Path:
    """Root of the test cache: $MADOGUCHI_TEST_CACHE or ~/.cache/madoguchi-tests."""
    base = os.environ.get("MADOGUCHI_TEST_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "madoguchi-tests")
    return Path(base)


def model_cache_root() -> Path:
    """Fetched and converted weights: $MADOGUCHI_MODEL_CACHE, else ``models`` under the test cache."""
    base = os.environ.get("MADOGUCHI_MODEL_CACHE")
    return Path(base) if base else cache_root() / "models"


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON rendering; sort_keys keeps it independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@functools.cache
def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def tool_version(*command: str) -> str:
    """The first line a tool prints of its version (e.g. ``espeak-ng --version``)."""
    try:
        out = subprocess.run(list(command), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "absent"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "absent"


@functools.cache
def _source_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def made_by(code: Iterable[str | Path], packages: Iterable[str] = (), tools: Iterable[tuple[str, ...]] = ()) -> dict[str, Any]:
    """What shapes a generated artefact besides its inputs: code, library and tool versions, CPU kind."""
    return {
        "code": {Path(c).name: _source_digest(str(c)) for c in code},
        "packages": {name: package_version(name) for name in packages},
        "tools": {" ".join(cmd): tool_version(*cmd) for cmd in tools},
        "machine": platform.machine(),
    }


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
