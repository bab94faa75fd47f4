"""``madoguchi calibrate``: learn each side's azimuth from a few seconds of that side speaking.

Each recording (or live capture) goes through the ordinary front end with the side sectors
opened wide, so the next counter's voices come through too: with the sectors unknown nothing
can be rejected by direction. The side's talker is the direction that holds most of the
speech (a length-weighted mode over the utterances), and its azimuth the circular mean of the
utterances within ``CLUSTER_DEG`` of it; the rest is reported as other voices, never averaged
in (one neighbour's 2 s at 306 deg once pulled a clerk at 8 deg to 359). The result is printed as
a ``[sides]`` table and, with ``--write``, merged into the config file atomically.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from madoguchi.app.sinks import CalibrationCollector
from madoguchi.config import Settings, read_toml, settings_from_layers
from madoguchi.errors import CalibrationError
from madoguchi.events import FrontendEvent, Utterance
from madoguchi.files import atomic_write_text
from madoguchi.geometry import angular_distance_deg

MIN_SPEECH_S = 1.0
CLUSTER_DEG = 20.0  # one seated talker's utterances agree within this (reverberant rooms included)
MIN_SHARE = 0.5  # the talker should hold at least this share of the speech heard


@dataclass(frozen=True)
class SideEstimate:
    """Where one side's talker sits, and what else was heard while calibrating it."""

    azimuth_deg: float
    speech_s: float  # the talker's speech the azimuth is made of
    other_voices: tuple[tuple[float, float], ...]  # (azimuth_deg, seconds) of utterances from elsewhere

    @property
    def share(self) -> float:
        return self.speech_s / (self.speech_s + sum(s for _, s in self.other_voices))


def open_sectors(settings: Settings) -> Settings:
    """The same settings with no speech rejected as off-counter (we do not know the sides yet)."""
    return dataclasses.replace(settings, sides=dataclasses.replace(settings.sides, max_offset_deg=90.0, min_confidence=0.0))


def _circular_mean(utterances: list[Utterance]) -> float:
    x = sum(u.duration_s * math.cos(math.radians(u.azimuth_deg)) for u in utterances)
    y = sum(u.duration_s * math.sin(math.radians(u.azimuth_deg)) for u in utterances)
    return math.degrees(math.atan2(y, x)) % 360.0


def side_azimuth(side: str, events: Iterable[FrontendEvent]) -> SideEstimate:
    """The direction holding most of the speech in ``events``, and the utterances from elsewhere."""
    utterances = [e for e in events if isinstance(e, Utterance)]
    speech_s = sum(u.duration_s for u in utterances)
    if speech_s < MIN_SPEECH_S:
        raise CalibrationError(f"{side}: heard only {speech_s:.1f} s of speech; allowed: at least {MIN_SPEECH_S:g} s - have the {side} side talk normally for 5-10 s")

    def near(centre: float) -> list[Utterance]:
        return [u for u in utterances if angular_distance_deg(u.azimuth_deg, centre) <= CLUSTER_DEG]

    mode = max((u.azimuth_deg for u in utterances), key=lambda a: sum(u.duration_s for u in near(a)))
    talker = near(mode)
    mean = _circular_mean(talker)
    talker = near(mean) or talker  # re-centred once on the cluster's own mean
    mean = _circular_mean(talker)
    kept = {id(u) for u in talker}
    others = tuple((u.azimuth_deg, round(u.duration_s, 2)) for u in utterances if id(u) not in kept)
    return SideEstimate(round(mean, 1), round(sum(u.duration_s for u in talker), 2), others)


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


def listen(settings: Settings, recording: Path) -> list[FrontendEvent]:
    """The front end's events for a recording of one side speaking (the session runner, front end only)."""
    from madoguchi.app.parts import recording_source

    return _collect(settings, recording_source(settings, recording), CalibrationCollector(), paced=False)


def listen_live(settings: Settings, side: str, seconds: float) -> list[FrontendEvent]:
    """``seconds`` of one side speaking at the array."""
    from madoguchi.audio.capture import PyAudioSource

    print(f"{side}: please speak normally for {seconds:g} seconds, starting now", file=sys.stderr)
    return _collect(settings, PyAudioSource(settings.audio, settings.array.n_mics), CalibrationCollector(seconds), paced=True)


def _collect(settings: Settings, source, collector: CalibrationCollector, paced: bool) -> list[FrontendEvent]:
    from madoguchi.app.runner import Runner

    asyncio.run(Runner(settings, source, [collector], paced=paced).run())
    return collector.events
