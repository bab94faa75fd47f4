"""Health readings of the box: what a fleet operator needs to see before a counter complains.

Each reading degrades to None where the platform does not offer it (a development PC has no
Pi firmware flags and may have no thermal zone: thermal.py), so the same code runs on the Pi and in tests.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from madoguchi import thermal

log = logging.getLogger(__name__)



def throttled_reading() -> dict[str, Any] | None:
    """The Pi firmware's throttling flags for health (thermal.py reads them), None off a Pi."""
    flags = thermal.throttled()
    if flags is None:
        return None
    return {"raw": hex(flags.raw), "now": flags.now, "since_boot": flags.occurred}


def memory_mb() -> tuple[float | None, float | None]:
    """(total, available) from /proc/meminfo."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        return round(int(fields["MemTotal"].split()[0]) / 1024, 1), round(int(fields["MemAvailable"].split()[0]) / 1024, 1)
    except (OSError, KeyError, ValueError):
        return None, None


def uptime_s() -> float:
    try:
        return float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return time.monotonic()


def disk_free_mb(path: str) -> float | None:
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return round(shutil.disk_usage(probe).free / 2**20, 1)
    except OSError:
        return None


def readings(state_dir: str, *, mic_level_dbfs: float | None, audio_state: str | None, last_error: str | None, spool: dict[str, Any], ts: float,
             panels: int | None = None, counter: dict[str, Any] | None = None, placement: dict[str, Any] | None = None,
             session: dict[str, Any] | None = None, thermal_load: dict[str, Any] | None = None) -> dict[str, Any]:
    """One health message (schemas/health.schema.json). ``placement``: where the last minutes' speech
    came from, and whether most of it came from outside both sides (the front end's verdict)."""
    total, available = memory_mb()
    return {
        "ts": round(ts, 3),
        "uptime_s": round(uptime_s(), 1),
        "cpu_temp_c": thermal.cpu_temp_c(),
        "throttled": throttled_reading(),
        "load_1m": round(os.getloadavg()[0], 2),
        "mem_total_mb": total,
        "mem_available_mb": available,
        "disk_free_mb": disk_free_mb(state_dir),
        "mic_level_dbfs": None if mic_level_dbfs is None else round(mic_level_dbfs, 1),
        "audio_state": audio_state,
        "last_error": last_error,
        "panels": panels,
        "counter": counter,
        "session": session,
        "thermal": thermal_load,
        "placement": placement,
        "spool": spool,
    }
