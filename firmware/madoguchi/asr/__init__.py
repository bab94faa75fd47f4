"""Speech recognition: one interface (:class:`SpeechRecognizer`), two backends (whisper.cpp through
pywhispercpp, faster-whisper on CTranslate2), a fitted encoder window for short utterances, language
identification among the site's candidates, and rejection of silence, noise and hallucinations."""

from madoguchi.asr.base import SpeechRecognizer, Transcription, asr_model_ids, open_recognizer
from madoguchi.asr.errors import (
    AsrAudioError,
    AsrBackendMissingError,
    AsrEngineError,
    AsrError,
    AsrLanguageError,
    AsrModelFileError,
    AsrModelIdError,
)

__all__ = [
    "AsrAudioError",
    "AsrBackendMissingError",
    "AsrEngineError",
    "AsrError",
    "AsrLanguageError",
    "AsrModelFileError",
    "AsrModelIdError",
    "SpeechRecognizer",
    "Transcription",
    "asr_model_ids",
    "open_recognizer",
]
