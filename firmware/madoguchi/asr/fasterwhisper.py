"""faster-whisper (CTranslate2 int8): the same interface, one encoder pass per utterance.

faster-whisper's ``WhisperModel`` loads the model and gives the feature extractor and tokenizer;
the utterance then goes to its CTranslate2 model directly: ``encode`` once, ``detect_language``
on that encoder output (restricted to the candidates afterwards, which ``transcribe`` cannot do),
and ``generate`` on the same output with the prompt <|sot|><|lang|><|transcribe|><|notimestamps|>.
So language identification costs one decoder step, not a second encoder pass.

The window is the same policy as whisper.cpp's (a shorter ``chunk_length`` in faster-whisper's
terms, but counted in encoder positions): the audio is padded with digital silence to the context
before the log-mel, as Whisper's own 30 s padding is, rather than padding the features with zeros
after it (log-mel zero is not silence).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from madoguchi.asr.base import Transcription, check_audio, check_languages, finish, unprompted_if_looping
from madoguchi.asr.errors import AsrEngineError, AsrModelFileError
from madoguchi.asr.filters import RejectionThresholds
from madoguchi.asr.langid import choose_language
from madoguchi.asr.whispercpp import tokens_budget
from madoguchi.asr.window import SAMPLE_RATE, SAMPLES_PER_FRAME, WindowPolicy
from madoguchi.models.errors import ModelMissingError

log = logging.getLogger(__name__)

MAX_PROMPT_TOKENS = 223  # Whisper's limit for the previous-text prompt (half its 448-token context)

MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")


class FasterWhisperRecognizer:
    def __init__(self, path: Path, *, model_id: str, threads: int = 2, beam_size: int = 1,
                 window: WindowPolicy = WindowPolicy(), thresholds: RejectionThresholds = RejectionThresholds(),
                 compute_type: str = "int8") -> None:
        import ctranslate2
        from faster_whisper import WhisperModel

        folder = Path(path)
        folder = folder.parent if folder.is_file() else folder
        fix = f"fix: `madoguchi models verify {model_id}`, then `madoguchi models fetch {model_id}`"
        for name in MODEL_FILES:
            if not (folder / name).is_file():
                raise ModelMissingError(f"{model_id}: {folder / name} does not exist; {fix}", model_id, folder / name)
        try:
            self._model = WhisperModel(str(folder), device="cpu", compute_type=compute_type, cpu_threads=threads,
                                       num_workers=1, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as err:  # CTranslate2 reports a bad model.bin as RuntimeError
            raise AsrModelFileError(f"{model_id}: CTranslate2 cannot load {folder} ({err}); {fix}", model_id, folder / "model.bin") from err
        self._ct2, self._storage = self._model.model, ctranslate2.StorageView
        self.name = f"faster-whisper {compute_type}"
        self.beam_size, self.window, self.thresholds = beam_size, window, thresholds
        self._tokenizers: dict[str, object] = {}
        self._prompts: dict[str, str] = {}
        self._lock = threading.Lock()

    def _tokenizer(self, lang: str):
        if lang not in self._tokenizers:
            from faster_whisper.tokenizer import Tokenizer

            self._tokenizers[lang] = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language=lang)
        return self._tokenizers[lang]

    def _encode(self, audio: np.ndarray, frames: int):
        padded = np.zeros(frames * SAMPLES_PER_FRAME, np.float32)
        padded[: min(len(audio), len(padded))] = audio[: len(padded)]
        features = self._model.feature_extractor(padded, padding=0)[:, : 2 * frames]  # 2 mel frames per position
        return self._ct2.encode(self._storage.from_array(np.ascontiguousarray(features[None])), to_cpu=False)

    def language_probabilities(self, encoded) -> dict[str, float]:
        pairs = self._ct2.detect_language(encoded)[0]
        return {token[2:-2]: float(p) for token, p in pairs}  # "<|ja|>" -> "ja"

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, candidates: Sequence[str] = (),
                   priors: Mapping[str, float] | None = None, partial: bool = False) -> Transcription:
        audio = check_audio(audio)
        identify_among = check_languages(language, candidates)
        with self._lock:
            if self._model is None:
                raise AsrEngineError(f"{self.name} recognizer is closed")
            try:
                return self._transcribe(audio, language, identify_among, priors, partial)
            except RuntimeError as err:
                raise AsrEngineError(f"CTranslate2 failed: {err}") from err

    def _transcribe(self, audio, language, identify_among, priors, partial) -> Transcription:
        frames = self.window.frames(len(audio), partial=partial)
        encoded = self._encode(audio, frames)
        lang_probability, scores = None, {}
        if language is None:
            if len(identify_among) == 1:
                language, lang_probability, scores = identify_among[0], 1.0, {identify_among[0]: 1.0}
            else:
                choice = choose_language(self.language_probabilities(encoded), identify_among, priors)
                language, lang_probability, scores = choice.lang, choice.probability, choice.scores
        return unprompted_if_looping(lambda vocabulary: self._decode(encoded, audio, language, lang_probability, scores, frames, partial, vocabulary),
                                     self._prompts.get(language, ""))

    def _decode(self, encoded, audio, language, lang_probability, scores, frames, partial, vocabulary: str) -> Transcription:
        tokenizer = self._tokenizer(language)
        # Whisper's layout: <|startofprev|> previous text, then the task tokens (at most 223 prompt tokens)
        previous = [tokenizer.sot_prev, *tokenizer.encode(" " + vocabulary)[-MAX_PROMPT_TOKENS:]] if vocabulary else []
        prompt = [*previous, tokenizer.sot, tokenizer.language, tokenizer.transcribe, tokenizer.no_timestamps]
        result = self._ct2.generate(
            encoded, [prompt], beam_size=1 if partial else self.beam_size, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1],
            max_length=len(prompt) + tokens_budget(len(audio) / SAMPLE_RATE),
        )[0]
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        # CTranslate2's score is the length-normalised sum; Whisper averages over tokens + end
        avg_logprob = float(result.scores[0]) * len(ids) / (len(ids) + 1) if ids else float(result.scores[0])
        return finish(tokenizer.decode(ids), lang=language, lang_probability=lang_probability, lang_scores=scores,
                      avg_logprob=avg_logprob, no_speech_prob=float(result.no_speech_prob),
                      encoder_frames=frames, partial=partial, thresholds=self.thresholds, prompt=vocabulary)

    def set_vocabulary(self, prompts: Mapping[str, str]) -> None:
        with self._lock:
            self._prompts = dict(prompts)

    def close(self) -> None:
        self._model = None
        self._ct2 = None
