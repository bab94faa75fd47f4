"""The ASR stage's interface: one utterance in, one :class:`Transcription` out, whatever the engine.

``open_recognizer(settings)`` loads the configured backend once (whisper.cpp through pywhispercpp,
or faster-whisper on CTranslate2); ``transcribe`` is a blocking call made from the pipeline's
worker thread, one at a time per recognizer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from madoguchi.asr.errors import AsrAudioError, AsrBackendMissingError, AsrLanguageError, AsrModelIdError
from madoguchi.asr.filters import RejectionThresholds, compression_ratio, rejection_reason
from madoguchi.asr.vocabulary import echoes_prompt
from madoguchi.asr.window import SAMPLE_RATE, policy_from_settings
from madoguchi.languages import WHISPER

log = logging.getLogger(__name__)

MIN_SECONDS = 0.1  # whisper.cpp returns nothing for less than 100 ms
MAX_SECONDS = 30.0  # one Whisper window; the endpointer cuts utterances at 20 s
ENGINES = {"whisper.cpp": "whisper.cpp", "faster-whisper": "ctranslate2-whisper"}  # backend -> manifest engine


@dataclass(frozen=True)
class Transcription:
    text: str  # "" when rejected
    lang: str  # ISO 639-1
    lang_probability: float | None  # None when the language was fixed by the caller
    rejected: str | None  # None, or why it is not speech text: "no_speech" | "hallucination" | "repetition" | "low_confidence" | "empty"
    avg_logprob: float
    no_speech_prob: float | None
    compression_ratio: float
    encoder_frames: int  # encoder context used (1500 = full 30 s window)
    partial: bool = False
    lang_scores: Mapping[str, float] = field(default_factory=dict)  # candidate posteriors when identified


class SpeechRecognizer(Protocol):
    name: str  # "whisper.cpp q8_0" etc.

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, candidates: Sequence[str] = (),
                   priors: Mapping[str, float] | None = None, partial: bool = False) -> Transcription: ...

    def set_vocabulary(self, prompts: Mapping[str, str]) -> None:
        """Whisper's prompt per language (the site's terms, see vocabulary.py); {} for none."""
        ...

    def close(self) -> None: ...


def check_audio(audio: np.ndarray) -> np.ndarray:
    """Mono float32 16 kHz of 0.1..30 s, contiguous; anything else is the caller's bug."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise AsrAudioError(f"ASR wants mono audio (one dimension), got shape {audio.shape}")
    if audio.dtype != np.float32:
        if not np.issubdtype(audio.dtype, np.floating):
            raise AsrAudioError(f"ASR wants float32 samples in -1..1, got {audio.dtype}")
        audio = audio.astype(np.float32)
    seconds = len(audio) / SAMPLE_RATE
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise AsrAudioError(f"ASR takes {MIN_SECONDS}..{MAX_SECONDS:.0f} s of 16 kHz audio per utterance, got {seconds:.2f} s")
    if not np.isfinite(audio).all():
        raise AsrAudioError("ASR audio contains NaN or infinite samples")
    return np.ascontiguousarray(audio)


