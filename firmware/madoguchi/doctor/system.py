"""The box itself: clock sync, disk space, the telemetry spool, temperature and throttling."""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from madoguchi import thermal
from madoguchi.config import Settings
from madoguchi.doctor.base import Check, fail, ok, skip, warn

DISK_FAIL_MB = 100.0
DISK_WARN_MB = 500.0
SPOOL_WARN_SHARE = 0.8  # past this share of its bound, the spool soon drops the oldest messages
EARLIEST_PLAUSIBLE = 1_704_067_200  # 2024-01-01: a clock before this was never set (no RTC battery, no NTP yet)
NTP_FIX = ("the box needs NTP: check `timedatectl timesync-status`; the site firewall must let UDP 123 through, "
           "or set NTP= to the site's time server in /etc/systemd/timesyncd.conf")

# --- clock --------------------------------------------------------------------------------------


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (Linux, LP64), enough of it for a read-only adjtimex."""

    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int), ("constant", ctypes.c_long), ("precision", ctypes.c_long),
                ("tolerance", ctypes.c_long), ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("_padding", ctypes.c_int * 11)]


_STA_UNSYNC = 0x0040
_TIME_ERROR = 5
_MAXERROR_US = 16_000_000  # systemd's own rule: a kernel max error of 16 s or more is not synchronised


def clock_synced() -> tuple[bool | None, str]:
    """(synchronised?, how we know); None when nothing can tell.

    timedatectl first (systemd's view), else the kernel's own flag through adjtimex(2), which is
    what systemd reads too, else /run/systemd/timesync/synchronized (present once timesyncd synced).
    """
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=3, check=False)
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return out.stdout.strip() == "yes", "timedatectl"
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
        if state >= 0:
            synced = state != _TIME_ERROR and not timex.status & _STA_UNSYNC and timex.maxerror < _MAXERROR_US
            return synced, "kernel (adjtimex)"
    except (OSError, AttributeError):
        pass
    if Path("/run/systemd/timesync/synchronized").exists():
        return True, "systemd-timesyncd"
    return None, ""


def clock_check(probe=clock_synced, now: float | None = None) -> Check:
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(now))
    if now < EARLIEST_PLAUSIBLE:
        return fail("clock", f"the clock says {stamp}: it was never set", NTP_FIX + "; TLS to the broker fails until it is right")
    synced, source = probe()
    if synced is None:
        return skip("clock", f"{stamp}; cannot tell whether it is synchronised (no timedatectl, adjtimex or timesyncd)")
    if not synced:
        return warn("clock", f"{stamp}, not synchronised ({source})", NTP_FIX)
    return ok("clock", f"{stamp}, synchronised ({source})")


# --- disk and spool -----------------------------------------------------------------------------


def free_mb(path: str | Path) -> tuple[float | None, Path]:
    """Free MB on the file system that holds ``path`` (its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free / 2**20, probe
    except OSError:
        return None, probe


def disk_checks(settings: Settings) -> list[Check]:
    places = {"state dir": settings.paths.state_dir}
    if settings.mqtt.enabled:
        places["spool dir"] = str(Path(settings.mqtt.spool_path).parent)
    lines, seen = [], set()
    for what, path in places.items():
        free, held_by = free_mb(path)
        device = held_by.stat().st_dev if held_by.exists() else None
        if device is not None and device in seen:
            continue  # the same file system: one line
        seen.add(device)
        name = f"disk ({what})"
        if free is None:
            lines.append(skip(name, f"cannot read the free space of {held_by}"))
        elif free < DISK_FAIL_MB:
            lines.append(fail(name, f"{path}: only {free:.0f} MB free", f"free space on {held_by}: `sudo journalctl --vacuum-size=50M`, remove old models (`madoguchi models list`)"))
        elif free < DISK_WARN_MB:
            lines.append(warn(name, f"{path}: {free:.0f} MB free", f"free space on {held_by}: `sudo journalctl --vacuum-size=50M`; a model fetch needs ~300 MB"))
        else:
            lines.append(ok(name, f"{path}: {free / 1024:.1f} GB free"))
    return lines


def spool_stats(path: Path) -> dict[str, float]:
    """Pending count, payload bytes, oldest age and drops of a spool file, read-only (the service may be writing)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2.0)
    try:
        pending, size = conn.execute("SELECT pending, bytes FROM totals").fetchone()
        oldest = conn.execute("SELECT MIN(created_ts) FROM items").fetchone()[0]
        dropped = conn.execute("SELECT COALESCE(SUM(count), 0) FROM counters").fetchone()[0]
    finally:
        conn.close()
    return {"pending": pending, "bytes": size, "oldest_age_s": (time.time() - oldest) if oldest else 0.0, "dropped": dropped}


def spool_check(settings: Settings) -> Check:
    mqtt = settings.mqtt
    if not mqtt.enabled:
        return skip("spool", "[mqtt] host is not set: nothing is spooled")
    path = Path(mqtt.spool_path)
    bound = int(mqtt.spool_max_mb * 1024 * 1024)  # as Spool.for_settings bounds it
    if not path.exists():
        return ok("spool", f"{path} not created yet: nothing waiting")
    try:
        stats = spool_stats(path)
    except sqlite3.Error as err:  # no read access to its WAL index, or not a spool
        on_disk = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        state = warn if on_disk > SPOOL_WARN_SHARE * bound else ok
        line = f"{path}: {on_disk / 2**20:.1f} MB on disk of a {mqtt.spool_max_mb:g} MB bound (contents unreadable: {err})"
        return state("spool", line, "run the doctor as root to read it: sudo madoguchi doctor") if state is warn else ok("spool", line)
    share = stats["bytes"] / bound
    found = f"{stats['pending']} message(s) waiting, {stats['bytes'] / 2**20:.1f} of {mqtt.spool_max_mb:g} MB"
    if stats["pending"]:
        found += f", oldest {stats['oldest_age_s'] / 3600:.1f} h"
    if stats["dropped"]:
        found += f", {stats['dropped']} dropped so far (bound reached)"
    if share >= SPOOL_WARN_SHARE or stats["oldest_age_s"] > 0.5 * mqtt.spool_max_age_days * 86400 or stats["dropped"]:
        return warn("spool", found, "the broker has not taken the box's messages for a long time: fix the broker lines; the spool drains by itself once connected")
    return ok("spool", found)


# --- temperature --------------------------------------------------------------------------------


def thermal_checks(settings: Settings, root: Path) -> list[Check]:
    temp = thermal.cpu_temp_c(root)
    flags = thermal.throttled(root)
    level = thermal.load_level(temp, flags, max_threads=settings.asr.threads)
    airflow = "give the box air: the Pi 5 active cooler fitted, vents free, out of direct sun and away from heaters"
    if temp is None:
        lines = [skip("temperature", f"no readable {root / thermal.THERMAL_DIR}/thermal_zone*/temp")]
    elif temp >= thermal.CRITICAL_C:
        lines = [fail("temperature", f"CPU {temp:.1f} °C: the firmware throttles hard from {thermal.CRITICAL_C:g} °C", airflow)]
    elif temp >= thermal.WARM_C:
        lines = [warn("temperature", f"CPU {temp:.1f} °C: ASR would drop to {level.asr_threads} thread(s)" + (", smaller model" if level.smaller_model else ""), airflow)]
    else:
        lines = [ok("temperature", f"CPU {temp:.1f} °C")]
    if flags is None:
        lines.append(skip("throttling", f"no {root / thermal.THROTTLED_FILE} (not a Raspberry Pi)"))
    elif flags.now:
        power = flags.under_voltage
        lines.append(fail("throttling", f"{', '.join(flags.active())} now (get_throttled {flags.raw:#x})",
                          "use the official 27 W (5 V, 5 A) USB-C supply and a short cable" if power else airflow))
    elif flags.occurred:
        power = flags.under_voltage_occurred
        lines.append(warn("throttling", f"{', '.join(flags.past())} since boot (get_throttled {flags.raw:#x})",
                          "use the official 27 W (5 V, 5 A) USB-C supply and a short cable" if power else airflow))
    else:
        lines.append(ok("throttling", f"never since boot (get_throttled {flags.raw:#x})"))
    return lines

