"""The box under the soak: ``madoguchi run`` children started as the systemd unit would, their
configuration, and a once-a-second watch of their memory, CPU per thread and notifications."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tests.bench.soak.recording import DEMO, ROOT
from tests.notify import NotifySocket

WATCHDOG_USEC = 30_000_000  # systemd/madoguchi.service: WatchdogSec=30
NICE = -5  # systemd/madoguchi.service: Nice=-5 (applied when this bench may, i.e. as root)
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
