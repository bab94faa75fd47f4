"""Front-end benchmark: accuracy and CPU on simulated counters, with peers measured in the same run.

    python -m tests.bench.frontend [--scenes N] [--out DIR] [--set '{"vad": {"hangover_ms": 400}}']

Prints (1) the diarization-style score per scene against the issue's bars, (2) CPU seconds
per hour of audio per stage against the 2 %-of-a-core budget, next to the peer "Silero VAD on
every frame" (no level/direction cascade), and (3) direction finding on the truth utterances:
our SRP-PHAT against pyroomacoustics' SRP-PHAT and NormMUSIC on the same audio. Writes the
tables as JSON and plots as PNG into --out. Figures are for this machine's CPU (printed).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from tests.bench.evaluate import SceneRun, run_scene
from tests.bench.peers import doa_peers, silero_every_frame_cpu_s
from tests.sim.counter import build_scene, standard_scenes
from tests.sim.score import FrontendScore, score, table

BARS = {"side": 0.97, "short": 0.90, "missed": 0.05, "false_alarm": 0.05, "split": 0.05, "wrong_side": 0.03, "cpu_fraction": 0.02}
STAGES = ("level", "spatial", "vad", "endpoint", "doa", "beam")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bar_lines(total: FrontendScore, cpu_fraction: float) -> list[str]:
    checks = [
        ("side correct", total.side_accuracy, ">=", BARS["side"]),
        ("short replies side correct", total.short_accuracy, ">=", BARS["short"]),
        ("missed speech", total.missed_rate, "<=", BARS["missed"]),
        ("false-alarm speech", total.false_alarm_rate, "<=", BARS["false_alarm"]),
        ("utterances split in pieces", total.split_rate, "<=", BARS["split"]),
        ("speech given the wrong side", total.wrong_side_rate, "<=", BARS["wrong_side"]),
        ("front-end CPU, 4 mics, 1 core", cpu_fraction, "<=", BARS["cpu_fraction"]),
    ]
    out = []
    for name, value, op, bar in checks:
        ok = value >= bar if op == ">=" else value <= bar
        out.append(f"{name:<30} {100 * value:6.2f} %  bar {op} {100 * bar:g} %  {'PASS' if ok else 'FAIL'}")
    return out


def cpu_table(runs: list[SceneRun], peer_vad_s: float) -> tuple[list[str], float]:
    """Rows of CPU per stage; returns them and the front end's share of a core for 4 mics (the bar)."""
    audio_h = sum(r.audio_s for r in runs) / 3600.0
    rows = [f"{'stage':<34} {'CPU s per audio hour':>20} {'% of one core':>14}"]
    frontend = 0.0
    for stage in STAGES:
        seconds = sum(r.cpu_s.get(stage, 0.0) for r in runs)
        frontend += seconds
        rows.append(f"{stage:<34} {seconds / audio_h:20.1f} {100 * seconds / (audio_h * 3600):14.2f}")
    rows.append(f"{'front end (sum of stages)':<34} {frontend / audio_h:20.1f} {100 * frontend / (audio_h * 3600):14.2f}")
    share = {}
    for n_mics in sorted({r.settings.array.n_mics for r in runs}):
        group = [r for r in runs if r.settings.array.n_mics == n_mics]
        seconds = sum(r.cpu_s.get(stage, 0.0) for r in group for stage in STAGES)
        hours = sum(r.audio_s for r in group) / 3600.0
        share[n_mics] = seconds / (hours * 3600)
        rows.append(f"{f'  of which {n_mics}-mic scenes':<34} {seconds / hours:20.1f} {100 * share[n_mics]:14.2f}")
    source = sum(r.cpu_s["total"] for r in runs) - frontend
    rows.append(f"{'(replay only: file read + resample)':<34} {source / audio_h:20.1f} {100 * source / (audio_h * 3600):14.2f}")
    rows.append(f"{'peer: Silero VAD on every frame':<34} {peer_vad_s / audio_h:20.1f} {100 * peer_vad_s / (audio_h * 3600):14.2f}")
    return rows, share.get(4, frontend / (audio_h * 3600))


def idle_cpu_fraction(seconds: float = 120.0) -> float:
    """Front-end CPU share for a quiet counter: room noise on 4 mics, nobody speaking."""
    from madoguchi.config import Settings
    from madoguchi.frontend.pipeline import Frontend
    from madoguchi.frontend.vad import SileroVad

    noise = (10 ** (-60 / 20) * np.random.default_rng(0).standard_normal((int(seconds * 16000), 4))).astype(np.float32)
    frontend = Frontend(Settings(), SileroVad())
    start = time.process_time()
    for i in range(0, len(noise), 1600):
        frontend.process(noise[i : i + 1600])
    return (time.process_time() - start) / seconds


