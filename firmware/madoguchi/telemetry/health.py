"""Health readings of the box: what a fleet operator needs to see before a counter complains.

Each reading degrades to None where the platform does not offer it (a development PC has no
``vcgencmd`` and may have no thermal zone), so the same code runs on the Pi and in tests.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
_THROTTLED_NOW = 0x0F  # under-voltage, frequency capped, throttled, soft temperature limit: now
_THROTTLED_SINCE_BOOT = 0xF0000  # the same four, at any time since boot


def cpu_temp_c(zone: Path = THERMAL_ZONE) -> float | None:
    try:
        return round(int(zone.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        return None


def throttled() -> dict[str, Any] | None:
    """The Pi firmware's throttling flags (``vcgencmd get_throttled``), None off a Pi."""
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2, check=True).stdout
        raw = out.strip().split("=", 1)[1]
        flags = int(raw, 16)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None
    return {"raw": raw, "now": bool(flags & _THROTTLED_NOW), "since_boot": bool(flags & _THROTTLED_SINCE_BOOT)}


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
             panels: int | None = None, counter: dict[str, Any] | None = None, placement: dict[str, Any] | None = None) -> dict[str, Any]:
    """One health message (schemas/health.schema.json). ``placement``: where the last minutes' speech
    came from, and whether most of it came from outside both sides (the front end's verdict)."""
    total, available = memory_mb()
    return {
        "ts": round(ts, 3),
        "uptime_s": round(uptime_s(), 1),
        "cpu_temp_c": cpu_temp_c(),
        "throttled": throttled(),
        "load_1m": round(os.getloadavg()[0], 2),
        "mem_total_mb": total,
        "mem_available_mb": available,
        "disk_free_mb": disk_free_mb(state_dir),
        "mic_level_dbfs": None if mic_level_dbfs is None else round(mic_level_dbfs, 1),
        "audio_state": audio_state,
        "last_error": last_error,
        "panels": panels,
        "counter": counter,
        "placement": placement,
        "spool": spool,
    }
