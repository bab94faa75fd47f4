"""The ASR stage's errors. Model files that are missing, truncated or corrupt raise the model
store's errors (:mod:`madoguchi.models.errors`), which name the file and the fix."""

from __future__ import annotations

from madoguchi.errors import MadoguchiError
from madoguchi.models.errors import ModelCorruptError


class AsrError(MadoguchiError):
    """Base of the ASR stage's own errors."""

    code = "asr_error"


class AsrModelIdError(AsrError, ValueError):
    """``[asr] model`` names no ASR model of the manifest, or one the backend cannot run."""

    code = "asr_model_unknown"


class AsrModelFileError(ModelCorruptError):
    """A model file passed the store's checks (or was given by path) but the engine cannot load it."""

    code = "asr_model_unloadable"


class AsrBackendMissingError(AsrError, ImportError):
    """The engine's Python package (pywhispercpp, faster-whisper) is not installed."""

    code = "asr_backend_missing"


class AsrAudioError(AsrError, ValueError):
    """The audio handed to ``transcribe`` is not mono float32 16 kHz of a usable length."""

    code = "asr_bad_audio"


class AsrLanguageError(AsrError, ValueError):
    """A language the model does not know, or identification asked for with no candidates."""

    code = "asr_bad_language"


class AsrEngineError(AsrError, RuntimeError):
    """The engine failed while transcribing (a non-zero status from whisper.cpp, a CTranslate2 error)."""

    code = "asr_engine_failed"
