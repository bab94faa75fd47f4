"""``madoguchi calibrate``: learn each side's azimuth from a few seconds of that side speaking.

Each recording (or live capture) goes through the ordinary front end with the side sectors
opened wide, and the side's azimuth is the circular mean of its utterances' directions,
weighted by their length. The result is printed as a ``[sides]`` table and, with ``--write``,
merged into the config file atomically.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from pathlib import Path

from madoguchi.config import Settings, read_toml, settings_from_layers
from madoguchi.errors import CalibrationError
from madoguchi.events import FrontendEvent, Utterance
from madoguchi.files import atomic_write_text
from madoguchi.geometry import angular_distance_deg

MIN_SPEECH_S = 1.0
MAX_SPREAD_DEG = 30.0  # utterances of one seated talker that disagree more than this are suspect


def open_sectors(settings: Settings) -> Settings:
    """The same settings with no speech rejected as off-counter (we do not know the sides yet)."""
    return dataclasses.replace(settings, sides=dataclasses.replace(settings.sides, max_offset_deg=90.0, min_confidence=0.0))


def side_azimuth(side: str, events: Iterable[FrontendEvent]) -> tuple[float, float]:
    """Length-weighted circular mean azimuth and spread (deg) of the utterances in ``events``."""
    utterances = [e for e in events if isinstance(e, Utterance)]
    speech_s = sum(u.duration_s for u in utterances)
    if speech_s < MIN_SPEECH_S:
        raise CalibrationError(f"{side}: heard only {speech_s:.1f} s of speech; allowed: at least {MIN_SPEECH_S:g} s - have the {side} side talk normally for 5-10 s")
    x = sum(u.duration_s * math.cos(math.radians(u.azimuth_deg)) for u in utterances)
    y = sum(u.duration_s * math.sin(math.radians(u.azimuth_deg)) for u in utterances)
    mean = math.degrees(math.atan2(y, x)) % 360.0
    spread = max(angular_distance_deg(u.azimuth_deg, mean) for u in utterances)
    return round(mean, 1), round(spread, 1)


def calibrated(settings: Settings, staff_deg: float, resident_deg: float) -> Settings:
    """Validated settings with the learned azimuths (raises ConfigError if they coincide)."""
    layer = {"sides": {"staff_azimuth_deg": staff_deg, "resident_azimuth_deg": resident_deg}}
    layers = [(name, read_toml(Path(name))) for name in settings.sources] + [("calibration", layer)]
    return settings_from_layers(layers)


def sides_table(staff_deg: float, resident_deg: float) -> str:
    return f"[sides]\nstaff_azimuth_deg = {staff_deg}\nresident_azimuth_deg = {resident_deg}\n"


def write_sides(path: Path, staff_deg: float, resident_deg: float) -> None:
    """Set the two keys in ``path`` keeping everything else, via write-to-temp and rename."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    values = {"staff_azimuth_deg": staff_deg, "resident_azimuth_deg": resident_deg}
    section = re.search(r"^\[sides\][^\n]*\n(?P<body>(?:(?!^\[).*\n?)*)", text, flags=re.M)
    if section is None:
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + sides_table(staff_deg, resident_deg)
    else:
        body = section.group("body")
        for key, value in values.items():
            line = f"{key} = {value}\n"
            body, found = re.subn(rf"^{key}\s*=.*\n?", line, body, flags=re.M)
            if not found:
                body = line + body
        text = text[: section.start("body")] + body + text[section.end("body") :]
    atomic_write_text(path, text)
