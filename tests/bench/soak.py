"""Soak: a long replayed counter day through ``madoguchi run --replay`` with every sink: RSS slope and idle CPU.

    python -m tests.bench.soak [--minutes 30] [--out reports/bench/soak] [--quick]

The recording (built once, cached like every generated artefact: ``tests/cache.py``) is the bundled
4-mic demo conversation (``data/demo/counter-demo.flac``, ten turns in 28.8 s) repeated, with long
stretches of an idle counter between the conversations: the recording's own noise floor
(independent -80 dBFS per mic, as the simulator made it) with, every 20-60 s, a short burst of the
neighbouring counter's voice cut from the demo's own babble-only gaps (off both sides' sectors:
the front end must reject it, not interpret it). Idle stretches last 2-11 minutes, one of them longer
than ``[display] idle_sleep_s`` (600 s) so the panels go to sleep.

The box runs as a real service: ``python -m madoguchi run --no-system-config --config C --replay F``
(paced like live audio), ``C`` being counter-demo.toml plus ``[mqtt]`` pointing at a real mosquitto
this bench starts (TLS, a box login, the shipped ACL: ``tests/mqtt_broker.py``), ``[display] driver =
"dummy"`` (both faces drawn by luma's dummy devices), the buttons and LEDs on gpiozero's mock pin
factory (``GPIOZERO_PIN_FACTORY=mock``), and ``NOTIFY_SOCKET``/``WATCHDOG_USEC`` at a socket this bench
reads (READY, STATUS, WATCHDOG as under systemd, ``WatchdogSec=30`` as the unit), at the unit's ``Nice=-5``
when allowed. Every second the bench reads the process tree's VmRSS and each thread's CPU time
(``/proc/PID/task/*/schedstat``, ns), and what the rest of the machine used meanwhile (``/proc/stat``:
on a shared machine other jobs slow ASR down, so latency is only meaningful when that column is
low), and from the recording's own timeline knows which seconds are idle (nobody speaking, and the
last conversation's words already out: a margin after each conversation) and which are busy.

Peers measured in the same run, on the first minutes of the same recording: ``run --stages frontend``
with the same sinks (so the difference to the main run is the interpreter's idle overhead), and
``run --stages frontend`` with no sinks at all (no faces, buttons, MQTT: the front end alone). The two
peers run side by side (each is a few % of a core; CPU time is per process).

Thread names: the child is started through a short bootstrap (``BOOTSTRAP``) that gives each Python thread its
name at the OS level (prctl, 15 characters) and then runs ``madoguchi``'s own ``__main__`` with the
same arguments, so the report can say *which* thread burns the idle CPU. ``--plain`` runs
``python -m madoguchi`` itself.

Output: a table on stdout (and ``soak.md``), ``soak.png`` (RSS and CPU over time, idle stretches
shaded), ``samples.json`` and the children's logs in ``--out``. Exit status: 1 if the service crashed
(non-zero exit, a traceback, or it stopped before the recording ended) or leaked clearly (see
``LEAK_MB_PER_H``); an idle CPU over the 3 % bar is reported, not failed: a bench measures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.bench.frontend import cpu_model
from tests.cache import cache_dir, made_by, stable_hash
from tests.notify import NotifySocket

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "firmware" / "madoguchi" / "data" / "demo"
SITE, BOX = "soak", "bench-01"
RATE = 16000
NOISE_DBFS = -80.0  # the demo's own self-noise (truth.json: self_noise_dbfs): the idle counter continues its floor
FADE_S = 0.02  # raised-cosine crossfade at every junction (no clicks for the level gate to see)
# Babble-only stretches of the demo (s): at least 0.25 s after a talker's last speech (RT60 0.55 s:
# the tail is > 25 dB down by then) and before the next; the neighbouring counter's voice, at 350 deg.
CHATTER_S = ((0.62, 1.00), (3.82, 4.58), (22.38, 23.20), (28.02, 28.77))
CHATTER_EVERY_S = (20.0, 60.0)
WATCHDOG_USEC = 30_000_000  # systemd/madoguchi.service: WatchdogSec=30
SESSION_IDLE_S = 120.0  # telemetry/service.py SESSION_IDLE_S: a longer pause ends a usage session
IDLE_BAR_PCT = 3.0  # issue 11: at most 3 % of a core while nobody speaks
WARMUP_S = 45.0  # not idle yet: the background level settles, and the greeting's first round (12 languages, 3 s each) loads each font's cmap once
MIN_MARGIN_S = 10.0  # idle starts at least this long after a conversation's audio ends ...
AFTER_LAST_WORDS_S = 3.0  # ... and this long after its last words were printed
PEER_MARGIN_S = 5.0  # the front end alone has nothing to finish after a conversation
CLEAR_AFTER_S, IDLE_SLEEP_S = 60.0, 600.0  # [display] defaults: words leave the faces, then the panels sleep
NICE = -5  # systemd/madoguchi.service: Nice=-5 (applied when this bench may, i.e. as root)
# A clear leak: the steady part's RSS rises faster than LEAK_MB_PER_H *and* by more than
# LEAK_MIN_GROWTH_MB in all. 50 MB/h is ~600 MB over a 12-hour counter day: the whole headroom
# between the service's ~350-500 MB and the 1 GB bar, so a box would not get through one day; the
# absolute floor keeps allocator noise (arenas, a few MB that come and go) in a short run from
# passing for a slope. Smaller slopes are printed, not failed: a 30-minute run cannot tell them from
# caches filling up.
LEAK_MB_PER_H = 50.0
LEAK_MIN_GROWTH_MB = 25.0
BOOTSTRAP = (
    "import ctypes,runpy,sys,threading\n"
    "_prctl=ctypes.CDLL(None).prctl\n"
    "def _named(inner):\n"
    "    def run(self):\n"
    "        try: _prctl(15, self.name.encode()[:15], 0, 0, 0)\n"
    "        except Exception: pass\n"
    "        inner(self)\n"
    "    return run\n"
    "threading.Thread._bootstrap_inner=_named(threading.Thread._bootstrap_inner)\n"
    "_prctl(15, b'main', 0, 0, 0)\n"
    "sys.argv[0]='madoguchi'\n"
    "runpy.run_module('madoguchi', run_name='__main__', alter_sys=True)\n"
)


# --- the recording ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    lead_s: float  # idle before the first conversation
    idle_cycle_s: tuple[float, ...]  # idle between conversations, in turn
    total_s: float
    min_tail_s: float  # idle after the last conversation at least (its words come out)
    peer_s: float  # how much of the recording the peers replay


def plan_for(minutes: float, quick: bool) -> Plan:
    if quick:  # one idle stretch between two conversations; the lead is warm-up
        return Plan(lead_s=45.0, idle_cycle_s=(75.0,), total_s=round(minutes * 60.0), min_tail_s=15.0, peer_s=95.0)
    # 3, 5, 2, 4, 11 (panels asleep after 10), 2.5, 7 and 1.5 minutes of nobody at the counter
    return Plan(lead_s=60.0, idle_cycle_s=(180.0, 300.0, 120.0, 240.0, 660.0, 150.0, 420.0, 90.0), total_s=round(minutes * 60.0), min_tail_s=30.0, peer_s=240.0)


def layout(plan: Plan, conversation_s: float) -> list[tuple[str, float]]:
    """(kind, seconds) in order: idle lead, then conversations and idle stretches, ending idle."""
    parts, t, i = [("idle", plan.lead_s)], plan.lead_s, 0
    while t + conversation_s + plan.min_tail_s <= plan.total_s:
        parts.append(("conversation", conversation_s))
        t += conversation_s
        gap = plan.idle_cycle_s[i % len(plan.idle_cycle_s)]
        i += 1
        if t + gap + conversation_s + plan.min_tail_s > plan.total_s:
            break
        parts.append(("idle", gap))
        t += gap
    if plan.total_s - t > 0:
        parts.append(("idle", plan.total_s - t))
    if not any(kind == "conversation" for kind, _ in parts):
        raise SystemExit(f"--minutes {plan.total_s / 60:g} leaves no room for a conversation ({conversation_s:.0f} s) after the {plan.lead_s:.0f} s lead")
    return parts


@dataclass
class Recording:
    wav: Path
    timeline: dict  # stretches (kind, start_s, end_s), expected utterances, chatter bursts

    @property
    def conversations(self) -> list[dict]:
        return [s for s in self.timeline["stretches"] if s["kind"] == "conversation"]

    @property
    def idles(self) -> list[dict]:
        return [s for s in self.timeline["stretches"] if s["kind"] == "idle"]


def _ramp(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float64)))[:, None]


def _blend(floor: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """``piece`` over ``floor`` (same shape), faded in and out over FADE_S."""
    n = min(int(FADE_S * RATE), len(piece) // 2)
    weight = np.ones((len(piece), 1))
    weight[:n] = _ramp(n)
    weight[len(piece) - n:] = _ramp(n)[::-1]
    return piece * weight + floor * (1.0 - weight)


def build_recording(plan: Plan) -> Recording:
    """The long recording, from the cache when the same plan, demo and generator made it before."""
    flac = DEMO / "counter-demo.flac"
    truth = json.loads((DEMO / "counter-demo.truth.json").read_text(encoding="utf-8"))
    demo, rate = sf.read(flac, dtype="float64", always_2d=True)
    if rate != RATE:
        raise SystemExit(f"{flac}: {rate} Hz, expected {RATE}")
    conversation_s = len(demo) / RATE
    parts = layout(plan, conversation_s)
    key = stable_hash({
        "parts": parts, "demo": hashlib.sha256(flac.read_bytes()).hexdigest(), "noise_dbfs": NOISE_DBFS, "chatter": CHATTER_S,
        "chatter_every_s": CHATTER_EVERY_S, "fade_s": FADE_S, "made_by": made_by([__file__], packages=("numpy", "soundfile")),
    })
    folder = cache_dir("soak", key[:20])
    wav, timeline_file = folder / "soak.wav", folder / "timeline.json"
    if wav.is_file() and timeline_file.is_file():
        return Recording(wav, json.loads(timeline_file.read_text(encoding="utf-8")))

    rng = np.random.default_rng(11)
    sigma = 10.0 ** (NOISE_DBFS / 20.0)
    chatter = [demo[int(a * RATE):int(b * RATE)] for a, b in CHATTER_S]
    stretches, expected, bursts = [], [], []
    t = 0.0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=folder)
    os.close(fd)
    try:
        with sf.SoundFile(tmp, "w", samplerate=RATE, channels=demo.shape[1], subtype="PCM_16", format="WAV") as out:
            for kind, seconds in parts:
                n = int(round(seconds * RATE)) if kind == "idle" else len(demo)
                floor = rng.normal(0.0, sigma, (n, demo.shape[1]))
                if kind == "conversation":
                    audio = _blend(floor, demo)
                    expected += [{**{k: seg[k] for k in ("side", "lang", "text")}, "start_s": round(t + seg["start_s"], 3), "end_s": round(t + seg["end_s"], 3)} for seg in truth["segments"]]
                else:
                    audio = floor
                    at = t + rng.uniform(*CHATTER_EVERY_S)
                    while at + 2.0 < t + seconds - 5.0:
                        which = int(rng.integers(len(chatter)))
                        piece = chatter[which]
                        i = int((at - t) * RATE)
                        audio[i:i + len(piece)] = _blend(audio[i:i + len(piece)], piece)
                        bursts.append({"start_s": round(at, 3), "end_s": round(at + len(piece) / RATE, 3), "from_demo_s": CHATTER_S[which]})
                        at += len(piece) / RATE + rng.uniform(*CHATTER_EVERY_S)
                out.write(np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16))
                stretches.append({"kind": kind, "start_s": round(t, 3), "end_s": round(t + n / RATE, 3)})
                t += n / RATE
        os.replace(tmp, wav)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    timeline = {"duration_s": round(t, 3), "stretches": stretches, "expected": expected, "chatter": bursts,
                "per_conversation": len(truth["segments"]), "source": str(flac.relative_to(ROOT))}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(timeline, f, ensure_ascii=False, indent=1)
    os.replace(tmp, timeline_file)
    return Recording(wav, timeline)


# --- the box's configuration ---------------------------------------------------------------------------
def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string is a JSON string for these paths and names


def write_config(path: Path, extra: dict[str, dict[str, object]]) -> Path:
    """counter-demo.toml (the array and the sides the demo was recorded with) plus ``extra`` tables."""
    text = (DEMO / "counter-demo.toml").read_text(encoding="utf-8")
    demo_tables = tomllib.loads(text)
    clash = set(demo_tables) & set(extra)
    if clash:
        raise SystemExit(f"counter-demo.toml already has {sorted(clash)}: merge them here")
    for table, values in extra.items():
        text += f"\n[{table}]\n" + "".join(f"{key} = {_toml_value(value)}\n" for key, value in values.items())
    path.write_text(text, encoding="utf-8")
    return path


# --- watching the child --------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the service starts none today; counted if it ever does)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores; /proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    wall: float  # monotonic
    rss_mb: float
    hwm_mb: float
    cpu_s: float  # utime + stime of the tree, from /proc/PID/stat (clock ticks; includes exited threads)
    threads: dict[str, float]  # "pid/tid name" -> CPU seconds so far (schedstat, ns resolution)
    machine_s: float = 0.0  # machine_busy_s() at the same moment


def sample(pid: int) -> Sample | None:
    now = time.monotonic()
    tick = os.sysconf("SC_CLK_TCK")
    rss = hwm = cpu = 0.0
    threads: dict[str, float] = {}
    alive = False
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        alive = True
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1]) / 1024
        cpu += (int(stat[11]) + int(stat[12])) / tick
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                runtime = int(Path(f"/proc/{p}/task/{tid}/schedstat").read_text().split()[0])
                name = Path(f"/proc/{p}/task/{tid}/comm").read_text().strip()
            except (OSError, ValueError, IndexError):
                continue
            threads[f"{p}/{tid} {name}"] = runtime / 1e9
    return Sample(now, rss, hwm, cpu, threads, machine_busy_s()) if alive else None


@dataclass
class Run:
    """One ``madoguchi run`` child: its samples, what it printed (with arrival times), its notifications."""

    name: str
    command: list[str]
    samples: list[Sample] = field(default_factory=list)
    lines: list[tuple[float, dict]] = field(default_factory=list)
    notify: NotifySocket | None = None
    returncode: int | None = None
    stopped_by_us: bool = False
    hung: bool = False  # still running long after its recording ended: stopped, and counted as a crash
    stderr_file: Path | None = None
    t0: float | None = None  # monotonic time of READY: audio time 0 (capture starts with READY)

    def audio_time(self, wall: float) -> float:
        assert self.t0 is not None
        return wall - self.t0

    @property
    def finals(self) -> list[tuple[float, dict]]:
        return [(t, r) for t, r in self.lines if not r.get("partial")]


def _as_the_unit() -> None:
    """In the child before exec: the unit's Nice= (the box's speech work wins over housekeeping, and here over other jobs)."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except PermissionError:
        pass


