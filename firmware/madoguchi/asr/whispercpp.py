"""whisper.cpp through pywhispercpp's low-level binding (``_pywhispercpp``).

Decoding: greedy (beam search when ``[asr] beam_size`` > 1, never for partials), no timestamps and
one segment (a single encoder pass per utterance: with timestamps whisper.cpp may seek and encode
again), no text carried over between utterances, no temperature fallback (a fallback re-decodes
up to five times; on a counter a quick rejection beats a slow guess), blank and non-speech tokens
suppressed, and a token budget proportional to the audio so a decoding loop cannot run for seconds.

Language identification (``language=None``): ``whisper_lang_auto_detect`` encodes the mel already
in the state with whatever ``audio_ctx`` the *previous* ``whisper_full`` call stored there (the
state's ``exp_n_audio_ctx``; whisper_full itself detects before it stores the new value). To make
identification deterministic and cheap we set that context first with a ``whisper_full`` call that
is given no samples (the utterance's mel stays in the state) and an encoder-begin callback that
stops it before any encoding; whisper.cpp stores ``audio_ctx`` before it asks the callback. The
transcription pass then reuses that mel too. Two encoder passes remain (pywhispercpp cannot hand
an encoder output to the decoder), but the identifying one uses the short language-ID context.

No-speech probability: whisper.cpp computes it but pywhispercpp does not expose it, so
``no_speech_prob`` is None. whisper.cpp applies Whisper's rule itself (no segment when no-speech
> threshold and average log-probability < threshold): an utterance with no segment is reported as
``no_speech``. The other filters (hallucinations, loops, low confidence) run on the text.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from madoguchi.asr.base import Transcription, check_audio, check_languages, finish, unprompted_if_looping
from madoguchi.asr.errors import AsrEngineError, AsrModelFileError
from madoguchi.asr.filters import RejectionThresholds
from madoguchi.asr.langid import choose_language
from madoguchi.asr.window import FULL_FRAMES, SAMPLE_RATE, WindowPolicy
from madoguchi.models.errors import ModelCorruptError, ModelMissingError, ModelTruncatedError
from madoguchi.models.ggml import GgmlFormatError, check_ggml_file

log = logging.getLogger(__name__)

_open: weakref.WeakSet = weakref.WeakSet()
_logging_routed = False


def _route_whisper_logs(pw) -> None:
    """whisper.cpp's log lines go to Python logging at DEBUG (they would flood stderr otherwise)."""
    global _logging_routed
    if _logging_routed:
        return
    engine_log = logging.getLogger("madoguchi.asr.whisper_cpp")
    pw.whisper_log_set(lambda level, text: engine_log.debug("%s", text.rstrip()))
    _logging_routed = True

    @atexit.register
    def _unroute() -> None:
        # a Python log callback must not outlive the interpreter: whisper.cpp logs while contexts
        # are freed, and a callback during finalisation aborts the process
        for recognizer in list(_open):
            recognizer.close()
        pw.whisper_log_set(None)


def tokens_budget(seconds: float) -> int:
    """Generous for real speech (about 5 tokens/s in Japanese, fewer in English) but bounded."""
    return int(min(220, 24 + 16 * seconds))


def _ggml_file(path: Path, model_id: str) -> Path:
    if path.is_dir():
        found = sorted(path.glob("ggml-*.bin")) or sorted(path.glob("*.bin"))
        if not found:
            raise ModelMissingError(f"{model_id}: no ggml model file in {path}; fix: `madoguchi models convert {model_id}`", model_id, path)
        path = found[0]
    fix = f"fix: `madoguchi models verify {model_id}`, then `madoguchi models convert {model_id}` (or fetch)"
    if not path.is_file():
        raise ModelMissingError(f"{model_id}: {path} does not exist; {fix}", model_id, path)
    try:
        check_ggml_file(path)
    except GgmlFormatError as err:
        error_class = ModelTruncatedError if "truncated" in str(err) else ModelCorruptError
        raise error_class(f"{model_id}: {err}; {fix}", model_id, path) from err
    return path


