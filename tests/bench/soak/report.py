"""The soak's report: the table (stdout and soak.md), soak.png and samples.json; ``main`` runs it all."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np

import tests.bench.soak as package
from tests.bench.frontend import cpu_model
from tests.bench.soak.analysis import (
    AFTER_LAST_WORDS_S,
    CLEAR_AFTER_S,
    IDLE_BAR_PCT,
    IDLE_SLEEP_S,
    LEAK_MB_PER_H,
    LEAK_MIN_GROWTH_MB,
    MIN_MARGIN_S,
    PEER_MARGIN_S,
    SESSION_IDLE_S,
    WARMUP_S,
    Seconds,
    classify,
    mean_of,
    per_second,
    percentile_of,
    rss_slope,
    thread_table,
)
from tests.bench.soak.recording import ROOT, Recording, build_recording, plan_for
from tests.bench.soak.runs import run_services
from tests.bench.soak.service import WATCHDOG_USEC


def plot(path: Path, main: Seconds, windows: list[tuple[float, float]], rec: Recording, peers: dict[str, Seconds], slope_from_s: float, slope_to_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_cpu, ax_idle) = plt.subplots(3, 1, figsize=(13, 9), sharex=True, gridspec_kw={"height_ratios": [1.1, 1, 1]})
    minutes = main.t / 60.0

    def shade(ax) -> None:
        for s in rec.conversations:
            ax.axvspan(s["start_s"] / 60, s["end_s"] / 60, color="tab:orange", alpha=0.18, lw=0)
        for a, b in windows:
            ax.axvspan(a / 60, b / 60, color="tab:green", alpha=0.12, lw=0)

    for ax in (ax_rss, ax_cpu, ax_idle):
        shade(ax)
    ax_rss.plot(minutes, main.rss_mb, color="tab:blue", lw=1.2, label="madoguchi run (every sink)")
    keep = (main.t >= slope_from_s) & (main.t <= slope_to_s)
    if keep.sum() >= 10:
        fit = np.polyfit(main.t[keep], main.rss_mb[keep], 1)
        ax_rss.plot(minutes[keep], np.polyval(fit, main.t[keep]), color="k", ls="--", lw=1, label=f"least squares: {fit[0] * 3600:+.1f} MB/h")
    ax_rss.set_ylabel("RSS (MB)")
    ax_rss.legend(loc="lower right", fontsize=8)
    ax_rss.set_title("Soak: madoguchi run --replay (orange: conversations, green: idle seconds counted)")

    colours = {"frontend+sinks": "tab:purple", "frontend alone": "tab:gray"}
    for ax, top in ((ax_cpu, None), (ax_idle, 10.0)):
        ax.plot(minutes, main.cpu_pct, color="tab:red", lw=0.6, label="madoguchi run, CPU per second")
        if len(main.cpu_pct) >= 10:
            smooth = np.convolve(main.cpu_pct, np.ones(10) / 10, mode="same")
            ax.plot(minutes, smooth, color="darkred", lw=1.2, label="10 s mean")
        for name, sec in peers.items():
            ax.plot(sec.t / 60.0, sec.cpu_pct, color=colours.get(name, "tab:gray"), lw=0.8, label=f"peer: run --stages frontend, {name}")
        ax.plot(minutes, main.others_pct, color="tab:olive", lw=0.5, alpha=0.7, label="other processes on the machine")
        ax.set_ylabel("CPU (% of one core)")
        if top is not None:
            ax.axhline(IDLE_BAR_PCT, color="k", ls=":", lw=1, label=f"idle bar {IDLE_BAR_PCT:g} %")
            ax.set_ylim(0, top)
            ax.set_title("the same, 0-10 %", fontsize=9)
    ax_cpu.legend(loc="upper right", fontsize=7)
    ax_idle.legend(loc="upper right", fontsize=7)
    ax_idle.set_xlabel("audio time (minutes after READY)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=package.__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="length of the replayed recording (default 30; 3.25 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "soak", help="folder for soak.png, soak.md, samples.json and the logs")
    parser.add_argument("--quick", action="store_true", help="two conversations and one idle stretch in 3.25 minutes, peers 95 s (CI: about 5 minutes)")
    parser.add_argument("--plain", action="store_true", help="run `python -m madoguchi` itself (threads stay unnamed in the report)")
    args = parser.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else (3.25 if args.quick else 30.0)
    plan = plan_for(minutes, args.quick)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    wall_start = time.monotonic()

    rec = build_recording(plan)
    print(f"recording: {rec.wav} ({rec.timeline['duration_s'] / 60:.1f} min, {len(rec.conversations)} conversations of {rec.timeline['per_conversation']} turns, "
          f"{len(rec.timeline['chatter'])} bursts of the neighbour's voice; built or cached in {time.monotonic() - wall_start:.0f} s)", flush=True)
    main_run, peers, usage = run_services(rec, plan, args.plain, out)
    wall_total = time.monotonic() - wall_start

    crashed: list[str] = []
    for run in (main_run, *peers.values()):
        log_text = run.stderr_file.read_text(encoding="utf-8", errors="replace") if run.stderr_file else ""
        if run.t0 is None:
            crashed.append(f"{run.name}: never READY (exit {run.returncode}); see {run.stderr_file}")
        elif run.hung:
            crashed.append(f"{run.name}: still running long after its recording ended; stopped (exit {run.returncode}); see {run.stderr_file}")
        elif run.returncode != 0 and not (run.stopped_by_us and run.returncode in (0, -signal.SIGTERM)):
            crashed.append(f"{run.name}: exit status {run.returncode}; see {run.stderr_file}")
        if "Traceback" in log_text:
            crashed.append(f"{run.name}: a traceback in {run.stderr_file}")
    if main_run.t0 is None or len(main_run.samples) < 3:
        print("\n".join(crashed) or "the main run gave no samples", file=sys.stderr)
        return 1
    duration = rec.timeline["duration_s"]
    main_sec = per_second(main_run)
    ran_until = float(main_sec.t[-1])
    if ran_until < duration - 2.0 and not crashed:
        crashed.append(f"main: stopped sampling at {ran_until:.0f} s of a {duration:.0f} s recording")
    windows, spans = classify(main_sec, rec, main_run, MIN_MARGIN_S, until_s=duration)
    peer_secs: dict[str, Seconds] = {}
    peer_windows: dict[str, list[tuple[float, float]]] = {}
    for name, run in peers.items():
        if run.t0 is not None and len(run.samples) >= 3:
            peer_secs[name] = per_second(run)
            peer_windows[name] = classify(peer_secs[name], rec, run, PEER_MARGIN_S, until_s=plan.peer_s)[0]

    idle = main_sec.kind == "idle"
    busy = main_sec.kind == "busy"
    steady_from = spans[0][1] + AFTER_LAST_WORDS_S if spans else WARMUP_S  # after the first conversation's last words
    steady_to = duration
    slope, slope_err = rss_slope(main_sec, steady_from, steady_to)
    slope_idle, slope_idle_err = rss_slope(Seconds(main_sec.t[idle], main_sec.cpu_pct[idle], main_sec.rss_mb[idle], main_sec.kind[idle], [], main_sec.others_pct[idle]), steady_from, steady_to)
    in_steady = (main_sec.t >= steady_from) & (main_sec.t <= steady_to)
    rss_start = main_run.samples[0].rss_mb
    rss_steady_start = float(main_sec.rss_mb[in_steady][0]) if in_steady.any() else float("nan")
    rss_end = float(main_sec.rss_mb[main_sec.t <= duration][-1])
    growth = rss_end - rss_steady_start
    peak = max(s.hwm_mb for s in main_run.samples)
    leak = slope > LEAK_MB_PER_H and growth > LEAK_MIN_GROWTH_MB

    # after each conversation's last words
    rss_after = []
    for _a, b in spans:
        k = int(np.searchsorted(main_sec.t, b + AFTER_LAST_WORDS_S))
        if k < len(main_sec.t):
            rss_after.append(float(main_sec.rss_mb[k]))
    # what the faces show in each idle second: the last words (for CLEAR_AFTER_S after the last speech), the greeting, nothing (asleep)
    speech_ends = np.array(sorted(e["end_s"] for e in rec.timeline["expected"]))
    phase = np.full(len(main_sec.t), "greeting", dtype=object)
    for i, t in enumerate(main_sec.t):
        k = int(np.searchsorted(speech_ends, t)) - 1
        if k >= 0:
            since = t - speech_ends[k]
            phase[i] = "words" if since < CLEAR_AFTER_S else "greeting" if since < IDLE_SLEEP_S else "asleep"
    by_phase = [(name, main_sec.cpu_pct[idle & (phase == name)]) for name in ("words", "greeting", "asleep")]
    idle_per_window = []
    for a, b in windows:
        sel = idle & (main_sec.t - 1.0 >= a) & (main_sec.t <= b)
        idle_per_window.append((a, b, mean_of(main_sec.cpu_pct[sel]), int(sel.sum())))

    finals = main_run.finals
    understood = [r for _, r in finals if r.get("text") and not r.get("rejected")]
    rejected = [r for _, r in finals if r.get("rejected")]
    partials = [r for _, r in main_run.lines if r.get("partial")]
    in_idle = [r for _, r in finals if any(s["start_s"] <= r.get("start_s", -1) < s["end_s"] - 1.0 for s in rec.idles)]
    expected = len(rec.timeline["expected"])
    per_conv = []
    for s in rec.conversations:
        n = sum(1 for _, r in finals if s["start_s"] <= r.get("start_s", -1) < s["end_s"] + 1.0)
        per_conv.append(n)
    latencies = np.array([r["latency_ms"] for _, r in finals if isinstance(r.get("latency_ms"), (int, float))]) / 1000.0
    gaps = np.diff(sorted(main_run.notify.times("WATCHDOG"))) if main_run.notify else np.array([])
    sessions_expected = 1 + sum(1 for s in rec.idles[1:-1] if s["end_s"] - s["start_s"] >= SESSION_IDLE_S) if rec.idles else 0
    stderr_text = main_run.stderr_file.read_text(encoding="utf-8", errors="replace") if main_run.stderr_file else ""
    panels = stderr_text.count("panel: dummy")
    controls = "controls on GPIO" in stderr_text
    placement_hints = stderr_text.count("came from outside both")  # the check_sides hint (frontend/placement.py), once per onset

    rows: list[tuple[str, str, str]] = []

    def row(what: str, value: str, note: str = "") -> None:
        rows.append((what, value, note))

    idle_cpu = main_sec.cpu_pct[idle]
    busy_cpu = main_sec.cpu_pct[busy]
    row("replayed", f"{duration / 60:.1f} min", f"{len(rec.conversations)} conversations, {len(windows)} idle stretches ({int(idle.sum())} idle s counted)")
    row("RSS at READY / steady start / end", f"{rss_start:.0f} / {rss_steady_start:.0f} / {rss_end:.0f} MB", f"peak (VmHWM) {peak:.0f} MB; steady part from {steady_from / 60:.1f} min")
    row("RSS slope, steady part", f"{slope:+.1f} ± {slope_err:.1f} MB/h", f"least squares over every second; idle seconds only: {slope_idle:+.1f} ± {slope_idle_err:.1f} MB/h")
    row("RSS after each conversation", " ".join(f"{x:.0f}" for x in rss_after) + " MB", f"{AFTER_LAST_WORDS_S:g} s after its last words were printed")
    row("idle CPU, mean / p95", f"{mean_of(idle_cpu):.2f} / {percentile_of(idle_cpu, 95):.1f} %", f"of one core; bar {IDLE_BAR_PCT:g} %: " + ("no idle seconds to judge" if not len(idle_cpu) else "within" if mean_of(idle_cpu) <= IDLE_BAR_PCT else "OVER"))
    row("idle CPU by what the faces show", ", ".join(f"{name} {mean_of(v):.2f} % ({len(v)} s)" for name, v in by_phase if len(v)),
        f"words: < {CLEAR_AFTER_S:g} s after the last speech; greeting; asleep: > {IDLE_SLEEP_S:g} s (panels off)")
    row("idle CPU per idle stretch", " ".join(f"{m:.2f}" for _, _, m, _ in idle_per_window) + " %", "in order" + (" (the first: the lead, before any conversation)" if windows and windows[0][0] < rec.conversations[0]["start_s"] else ""))
    row("busy CPU, mean / p95", f"{mean_of(busy_cpu):.0f} / {percentile_of(busy_cpu, 95):.0f} %", "conversation start to its last words printed")
    others = main_sec.others_pct
    row("other processes on this machine", f"{mean_of(others[idle]):.0f} % idle, {mean_of(others[busy]):.0f} % busy",
        f"mean, % of one core of {os.cpu_count()}, during the main run's idle / busy seconds (not the box: load that competes for the cores and caches)")
    for name, sec in peer_secs.items():
        pi = sec.cpu_pct[sec.kind == "idle"]
        row(f"peer: --stages frontend, {name}, idle CPU", f"{mean_of(pi):.2f} / {percentile_of(pi, 95):.1f} %",
            f"mean / p95 over {len(pi)} idle s of the first {plan.peer_s:.0f} s; other processes {mean_of(sec.others_pct[sec.kind == 'idle']):.0f} %")
    row("utterances printed / expected", f"{len(finals)} / {expected}", f"per conversation {per_conv}; understood {len(understood)}, rejected {len(rejected)}, in idle stretches {len(in_idle)}; {len(partials)} live captions")
    if len(latencies):
        row("end of speech → words, p50 / p95 / max", f"{np.percentile(latencies, 50):.2f} / {np.percentile(latencies, 95):.2f} / {latencies.max():.2f} s", "latency_ms of the printed finals")
    row("usage records at the broker", f"{usage.get('usage:utterance', 0)} utterances, {usage.get('usage:session', 0)} sessions",
        f"printed finals {len(finals)}; sessions expected {sessions_expected} (a pause ≥ {SESSION_IDLE_S:.0f} s ends one); duplicates {usage.get('duplicates', 0)}")
    other = {k: v for k, v in usage.items() if not k.startswith("usage:") and k != "duplicates"}
    row("other messages at the broker", ", ".join(f"{k} {v}" for k, v in sorted(other.items())) or "none", "")
    row("systemd", f"READY {'yes' if main_run.t0 else 'no'}, {len(main_run.notify.times('STATUS')) if main_run.notify else 0} STATUS, {len(gaps) + 1} WATCHDOG",
        f"longest watchdog gap {gaps.max() if len(gaps) else float('nan'):.1f} s (systemd kills at {WATCHDOG_USEC / 1e6:.0f} s); STOPPING {'yes' if main_run.notify and main_run.notify.first('STOPPING') else 'no'}")
    row("faces and buttons", f"{panels} dummy panels, controls {'on mock GPIO' if controls else 'OFF'}", f"check_sides hints in the log: {placement_hints} (speech from outside both sides' sectors)")
    row("service exit", f"{main_run.returncode}", "; ".join(crashed) or "clean")

    thread_rows = thread_table(main_sec, "idle")[:8]
    busy_threads = thread_table(main_sec, "busy")[:6]

    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    header = [
        f"Soak: {duration / 60:.1f} min of replayed counter audio through `madoguchi run --replay` with every sink (MQTT to mosquitto, both faces on luma dummy devices, buttons and LEDs on mock GPIO, sd_notify with a watchdog)",
        f"CPU: {cpu_model()} ({os.cpu_count()} logical); Python {platform.python_version()}; wall time {wall_total / 60:.1f} min",
    ]
    lines = [*header, "", f"| {'measure':<{width}} | {'value':<{vwidth}} | note |", f"|{'-' * (width + 2)}|{'-' * (vwidth + 2)}|------|"]
    lines += [f"| {a:<{width}} | {b:<{vwidth}} | {c} |" for a, b, c in rows]
    lines += ["", "Idle CPU by thread (% of one core, mean over the idle seconds; OS thread names as the bootstrap set them):"]
    lines += [f"  {cpu:6.2f} %  {name}" for name, cpu in thread_rows]
    for name, sec in peer_secs.items():
        lines += ["", f"Peer ({name}) idle CPU by thread:"]
        lines += [f"  {cpu:6.2f} %  {thread}" for thread, cpu in thread_table(sec, "idle")[:6]]
    lines += ["", "Busy CPU by thread (native threads, e.g. whisper.cpp's, carry the name of the thread that started them):"]
    lines += [f"  {cpu:6.1f} %  {name}" for name, cpu in busy_threads]
    verdict = "LEAK" if leak else "no clear leak"
    lines += ["", f"Leak check: {verdict} (fails above {LEAK_MB_PER_H:g} MB/h with more than {LEAK_MIN_GROWTH_MB:g} MB of growth over the steady part; here {slope:+.1f} MB/h, {growth:+.1f} MB)"]
    text = "\n".join(lines)
    print()
    print(text)
    (out / "soak.md").write_text(text + "\n", encoding="utf-8")
    plot(out / "soak.png", main_sec, windows, rec, peer_secs, steady_from, steady_to)
    dump = {
        "timeline": rec.timeline, "idle_windows": windows,
        "main": {"idle_phase": phase.tolist(), "t": main_sec.t.tolist(), "cpu_pct": main_sec.cpu_pct.tolist(), "rss_mb": main_sec.rss_mb.tolist(), "kind": main_sec.kind.tolist(),
                 "others_pct": main_sec.others_pct.tolist(), "threads": main_sec.threads,
                 "printed": [[round(main_run.audio_time(t), 3), r] for t, r in main_run.lines]},
        "peers": {name: {"t": s.t.tolist(), "cpu_pct": s.cpu_pct.tolist(), "kind": s.kind.tolist()} for name, s in peer_secs.items()},
        "usage": usage, "threads_idle": thread_rows, "threads_busy": busy_threads,
    }
    (out / "samples.json").write_text(json.dumps(dump, ensure_ascii=False), encoding="utf-8")
    print(f"\nwrote {out / 'soak.md'}, {out / 'soak.png'}, {out / 'samples.json'} and the services' logs")
    if crashed:
        print("CRASH: " + "; ".join(crashed), file=sys.stderr)
    if leak:
        print(f"LEAK: RSS rose {slope:+.1f} MB/h ({growth:+.1f} MB) over the steady part", file=sys.stderr)
    return 1 if crashed or leak else 0