def start_child(run: Run, env: dict[str, str], workdir: Path) -> subprocess.Popen:
    run.notify = NotifySocket(workdir / f"{run.name}.notify")
    env = {**env, "NOTIFY_SOCKET": str(run.notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC), "PYTHONUNBUFFERED": "1"}
    run.stderr_file = workdir / f"{run.name}.stderr.log"
    stderr = open(run.stderr_file, "wb")  # closed right after the child inherited it
    child = subprocess.Popen(run.command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env, cwd=ROOT, text=True, encoding="utf-8", preexec_fn=_as_the_unit)
    stderr.close()  # the child holds its own copy

    def read_stdout() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            try:
                run.lines.append((time.monotonic(), json.loads(line)))
            except json.JSONDecodeError:
                pass

    threading.Thread(target=read_stdout, name=f"{run.name}-stdout", daemon=True).start()
    return child


def watch(children: list[tuple[Run, subprocess.Popen]], stop_after_s: dict[str, float], give_up_after_s: float, ready_timeout_s: float = 300.0) -> None:
    """Sample every child once a second until all have exited; SIGTERM those with a stop_after_s
    (audio seconds after READY). A child that never gets READY is killed after ready_timeout_s; one
    still running give_up_after_s after READY is hung: SIGTERM, SIGKILL 30 s later."""
    started = time.monotonic()
    next_tick = started
    while any(c.poll() is None for _, c in children):
        for run, child in children:
            if child.poll() is not None:
                continue
            assert run.notify is not None
            if run.t0 is None and run.notify.ready.is_set():
                run.t0 = run.notify.first("READY")
            if run.t0 is None and time.monotonic() - started > ready_timeout_s:
                child.kill()
                continue
            got = sample(child.pid)
            if got is not None and run.t0 is not None:
                run.samples.append(got)
            limit = stop_after_s.get(run.name)
            if limit is not None and run.t0 is not None and time.monotonic() - run.t0 >= limit and not run.stopped_by_us:
                run.stopped_by_us = True
                child.send_signal(signal.SIGTERM)
            if run.t0 is not None and time.monotonic() - run.t0 >= give_up_after_s:
                if not run.hung:
                    run.hung = True
                    child.send_signal(signal.SIGTERM)
                elif time.monotonic() - run.t0 >= give_up_after_s + 30.0:
                    child.kill()
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.monotonic()))
    for run, child in children:
        run.returncode = child.wait()
        if run.t0 is None and run.notify is not None and run.notify.ready.is_set():
            run.t0 = run.notify.first("READY")


