"""How hot the box is, whether its firmware is holding it back, and what the ASR should do about it.

Readers take ``root`` (default ``/``) so tests hand them a fake sysfs tree; they return None
where the platform has no such reading (a PC without a thermal zone, anything but a Pi for the
throttled flags), never raise. :func:`load_level` is the policy, a pure function of one reading.

Pi 5 facts behind the thresholds: the firmware caps the ARM clock from 80 °C and throttles hard
at 85 °C (with its own "soft temperature limit" flag in between); the official active cooler
spins up in steps from 50 °C and runs flat out from 75 °C. Whisper on all four cores is what
heats a Pi 5 in a closed box, so the policy takes load off the CPU before the firmware does it
unpredictably (a capped clock makes every utterance's latency erratic):

============  ==============================================  ====================================
level         when                                            ASR
============  ==============================================  ====================================
``normal``    below 75 °C, nothing capped now                 ``max_threads``, configured model
``warm``      75–80 °C, or the soft temperature limit is on   one thread fewer (at least 1)
``hot``       80–85 °C, or the clock is capped/throttled now,  half the threads, the smaller model
              or the supply is under-voltage now
``critical``  85 °C and above                                 1 thread, the smaller model
============  ==============================================  ====================================

Going down a level needs the temperature :data:`HYSTERESIS_C` below the level's threshold when
the previous level is given, so the service does not swap models back and forth at a boundary.
The "has occurred since boot" bits never change the level: they are history, for the admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WARM_C = 75.0  # the Pi 5 cooler's top speed: heat is now outrunning it
HOT_C = 80.0  # the Pi 5 firmware starts capping the ARM clock
CRITICAL_C = 85.0  # the Pi 5 firmware throttles hard
HYSTERESIS_C = 3.0
LEVELS = ("normal", "warm", "hot", "critical")

THERMAL_DIR = Path("sys/class/thermal")
THROTTLED_FILE = Path("sys/devices/platform/soc/soc:firmware/get_throttled")
_PREFERRED_ZONES = ("cpu-thermal", "cpu_thermal", "x86_pkg_temp", "soc_thermal")

# Bits of the Pi firmware's get_throttled word (the same as `vcgencmd get_throttled`).
_BITS = {
    "under_voltage": 0, "freq_capped": 1, "throttled": 2, "soft_temp_limit": 3,
    "under_voltage_occurred": 16, "freq_capped_occurred": 17, "throttled_occurred": 18, "soft_temp_limit_occurred": 19,
}
_WORDS = {"under_voltage": "under-voltage", "freq_capped": "ARM frequency capped", "throttled": "throttled", "soft_temp_limit": "soft temperature limit"}


@dataclass(frozen=True)
class Throttled:
    """The decoded get_throttled word: four conditions now, and the same four since boot."""

    raw: int
    under_voltage: bool = False
    freq_capped: bool = False
    throttled: bool = False
    soft_temp_limit: bool = False
    under_voltage_occurred: bool = False
    freq_capped_occurred: bool = False
    throttled_occurred: bool = False
    soft_temp_limit_occurred: bool = False

    @property
    def now(self) -> bool:
        """Any of the four conditions is active right now."""
        return self.under_voltage or self.freq_capped or self.throttled or self.soft_temp_limit

    @property
    def occurred(self) -> bool:
        """Any of the four conditions happened at some time since boot."""
        return self.under_voltage_occurred or self.freq_capped_occurred or self.throttled_occurred or self.soft_temp_limit_occurred

    def active(self) -> list[str]:
        """Words for the conditions active now ("under-voltage", …)."""
        return [text for key, text in _WORDS.items() if getattr(self, key)]

    def past(self) -> list[str]:
        """Words for the conditions seen since boot."""
        return [text for key, text in _WORDS.items() if getattr(self, f"{key}_occurred")]


def decode_throttled(value: int) -> Throttled:
    """Decode a get_throttled word (e.g. 0x50005: under-voltage and throttled, now and since boot)."""
    return Throttled(value, **{key: bool(value >> bit & 1) for key, bit in _BITS.items()})


def cpu_temp_c(root: Path = Path("/")) -> float | None:
    """The CPU temperature in °C from /sys/class/thermal, or None without a readable zone.

    The zone of type ``cpu-thermal`` (the Pi's) is preferred, then other CPU zones, then the
    first zone that reads.
    """
    zones: list[tuple[int, str, float]] = []
    for zone in sorted((root / THERMAL_DIR).glob("thermal_zone*")):
        try:
            millideg = int((zone / "temp").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            kind = (zone / "type").read_text().strip()
        except OSError:
            kind = ""
        rank = _PREFERRED_ZONES.index(kind) if kind in _PREFERRED_ZONES else len(_PREFERRED_ZONES)
        zones.append((rank, zone.name, millideg / 1000.0))
    if not zones:
        return None
    return round(min(zones)[2], 1)


def throttled(root: Path = Path("/")) -> Throttled | None:
    """The Pi firmware's throttled flags from sysfs, or None off a Pi (no such file) or if unreadable."""
    try:
        text = (root / THROTTLED_FILE).read_text().strip()
        return decode_throttled(int(text.rpartition("=")[2], 16))  # "50005", "0x50005" or "throttled=0x50005"
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class LoadLevel:
    """What the ASR should do at this temperature: how many threads, and whether to use the smaller model."""

    level: str  # one of LEVELS
    asr_threads: int
    smaller_model: bool
    reason: str  # one line for logs and health: why this level


def _level_of(temp_c: float | None, limit_now: bool, hot_now: bool, margin: float) -> int:
    by_temp = 0
    if temp_c is not None:
        for index, threshold in ((3, CRITICAL_C), (2, HOT_C), (1, WARM_C)):
            if temp_c >= threshold - margin:
                by_temp = index
                break
    return max(by_temp, 2 if hot_now else 1 if limit_now else 0)


def load_level(temp_c: float | None, throttled: Throttled | None, *, max_threads: int = 4, previous: LoadLevel | None = None) -> LoadLevel:
    """The ASR's load for one reading (see the module's table); ``max_threads`` is the configured count.

    With ``previous`` (the last result), a higher level is kept until the temperature is
    :data:`HYSTERESIS_C` below that level's threshold. Unknown readings (None) mean ``normal``.
    """
    max_threads = max(1, int(max_threads))
    flags = throttled or Throttled(0)
    hot_now = flags.under_voltage or flags.freq_capped or flags.throttled
    index = _level_of(temp_c, flags.soft_temp_limit, hot_now, 0.0)
    if previous is not None and previous.level in LEVELS and LEVELS.index(previous.level) > index:
        index = max(index, min(LEVELS.index(previous.level), _level_of(temp_c, flags.soft_temp_limit, hot_now, HYSTERESIS_C)))
    threads = (max_threads, max(1, max_threads - 1), max(1, max_threads // 2), 1)[index]
    why = [f"{temp_c:.1f} °C" if temp_c is not None else "temperature unknown"]
    if flags.now:
        why.append(", ".join(flags.active()) + " now")
    return LoadLevel(LEVELS[index], threads, index >= 2, "; ".join(why))
