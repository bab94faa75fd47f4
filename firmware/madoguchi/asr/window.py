"""How much encoder context an utterance gets: the policy that keeps short utterances off
Whisper's fixed 30 s window without losing accuracy.

Whisper's encoder was trained only on 30 s windows (1500 positions of 20 ms); a short utterance is
speech followed by ~27 s of padded silence. The cost is in the encoder, roughly linear in the
context, so whisper.cpp's ``audio_ctx`` (and a shorter CTranslate2 input) cut latency in
proportion. Why naive trimming (speech + a fixed margin) lost accuracy here, two causes:

1. A whisper.cpp bug, the larger effect. With flash attention (on by default in the 1.8.5 that
   pywhispercpp 1.5.1 ships) the encoder's self-attention and the decoder's cross-attention run
   over the context padded up to a multiple of 256 positions, without a mask, and the padding
   slots are never cleared: they hold keys and values written by earlier calls with another
   context (another layer stride). An utterance is then decoded
   against fragments of previous utterances. Results depend on call history (same audio, same
   ``audio_ctx``: right after a fresh load, garbled after a longer utterance). The fix costs
   nothing: contexts are whole multiples of 256 positions (5.12 s), so there are no padding slots
   (up to 1280 = 25.6 s; a 1500 context, used only by ``window = "full"`` or for utterances over
   24.6 s, keeps 36 padding slots).
2. The model itself. In training every frame's attention also spread over the long silent tail;
   with only a second or two of silence after the speech, words change. The error falls as
   silence comes back and is at the full window's level well before 30 s. Hence a floor of
   context (``min_s``) on top of the utterance plus a margin.

Language identification gets its own context: it reads one decoder step, which needs less context
than a whole transcript (tests/bench/langid.py measures it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from madoguchi.config import AsrSettings

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 50  # encoder positions: 2 mel frames of 10 ms each
FULL_FRAMES = 1500  # Whisper's 30 s window
SAMPLES_PER_FRAME = SAMPLE_RATE // FRAMES_PER_SECOND
FLASH_ATTENTION_PAD = 256  # whisper.cpp pads attention to this many positions (and leaves the pad stale)

_ASR_DEFAULTS = AsrSettings()  # [asr] window_margin_s and window_min_s are defined once, in config.py
DEFAULT_PARTIAL_MIN_S = 5.0
DEFAULT_LANGID_MARGIN_S = 1.0
DEFAULT_LANGID_MIN_S = 0.0


@dataclass(frozen=True)
class WindowPolicy:
    """``fitted=False`` is Whisper's full 30 s window for every utterance.

    Fitted: the utterance plus ``margin_s``, at least ``min_s``, rounded up to ``step_frames``
    encoder positions, at most the full window."""

    fitted: bool = True
    margin_s: float = _ASR_DEFAULTS.window_margin_s
    min_s: float = _ASR_DEFAULTS.window_min_s
    partial_min_s: float = DEFAULT_PARTIAL_MIN_S
    langid_margin_s: float = DEFAULT_LANGID_MARGIN_S
    langid_min_s: float = DEFAULT_LANGID_MIN_S
    step_frames: int = FLASH_ATTENTION_PAD

    def frames(self, n_samples: int, *, partial: bool = False) -> int:
        """Encoder positions for an utterance of ``n_samples`` (16 kHz)."""
        return self._fit(n_samples, self.margin_s, self.partial_min_s if partial else self.min_s)

    def langid_frames(self, n_samples: int) -> int:
        return self._fit(n_samples, self.langid_margin_s, self.langid_min_s)

    def _fit(self, n_samples: int, margin_s: float, min_s: float) -> int:
        if not self.fitted:
            return FULL_FRAMES
        wanted = max(n_samples / SAMPLE_RATE + margin_s, min_s) * FRAMES_PER_SECOND
        step = max(1, self.step_frames)
        return int(min(FULL_FRAMES, max(step, math.ceil(wanted / step - 1e-9) * step)))


def policy_from_settings(settings) -> WindowPolicy:
    """From ``[asr] window``, ``window_margin_s`` and ``window_min_s``."""
    return WindowPolicy(fitted=settings.window != "full", margin_s=settings.window_margin_s, min_s=settings.window_min_s)