# --- analysis ----------------------------------------------------------------------------------------------
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


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _mean(values: np.ndarray) -> float:
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


# --- the plot --------------------------------------------------------------------------------------------------
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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

    from tests.mqtt_broker import Broker  # a real mosquitto: TLS, a box login, the shipped ACL

    rec = build_recording(plan)
    print(f"recording: {rec.wav} ({rec.timeline['duration_s'] / 60:.1f} min, {len(rec.conversations)} conversations of {rec.timeline['per_conversation']} turns, "
          f"{len(rec.timeline['chatter'])} bursts of the neighbour's voice; built or cached in {time.monotonic() - wall_start:.0f} s)", flush=True)

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    broker = Broker(work / "broker")
    broker.start()
    login = broker.add_box(SITE, BOX)
    watcher = broker.subscriber(f"madoguchi/v1/{SITE}/{BOX}/#")
    try:
        def mqtt(box: str, box_login) -> dict[str, object]:
            return {"host": broker.host, "port": broker.port, "tls": True, "ca_file": str(broker.ca_file), "username": box_login.username,
                    "password_file": str(box_login.password_file), "site": SITE, "box_id": box, "spool_path": str(work / f"{box}-spool.sqlite3")}

        (work / "state").mkdir()
        sinks = {"display": {"driver": "dummy"}, "paths": {"state_dir": str(work / "state")}}
        config = write_config(work / "soak.toml", {"mqtt": mqtt(BOX, login), **sinks})
        peer_sinks_config = write_config(work / "peer-sinks.toml", {"mqtt": mqtt(f"{BOX}-peer", broker.add_box(SITE, f"{BOX}-peer")), **sinks})
        alone_config = write_config(work / "peer-alone.toml", {"display": {"driver": "none"}, "controls": {"enabled": False}, "paths": {"state_dir": str(work / "state")}})
        from tests.asr_assets import speech_model_store

        # Whisper base from the tests' model store (fetched and checked against the lock once).
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "MADOGUCHI_MODELS_DIR": str(speech_model_store().root)}
        launcher = [sys.executable, "-m", "madoguchi"] if args.plain else [sys.executable, "-c", BOOTSTRAP]
        common = ["run", "--no-system-config", "--replay", str(rec.wav)]

        main_run = Run("main", [*launcher, *common, "--config", str(config)])
        print(f"main run: madoguchi {' '.join(main_run.command[len(launcher):])}", flush=True)
        child = start_child(main_run, env, work)
        # A backlog of turns may outlast the recording (ASR on a busy machine), but not by this much.
        watch([(main_run, child)], {}, give_up_after_s=rec.timeline["duration_s"] + max(300.0, 0.5 * rec.timeline["duration_s"]))
        main_done = time.monotonic()
        watcher_wait_until = time.monotonic() + 10.0
        while time.monotonic() < watcher_wait_until:  # the spool drains after the child says goodbye; give stragglers a moment
            if usage_counts(watcher.messages).get("usage:utterance", 0) >= len(main_run.finals):
                break
            time.sleep(0.5)
        usage = usage_counts(watcher.messages)

        peers = {
            "frontend+sinks": Run("peer-sinks", [*launcher, *common, "--stages", "frontend", "--config", str(peer_sinks_config)]),
            "frontend alone": Run("peer-alone", [*launcher, *common, "--stages", "frontend", "--config", str(alone_config)]),
        }
        print(f"main run done in {(main_done - wall_start) / 60:.1f} min; peers for {plan.peer_s:.0f} s of audio, side by side", flush=True)
        if main_run.t0 is not None:  # no peers for a service that never started
            started = [(run, start_child(run, env, work)) for run in peers.values()]
            watch(started, {run.name: plan.peer_s for run in peers.values()}, give_up_after_s=plan.peer_s + 120.0)
    finally:
        watcher.close()
        broker.stop()
    wall_total = time.monotonic() - wall_start

    # --- figures ---
    for run in (main_run, *peers.values()):  # the services' logs go with the report
        if run.notify is not None:
            run.notify.close()
        if run.stderr_file and run.stderr_file.is_file():
            shutil.copyfile(run.stderr_file, out / run.stderr_file.name)
            run.stderr_file = out / run.stderr_file.name
    shutil.rmtree(work, ignore_errors=True)
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
        idle_per_window.append((a, b, _mean(main_sec.cpu_pct[sel]), int(sel.sum())))

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
    row("idle CPU, mean / p95", f"{_mean(idle_cpu):.2f} / {_pct(idle_cpu, 95):.1f} %", f"of one core; bar {IDLE_BAR_PCT:g} %: " + ("no idle seconds to judge" if not len(idle_cpu) else "within" if _mean(idle_cpu) <= IDLE_BAR_PCT else "OVER"))
    row("idle CPU by what the faces show", ", ".join(f"{name} {_mean(v):.2f} % ({len(v)} s)" for name, v in by_phase if len(v)),
        f"words: < {CLEAR_AFTER_S:g} s after the last speech; greeting; asleep: > {IDLE_SLEEP_S:g} s (panels off)")
    row("idle CPU per idle stretch", " ".join(f"{m:.2f}" for _, _, m, _ in idle_per_window) + " %", "in order" + (" (the first: the lead, before any conversation)" if windows and windows[0][0] < rec.conversations[0]["start_s"] else ""))
    row("busy CPU, mean / p95", f"{_mean(busy_cpu):.0f} / {_pct(busy_cpu, 95):.0f} %", "conversation start to its last words printed")
    others = main_sec.others_pct
    row("other processes on this machine", f"{_mean(others[idle]):.0f} % idle, {_mean(others[busy]):.0f} % busy",
        f"mean, % of one core of {os.cpu_count()}, during the main run's idle / busy seconds (not the box: load that competes for the cores and caches)")
    for name, sec in peer_secs.items():
        pi = sec.cpu_pct[sec.kind == "idle"]
        row(f"peer: --stages frontend, {name}, idle CPU", f"{_mean(pi):.2f} / {_pct(pi, 95):.1f} %",
            f"mean / p95 over {len(pi)} idle s of the first {plan.peer_s:.0f} s; other processes {_mean(sec.others_pct[sec.kind == 'idle']):.0f} %")
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


if __name__ == "__main__":
    raise SystemExit(main())
