"""From the watch's samples to figures: per-second CPU and RSS, which seconds are idle or busy,
the RSS slope, CPU per thread, and what reached the broker."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tests.bench.soak.recording import Recording
from tests.bench.soak.service import Run

SESSION_IDLE_S = 120.0  # telemetry/service.py SESSION_IDLE_S: a longer pause ends a usage session
IDLE_BAR_PCT = 3.0  # issue 11: at most 3 % of a core while nobody speaks
WARMUP_S = 45.0  # not idle yet: the background level settles, and the greeting's first round (12 languages, 3 s each) loads each font's cmap once
MIN_MARGIN_S = 10.0  # idle starts at least this long after a conversation's audio ends ...
AFTER_LAST_WORDS_S = 3.0  # ... and this long after its last words were printed
PEER_MARGIN_S = 5.0  # the front end alone has nothing to finish after a conversation
CLEAR_AFTER_S, IDLE_SLEEP_S = 60.0, 600.0  # [display] defaults: words leave the faces, then the panels sleep
# A clear leak: the steady part's RSS rises faster than LEAK_MB_PER_H *and* by more than
# LEAK_MIN_GROWTH_MB in all. 50 MB/h is ~600 MB over a 12-hour counter day: the whole headroom
# between the service's ~350-500 MB and the 1 GB bar, so a box would not get through one day; the
# absolute floor keeps allocator noise (arenas, a few MB that come and go) in a short run from
# passing for a slope. Smaller slopes are printed, not failed: a 30-minute run cannot tell them from
# caches filling up.
LEAK_MB_PER_H = 50.0
LEAK_MIN_GROWTH_MB = 25.0


@dataclass
class Seconds:
    """Per sampled second of one run: audio time at its end, CPU % of one core, RSS, and its class."""

    t: np.ndarray
    cpu_pct: np.ndarray
    rss_mb: np.ndarray
    kind: np.ndarray  # "idle", "busy", "" (neither: warm-up, margins, shutdown)
    threads: list[dict[str, float]]  # CPU seconds per thread in this second
    others_pct: np.ndarray  # what every other process on the machine used meanwhile, % of one core


def per_second(run: Run) -> Seconds:
    s = run.samples
    t = np.array([run.audio_time(x.wall) for x in s[1:]])
    dt = np.array([b.wall - a.wall for a, b in zip(s, s[1:])])
    threads = [{k: v - a.threads.get(k, 0.0) for k, v in b.threads.items()} for a, b in zip(s, s[1:])]
    busy = np.array([sum(d.values()) for d in threads])
    machine = np.array([b.machine_s - a.machine_s for a, b in zip(s, s[1:])])
    others = np.maximum(0.0, machine - busy)  # includes the other runs of this bench when they run side by side
    dt = np.maximum(dt, 1e-9)
    return Seconds(t, 100.0 * busy / dt, np.array([x.rss_mb for x in s[1:]]), np.full(len(t), "", dtype=object), threads, 100.0 * others / dt)


def classify(sec: Seconds, rec: Recording, run: Run, margin_s: float, until_s: float) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Mark idle and busy seconds; returns the idle windows and the busy spans (audio s).

    Idle: inside an idle stretch, WARMUP_S after READY, at least ``margin_s`` after the previous
    conversation's audio and AFTER_LAST_WORDS_S after its last printed final. Busy: from a
    conversation's start to its last printed final (or its end, whichever is later)."""
    finals = [(run.audio_time(wall), r) for wall, r in run.finals]
    windows, spans = [], []
    previous_busy_end = 0.0
    for stretch in rec.timeline["stretches"]:
        a, b = stretch["start_s"], min(stretch["end_s"], until_s)
        if a >= until_s:
            break
        if stretch["kind"] == "conversation":
            said = [t for t, r in finals if a <= r.get("start_s", -1.0) < b + 1.0]
            busy_end = max([b, *said])
            sec.kind[(sec.t - 1.0 >= a) & (sec.t <= busy_end)] = "busy"
            previous_busy_end = busy_end
            spans.append((a, busy_end))
            continue
        start = max(a, WARMUP_S) if a == 0.0 else max(a + margin_s, previous_busy_end + AFTER_LAST_WORDS_S)
        if start < b:
            windows.append((start, b))
            sec.kind[(sec.t - 1.0 >= start) & (sec.t <= b)] = "idle"
    return windows, spans


def percentile_of(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def mean_of(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def rss_slope(sec: Seconds, start_s: float, end_s: float) -> tuple[float, float]:
    """Least-squares slope (MB/hour) and its standard error over start_s..end_s."""
    keep = (sec.t >= start_s) & (sec.t <= end_s)
    t, y = sec.t[keep] / 3600.0, sec.rss_mb[keep]
    if len(t) < 10:
        return float("nan"), float("nan")
    (slope, icpt), cov = np.polyfit(t, y, 1, cov=True)
    return float(slope), float(np.sqrt(cov[0, 0]))


def thread_table(sec: Seconds, kind: str) -> list[tuple[str, float]]:
    """CPU % of one core per thread over the seconds of ``kind``, largest first."""
    rows = [d for d, k in zip(sec.threads, sec.kind) if k == kind]
    if not rows:
        return []
    total: dict[str, float] = {}
    for d in rows:
        for name, cpu in d.items():
            total[name] = total.get(name, 0.0) + cpu
    return sorted(((name, 100.0 * cpu / len(rows)) for name, cpu in total.items()), key=lambda x: -x[1])


def usage_counts(messages: list[tuple[str, bytes, bool]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for topic, payload, _retain in messages:
        leaf = topic.rsplit("/", 1)[1]
        try:
            record = json.loads(payload)
        except json.JSONDecodeError:
            counts["unparsable"] = counts.get("unparsable", 0) + 1
            continue
        if leaf in ("usage", "event"):
            ident = record.get("id")
            if ident in seen:
                counts["duplicates"] = counts.get("duplicates", 0) + 1
                continue
            seen.add(ident)
            what = f"{leaf}:{record.get('kind', '?')}"
            if leaf == "event":
                what += f":{record.get('code', '?')}"
        else:
            what = leaf if leaf != "status" else f"status:{record.get('state', record.get('status', '?'))}"
        counts[what] = counts.get(what, 0) + 1
    return counts