def plot(runs: list[SceneRun], scores: list[FrontendScore], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    names = [r.scene.spec.name for r in runs]
    x = np.arange(len(runs))
    axes[0].bar(x - 0.2, [100 * s.side_accuracy for s in scores], 0.4, label="side correct %")
    axes[0].bar(x + 0.2, [100 * s.missed_rate for s in scores], 0.4, label="missed speech %")
    axes[0].axhline(97, color="green", lw=0.8, ls="--")
    axes[0].axhline(5, color="red", lw=0.8, ls="--")
    axes[0].set_xticks(x, names, rotation=75, fontsize=7)
    axes[0].legend(fontsize=8)
    axes[0].set_title("per scene")
    audio_h = sum(r.audio_s for r in runs) / 3600
    stage_s = [sum(r.cpu_s.get(s, 0.0) for r in runs) / audio_h for s in STAGES]
    axes[1].bar(STAGES, stage_s)
    axes[1].axhline(0.02 * 3600, color="red", lw=0.8, ls="--", label="2 % of a core (whole front end)")
    axes[1].set_ylabel("CPU s per hour of audio")
    axes[1].set_title(f"front-end CPU per stage ({cpu_model()})", fontsize=9)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "frontend.png", dpi=110)
    plt.close(fig)
    # Who spoke when, truth against the front end, for every scene: the picture to look at first.
    fig, axes = plt.subplots(len(runs), 1, figsize=(13, 0.55 * len(runs) + 0.6), squeeze=False)
    colours = {"staff": "tab:red", "resident": "tab:blue"}
    for ax, run in zip(axes[:, 0], runs):
        for seg in run.scene.segments:
            ax.broken_barh([(seg.start_s, seg.end_s - seg.start_s)], (1, 0.8), color=colours[seg.side], alpha=0.5)
        for u in run.utterances:
            ax.broken_barh([(u.start_s, u.end_s - u.start_s)], (0, 0.8), color=colours[u.side])
        for r in run.rejected:
            ax.broken_barh([(r.start_s, r.end_s - r.start_s)], (0, 0.8), color="grey")
        ax.set_yticks([0.4, 1.4], ["box", "truth"], fontsize=6)
        ax.set_ylabel(run.scene.spec.name, rotation=0, ha="right", va="center", fontsize=7)
        ax.set_xlim(0, run.audio_s)
        ax.tick_params(axis="x", labelsize=6)
    axes[0, 0].set_title("truth (pale) vs front end (solid): red staff, blue resident, grey rejected", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "timelines.png", dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=0, help="how many standard scenes (default: all)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument("--set", default="{}", help="JSON settings overrides per table, for tuning")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer measurements")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    specs = standard_scenes()[: args.scenes or None]
    overrides = json.loads(args.set)
    started = time.monotonic()
    runs: list[SceneRun] = []
    scores: list[FrontendScore] = []
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {spec.name}", flush=True)
        run = run_scene(build_scene(spec), **overrides)
        runs.append(run)
        scores.append(score(run.scene.segments, run.hypotheses()))
    total = sum(scores, FrontendScore())
    print(f"\nFront end on {len(runs)} simulated counters, {sum(r.audio_s for r in runs) / 60:.1f} min of audio; CPU: {cpu_model()}\n")
    print(table([(r.scene.spec, s) for r, s in zip(runs, scores)]))
    peer_vad_s = 0.0 if args.no_peers else sum(silero_every_frame_cpu_s(r.scene) for r in runs)
    rows, cpu_fraction = cpu_table(runs, peer_vad_s)
    rows.append(f"{'idle counter (room noise only)':<34} {3600 * (idle := idle_cpu_fraction()):20.1f} {100 * idle:14.2f}")
    print("\n" + "\n".join(rows))
    print("\nBars:\n" + "\n".join(bar_lines(total, cpu_fraction)))
    doa_rows: list[str] = []
    if not args.no_peers:
        doa_rows = doa_peers([r.scene for r in runs])
        print("\nDirection finding on the truth utterances (same audio, same sectors):\n" + "\n".join(doa_rows))
    plot(runs, scores, args.out)
    report = {
        "cpu": cpu_model(),
        "scenes": {r.scene.spec.name: {**s.__dict__, "cpu_s": r.cpu_s, "audio_s": r.audio_s} for r, s in zip(runs, scores)},
        "bars": bar_lines(total, cpu_fraction),
        "cpu_table": rows,
        "doa_peers": doa_rows,
    }
    (args.out / "frontend.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"\nwrote frontend.png, timelines.png and frontend.json to {args.out} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