def check_languages(language: str | None, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidates to identify among (empty when ``language`` is fixed); raises on unknown codes."""
    if language is not None:
        if language not in WHISPER:
            raise AsrLanguageError(f"language {language!r} is not one Whisper knows; allowed: ISO 639-1 codes such as ja, en, zh, ko, vi")
        return ()
    unique = tuple(dict.fromkeys(candidates))
    if not unique:
        raise AsrLanguageError("transcribe(language=None) needs candidates: the languages to identify among")
    unknown = [code for code in unique if code not in WHISPER]
    if unknown:
        raise AsrLanguageError(f"candidate languages {unknown} are not ones Whisper knows; allowed: ISO 639-1 codes such as ja, en, zh, ko, vi")
    return unique


def finish(text: str, *, lang: str, lang_probability: float | None, lang_scores: Mapping[str, float], avg_logprob: float,
           no_speech_prob: float | None, encoder_frames: int, partial: bool, thresholds: RejectionThresholds,
           engine_rejected: str | None = None, prompt: str = "") -> Transcription:
    """Apply the rejection filters and build the result (shared by the backends)."""
    text = " ".join(text.split())  # Whisper starts segments with a space and may break lines
    ratio = compression_ratio(text)
    reason = engine_rejected or rejection_reason(text, avg_logprob=avg_logprob, no_speech_prob=no_speech_prob,
                                                 compression=ratio, thresholds=thresholds, lang=lang)
    if reason is None and echoes_prompt(text, prompt):
        reason = "hallucination"  # noise transcribed as the vocabulary prompt
    if reason:
        log.debug("rejected (%s) %r: avg_logprob %.2f, no_speech %s, compression %.2f", reason, text, avg_logprob, no_speech_prob, ratio)
    return Transcription(
        text="" if reason else text,
        lang=lang,
        lang_probability=lang_probability,
        rejected=reason,
        avg_logprob=avg_logprob,
        no_speech_prob=no_speech_prob,
        compression_ratio=ratio,
        encoder_frames=encoder_frames,
        partial=partial,
        lang_scores=dict(lang_scores),
    )


def unprompted_if_looping(decode: Callable[[str], Transcription], prompt: str) -> Transcription:
    """``decode(prompt)``, and once more without the prompt when those words loop: a prompt can lead
    the decoder round the site's terms (保険病悪ね、マイナンバーカード、転入届、転入届、転入届…), and the
    same audio without it may read as a sentence. The second words stand only if they pass the
    filters (one more pass, for those utterances only). Not for a recited prompt or a known
    hallucination: that is what noise under a prompt looks like, and noise should stay rejected."""
    heard = decode(prompt)
    if prompt and heard.rejected == "repetition":
        again = decode("")
        if again.rejected is None:
            log.debug("the prompt looped; without it the words stand: %r", again.text)
            return again
    return heard


def thresholds_from_settings(settings) -> RejectionThresholds:
    return RejectionThresholds(no_speech=settings.no_speech_threshold, logprob=settings.logprob_threshold,
                               compression_ratio=settings.compression_ratio_threshold)


def asr_model_ids(manifest=None) -> dict[str, str]:
    """ASR model ids of the manifest -> their backend name."""
    from madoguchi.models.manifest import load_manifest

    manifest = manifest or load_manifest()
    backends = {engine: backend for backend, engine in ENGINES.items()}
    return {mid: backends.get(entry.engine, entry.engine) for mid, entry in manifest.models.items() if entry.task == "asr"}


def resolve_model(settings, model_root: Path | None, model_path: Path | None) -> tuple[str, Path]:
    """(model id, verified file or folder). ``model_path`` skips the store (tests, benchmarks, imports)."""
    backend = settings.backend
    model_id = settings.model_id
    if model_path is not None:
        return model_id, Path(model_path)
    ids = asr_model_ids()
    if model_id not in ids:
        listed = ", ".join(f"{mid} ({b})" for mid, b in sorted(ids.items()))
        raise AsrModelIdError(f"[asr] model {model_id!r} is not an ASR model of models/manifest.toml; allowed: {listed}, or \"\" for the backend's default")
    if ids[model_id] != backend:
        fitting = ", ".join(mid for mid, b in sorted(ids.items()) if b == backend)
        raise AsrModelIdError(f"[asr] model {model_id!r} is a {ids[model_id]} model but [asr] backend is {backend!r}; allowed for {backend}: {fitting}")
    from madoguchi.models.store import ready_model

    return model_id, ready_model(model_id, root=model_root)  # raises ModelMissing/Truncated/Corrupt/UnlockedError


def open_recognizer(settings, *, model_root: Path | None = None, model_path: Path | None = None) -> SpeechRecognizer:
    """Load the ``[asr]`` backend and model once. Bad files raise ModelError subclasses naming the file
    and the fix (never a whisper.cpp abort); an unknown model id raises AsrModelIdError listing the ids."""
    model_id, path = resolve_model(settings, model_root, model_path)
    policy, thresholds = policy_from_settings(settings), thresholds_from_settings(settings)
    try:
        if settings.backend == "whisper.cpp":
            from madoguchi.asr.whispercpp import WhisperCppRecognizer as backend_class
        else:
            from madoguchi.asr.fasterwhisper import FasterWhisperRecognizer as backend_class
    except ImportError as err:
        package = "pywhispercpp" if settings.backend == "whisper.cpp" else "faster-whisper"
        raise AsrBackendMissingError(f"[asr] backend {settings.backend!r} needs the {package} package: {err}") from err
    recognizer = backend_class(path, model_id=model_id, threads=settings.threads, beam_size=settings.beam_size,
                               window=policy, thresholds=thresholds)
    log.info("ASR %s loaded from %s (window %s)", recognizer.name, path, "fitted" if policy.fitted else "full")
    return recognizer
