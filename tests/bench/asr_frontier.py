"""Latency against accuracy for 1-5 s counter utterances: which encoder window to use.

``python -m tests.bench.asr_frontier [--quick] [--out reports/bench]`` runs the real recognizers
(madoguchi.asr, Whisper base) on the same clips in the same run: whisper.cpp q8_0 with the full
30 s window, with the context trimmed to the audio plus a margin (the naive fit), with our policy
(audio + margin but at least a floor of context), and faster-whisper int8 with the full and
shorter windows; plus what a partial (live caption) pass and language identification cost.
Prints a table, writes reports/bench/asr_frontier.md and a PNG of the frontier.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from madoguchi.asr.fasterwhisper import FasterWhisperRecognizer
from madoguchi.asr.whispercpp import WhisperCppRecognizer
from madoguchi.asr.window import WindowPolicy
from madoguchi.languages import DAY_ONE_RESIDENT
from tests.asr_assets import Clip, cpu_name, error_rate, frontier_clips, ggml_model, whisper_ct2_dir

THREADS = 2
CANDIDATES = ("ja", *DAY_ONE_RESIDENT)


@dataclass(frozen=True)
class Config:
    label: str
    backend: str  # "whisper.cpp" | "faster-whisper"
    window: WindowPolicy
    mode: str = "final"  # final | partial | langid
    flash_attention: bool = True  # whisper.cpp only


FULL = WindowPolicy(fitted=False)
DEFAULT = WindowPolicy()  # fit +1 s, at least 10 s, in steps of 256 positions (5.12 s)
NAIVE = dict(min_s=0.0, step_frames=1)  # the context as asked for, no floor, no rounding
CONFIGS = (
    Config("whisper.cpp full 30 s", "whisper.cpp", FULL),
    Config("whisper.cpp fit +7.7 s (ctx+384)", "whisper.cpp", WindowPolicy(margin_s=7.68, **NAIVE)),
    Config("whisper.cpp fit +15.4 s (ctx+768)", "whisper.cpp", WindowPolicy(margin_s=15.36, **NAIVE)),
    Config("whisper.cpp fit +1 s", "whisper.cpp", WindowPolicy(margin_s=1.0, **NAIVE)),
    Config("whisper.cpp fit +1 s, flash attention off", "whisper.cpp", WindowPolicy(margin_s=1.0, **NAIVE), flash_attention=False),
    Config("whisper.cpp fit +1 s, 256 steps", "whisper.cpp", WindowPolicy(min_s=0.0)),
    Config("whisper.cpp fit +1 s, 256 steps, min 10 s (default)", "whisper.cpp", DEFAULT),
    Config("whisper.cpp fit +1 s, 256 steps, min 15 s", "whisper.cpp", WindowPolicy(min_s=15.0)),
    Config("whisper.cpp partial (min 5 s)", "whisper.cpp", DEFAULT, "partial"),
    Config("whisper.cpp default + language ID", "whisper.cpp", DEFAULT, "langid"),
    Config("faster-whisper full 30 s", "faster-whisper", FULL),
    Config("faster-whisper fit +1 s, 256 steps", "faster-whisper", WindowPolicy(min_s=0.0)),
    Config("faster-whisper fit +1 s, 256 steps, min 10 s (default)", "faster-whisper", DEFAULT),
    Config("faster-whisper partial (min 5 s)", "faster-whisper", DEFAULT, "partial"),
    Config("faster-whisper default + language ID", "faster-whisper", DEFAULT, "langid"),
)


@dataclass(frozen=True)
class Row:
    config: Config
    mean_s: float
    p95_s: float
    cer_ja: float
    wer_en: float
    frames: float
    lang_ok: float | None


def run_config(config: Config, clips: list[Clip], repeats: int) -> Row:
    if config.backend == "whisper.cpp":
        recognizer = WhisperCppRecognizer(ggml_model("q8_0"), model_id="whisper-base-ggml-q8_0", threads=THREADS,
                                          window=config.window, flash_attention=config.flash_attention)
    else:
        recognizer = FasterWhisperRecognizer(whisper_ct2_dir(), model_id="whisper-base-ct2", threads=THREADS, window=config.window)
    recognizer.transcribe(clips[0].audio, language=clips[0].lang)  # warm-up: buffers, caches
    times, errors, frames, lang_ok = [], {"ja": [], "en": []}, [], []
    for clip in clips:
        per_clip = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            if config.mode == "langid":
                result = recognizer.transcribe(clip.audio, candidates=CANDIDATES)
            else:
                result = recognizer.transcribe(clip.audio, language=clip.lang, partial=config.mode == "partial")
            per_clip.append(time.perf_counter() - t0)
        times.append(float(np.median(per_clip)))  # other users share the CPU: the median of the repeats
        errors[clip.lang].append(error_rate(clip.lang, clip.text, result.text))
        frames.append(result.encoder_frames)
        lang_ok.append(result.lang == clip.lang)
    recognizer.close()
    return Row(config, float(np.mean(times)), float(np.percentile(times, 95)), float(np.mean(errors["ja"])),
               float(np.mean(errors["en"])), float(np.mean(frames)), float(np.mean(lang_ok)) if config.mode == "langid" else None)


def table(rows: list[Row], clips: list[Clip], repeats: int) -> str:
    full = next(r for r in rows if r.config.label == "whisper.cpp full 30 s")
    seconds = [c.seconds for c in clips]
    lines = [
        f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs), {THREADS} threads; {len(clips)} clips "
        f"({sum(c.lang == 'ja' for c in clips)} ja kokoro, {sum(c.lang == 'en' for c in clips)} en espeak), "
        f"{min(seconds):.1f}-{max(seconds):.1f} s, median of {repeats} run(s) per clip; Whisper base, greedy",
        "",
        "| configuration | ctx frames | s/clip mean | s/clip p95 | CER ja | WER en | x full whisper.cpp | lang ok |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lang = "" if r.lang_ok is None else f"{r.lang_ok:.0%}"
        lines.append(f"| {r.config.label} | {r.frames:.0f} | {r.mean_s:.2f} | {r.p95_s:.2f} | {r.cer_ja:.3f} | {r.wer_en:.3f} | "
                     f"{r.mean_s / full.mean_s:.2f} | {lang} |")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for r in rows:
        if r.config.mode != "final":
            continue
        marker = "o" if r.config.backend == "whisper.cpp" else "s"
        err = (r.cer_ja + r.wer_en) / 2
        ax.scatter(r.mean_s, err, marker=marker, color="C0" if marker == "o" else "C1")
        ax.annotate(r.config.label, (r.mean_s, err), fontsize=7, xytext=(4, 3), textcoords="offset points")
    ax.set_xlabel("seconds per utterance (mean, 2 threads)")
    ax.set_ylabel("error: mean of CER ja and WER en")
    ax.set_title("Whisper base on 1-5 s counter utterances: latency vs accuracy")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="half the clips, one run each (CI)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    args = parser.parse_args()
    clips = frontier_clips(quick=args.quick)
    repeats = 1 if args.quick else 2
    rows = []
    for config in CONFIGS:
        rows.append(run_config(config, clips, repeats))
        r = rows[-1]
        print(f"  {config.label}: {r.mean_s:.2f} s/clip, CER ja {r.cer_ja:.3f}, WER en {r.wer_en:.3f}", flush=True)
    text = table(rows, clips, repeats)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, args.out / "asr_frontier.png")
    (args.out / "asr_frontier.md").write_text("# ASR window frontier\n\n" + text + "\n\n![frontier](asr_frontier.png)\n", encoding="utf-8")


if __name__ == "__main__":
    main()