class WhisperCppRecognizer:
    def __init__(self, path: Path, *, model_id: str, threads: int = 2, beam_size: int = 1,
                 window: WindowPolicy = WindowPolicy(), thresholds: RejectionThresholds = RejectionThresholds(),
                 flash_attention: bool = True) -> None:
        import _pywhispercpp as pw

        self._pw = pw
        self.model_file = _ggml_file(Path(path), model_id)  # whisper.cpp aborts the process on some bad files
        _route_whisper_logs(pw)
        context_params = pw.whisper_context_default_params()
        context_params.flash_attn = flash_attention  # faster; safe with contexts in whole multiples of 256 (window.py)
        self._ctx = pw.whisper_init_from_file_with_params(str(self.model_file), context_params)
        if self._ctx is None:
            raise AsrModelFileError(f"{model_id}: whisper.cpp could not load {self.model_file}; fix: `madoguchi models convert {model_id}`", model_id, self.model_file)
        quant = {1: "f16", 0: "f32", 7: "q8_0", 8: "q5_0"}.get(pw.whisper_model_ftype(self._ctx) % 1000, "ggml")
        self.name = f"whisper.cpp {quant}"
        self.threads, self.beam_size, self.window, self.thresholds = threads, beam_size, window, thresholds
        self._languages = [pw.whisper_lang_str(i) for i in range(pw.whisper_lang_max_id() + 1)]
        self._greedy = self._params(1)
        self._beam = self._params(beam_size) if beam_size > 1 else self._greedy
        self._ctx_setter = self._params(1)
        self._ctx_setter.language = "en"  # any fixed language: no detection inside whisper_full
        pw.assign_encoder_begin_callback(self._ctx_setter, lambda _ctx: False)
        self._prompts: dict[str, str] = {}
        self._lock = threading.Lock()
        _open.add(self)

    def set_vocabulary(self, prompts: Mapping[str, str]) -> None:
        with self._lock:
            self._prompts = dict(prompts)

    def _params(self, beam_size: int):
        pw = self._pw
        strategy = pw.whisper_sampling_strategy.WHISPER_SAMPLING_BEAM_SEARCH if beam_size > 1 else pw.whisper_sampling_strategy.WHISPER_SAMPLING_GREEDY
        p = pw.whisper_full_default_params(strategy)
        p.n_threads = self.threads
        p.no_context = True
        p.no_timestamps = True
        p.single_segment = True
        p.print_progress = p.print_realtime = p.print_timestamps = p.print_special = False
        p.suppress_blank = True
        p.suppress_nst = True
        p.temperature = 0.0
        p.temperature_inc = 0.0  # no fallback: bounded latency
        p.greedy = {"best_of": 1}
        if beam_size > 1:
            p.beam_search = {"beam_size": beam_size, "patience": -1.0}
        p.no_speech_thold = self.thresholds.no_speech
        p.logprob_thold = self.thresholds.logprob
        return p

    @staticmethod
    def _ctx_value(frames: int) -> int:
        return 0 if frames >= FULL_FRAMES else frames  # 0 = the model's full 1500

    def language_probabilities(self, audio: np.ndarray) -> dict[str, float]:
        """Whisper's probability for each of its languages, on the language-ID context.

        Leaves the utterance's mel in the state (the next whisper_full may pass no samples)."""
        pw = self._pw
        if pw.whisper_pcm_to_mel(self._ctx, audio, len(audio), self.threads) != 0:
            raise AsrEngineError("whisper.cpp could not compute the log-mel spectrogram")
        self._ctx_setter.audio_ctx = self._ctx_value(self.window.langid_frames(len(audio)))
        if pw.whisper_full(self._ctx, self._ctx_setter, audio, 0) != 0:  # stores audio_ctx, encodes nothing
            raise AsrEngineError("whisper.cpp refused the language-ID context")
        probs = np.zeros(len(self._languages), np.float32)
        if pw.whisper_lang_auto_detect(self._ctx, 0, self.threads, probs) < 0:
            raise AsrEngineError("whisper.cpp language detection failed")
        return {code: float(p) for code, p in zip(self._languages, probs)}

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, candidates: Sequence[str] = (),
                   priors: Mapping[str, float] | None = None, partial: bool = False) -> Transcription:
        audio = check_audio(audio)
        identify_among = check_languages(language, candidates)
        with self._lock:
            if self._ctx is None:
                raise AsrEngineError(f"{self.name} recognizer is closed")
            return self._transcribe(audio, language, identify_among, priors, partial)

    def _transcribe(self, audio, language, identify_among, priors, partial) -> Transcription:
        lang_probability, scores, mel_ready = None, {}, False
        if language is None:
            if len(identify_among) == 1:
                language, lang_probability, scores = identify_among[0], 1.0, {identify_among[0]: 1.0}
            else:
                choice = choose_language(self.language_probabilities(audio), identify_among, priors)
                language, lang_probability, scores, mel_ready = choice.lang, choice.probability, choice.scores, True
        frames = self.window.frames(len(audio), partial=partial)
        params = self._greedy if partial else self._beam
        params.language = language
        params.audio_ctx = self._ctx_value(frames)
        params.max_tokens = tokens_budget(len(audio) / SAMPLE_RATE)

        def decode(prompt: str) -> Transcription:
            nonlocal mel_ready
            params.initial_prompt = prompt
            heard = self._decode(params, audio, mel_ready, language, lang_probability, scores, frames, partial, prompt)
            mel_ready = False  # a second decode computes the mel again: the first one's state is spent
            return heard

        return unprompted_if_looping(decode, self._prompts.get(language, ""))

    def _decode(self, params, audio, mel_ready, language, lang_probability, scores, frames, partial, prompt) -> Transcription:
        pw = self._pw
        status = pw.whisper_full(self._ctx, params, audio, 0 if mel_ready else len(audio))
        if status != 0:
            raise AsrEngineError(f"whisper.cpp transcription failed (status {status})")
        text_bytes, logprobs = b"", []
        eot = pw.whisper_token_eot(self._ctx)
        n_segments = pw.whisper_full_n_segments(self._ctx)
        for i in range(n_segments):
            text_bytes += pw.whisper_full_get_segment_text(self._ctx, i)
            for j in range(pw.whisper_full_n_tokens(self._ctx, i)):
                if pw.whisper_full_get_token_id(self._ctx, i, j) < eot:  # text tokens only
                    logprobs.append(pw.whisper_full_get_token_data(self._ctx, i, j).plog)
        avg_logprob = float(np.mean(logprobs)) if logprobs else 0.0
        return finish(text_bytes.decode("utf-8", errors="replace"), lang=language, lang_probability=lang_probability,
                      lang_scores=scores, avg_logprob=avg_logprob, no_speech_prob=None, encoder_frames=frames,
                      partial=partial, thresholds=self.thresholds,
                      engine_rejected="no_speech" if n_segments == 0 else None, prompt=prompt)

    def close(self) -> None:
        ctx, self._ctx = getattr(self, "_ctx", None), None
        if ctx is not None:
            self._pw.whisper_free(ctx)

    def __del__(self) -> None:
        self.close()
