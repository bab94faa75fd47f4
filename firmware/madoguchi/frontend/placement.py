"""Do the configured sides match the room? A verdict from where the speech came from.

A ``[sides]`` table that does not match the room (a wrong azimuth, an array turned on the
counter) fails silently: speech from outside both sides' sectors is ignored by design, because
that is what the next counter's babble looks like. ``PlacementTracker`` watches the seconds of
speech the two sides got and the seconds that came from elsewhere, and says when the second
share is too large to be babble. It is pure: front-end events in (utterances, and the
``off_counter`` stretches the front end reports with their directions), with their audio times;
a ``Placement`` out; no clock, no device.

The verdict, each condition with its reason (figures: the bundled demo and the simulated counters
of tests/sim, replayed through the front end; ``tests/test_placement.py``):
- at least ``MIN_HEARD_S`` of speech heard, so a few words prove nothing;
- ``OFF_SHARE`` or more of it from outside both sectors. A wrong side loses one of the two
  talkers, about half the speech, but the gate lets the room's background level rise with a
  talker it ignores, so only 30-90 % of it is measured as off-sector (the demo with the staff at
  183 instead of 270 deg: 53 %); the 24 standard counters, one to three neighbours talking in most,
  measure at most 6 % (the demo 1 %);
- that off-sector speech comes from across the counter, ``ACROSS_DEG`` or more from where the
  side that is heard speaks, not from beside it, where the neighbours are;
- and that side is heard where the config puts it (within ``SIDE_CORE_DEG`` of its azimuth): a
  talker at the counter, not the neighbours' babble leaking in at a sector's edge. These two keep
  an idle counter beside busy ones quiet (18 simulated ones, with up to 100 % of what they hear
  off-sector: no verdict). A box that hears nothing at all from either side says nothing: idle, or an array turned
  by 90 degrees, cannot be told apart from directions alone.
With the staff set 93 degrees from the resident, 12 of the 24 standard counters get the verdict;
the others lose less than 30 % (their clerk still falls in a sector, or the wrong sector merges
the clerk into the resident's utterances, which no count of directions can see), hear less than
``MIN_SIDE_S`` from the side that is right, or are 2-mic lines, whose directions are coarse.
Live, the window is the last ``LIVE_WINDOW_S`` of audio and the verdict clears only below
``CLEAR_SHARE`` (hysteresis: one message when it turns on, not one per utterance).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from madoguchi.config import Settings, SidesSettings
from madoguchi.events import FrontendEvent, Utterance, UtteranceRejected
from madoguchi.geometry import angular_distance_deg

MIN_HEARD_S = 10.0  # speech heard (both sides and elsewhere) before any verdict
OFF_SHARE = 0.3  # off-sector share of that speech that turns the verdict on
CLEAR_SHARE = 0.2  # ... and below which it turns off again
ACROSS_DEG = 90.0  # off-sector speech this far from the sides' speech is across the counter
SIDE_CORE_DEG = 55.0  # ... and the side heard is a talker where the config puts it, not babble at a sector's edge
MIN_SIDE_S = 3.0  # speech the sides must have got to compare directions with
CLUSTER_DEG = 15.0  # one talker's speech lies within this of its direction
MAX_DIRECTIONS = 3
MIN_DIRECTION_S = 0.5  # a direction holding less than this is not worth naming
LIVE_WINDOW_S = 300.0
HINT_CODE = "check_sides"  # the faces' status line while the verdict holds (live)


@dataclass(frozen=True)
class Direction:
    azimuth_deg: float
    seconds: float
    side: str | None = None  # the side whose sector it is in; None: outside both

    def as_dict(self) -> dict[str, Any]:
        return {"azimuth_deg": round(self.azimuth_deg, 1), "seconds": round(self.seconds, 1), "side": self.side}


@dataclass(frozen=True)
class Placement:
    """Where the speech came from, and whether the sides look wrong (``off_sector``)."""

    off_sector: bool
    heard_s: float  # seconds of speech: what the sides got plus what came from elsewhere
    off_sector_s: float
    directions: tuple[Direction, ...]  # main directions of all that speech, most seconds first
    window_s: float | None = None  # None: the whole run

    @property
    def share(self) -> float:
        return self.off_sector_s / self.heard_s if self.heard_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able (health's ``placement``)."""
        return {
            "off_sector": self.off_sector,
            "window_s": self.window_s,
            "heard_s": round(self.heard_s, 1),
            "off_sector_s": round(self.off_sector_s, 1),
            "share": round(self.share, 3),
            "directions": [d.as_dict() for d in self.directions],
        }

    def describe(self, sides: SidesSettings) -> str:
        """Two lines: how much came from outside the sectors as configured, and the directions speech came from."""
        heard = ", ".join(f"{d.azimuth_deg:.0f} deg {d.seconds:.1f} s ({d.side or 'outside both'})" for d in self.directions) or "nothing"
        return (f"{self.off_sector_s:.1f} of {self.heard_s:.1f} s of speech ({100 * self.share:.0f} %) came from outside both sides' sectors "
                f"([sides] staff {sides.staff_azimuth_deg:g} deg, resident {sides.resident_azimuth_deg:g} deg, each +-{sides.max_offset_deg:g} deg)\n"
                f"  heard from: {heard}")


@dataclass(frozen=True)
class _Span:
    start_s: float
    end_s: float
    azimuth_deg: float
    side: str | None  # None: from outside both sectors

    @property
    def seconds(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def _clusters(spans: list[_Span]) -> list[tuple[float, float, str | None]]:
    """(azimuth, seconds, side) of the directions holding the most speech, most first.

    A 1-degree histogram of seconds; the window of +-CLUSTER_DEG holding the most is one
    direction (its weighted circular mean), taken out, and so on. O(spans + 360) per direction.
    """
    if not spans:
        return []
    seconds = np.array([s.seconds for s in spans])
    bins = np.round([s.azimuth_deg for s in spans]).astype(int) % 360
    hist = np.bincount(bins, weights=seconds, minlength=360)
    names = np.array([s.side or "" for s in spans])
    sides = {name: np.bincount(bins[names == name], weights=seconds[names == name], minlength=360) for name in set(names.tolist())}
    width = int(CLUSTER_DEG)
    offsets = np.arange(-width, width + 1)
    angles = np.radians(np.arange(360))
    found = []
    while hist.sum() > 1e-9 and len(found) < 2 * MAX_DIRECTIONS:
        windowed = sum(np.roll(hist, -k) for k in offsets)  # windowed[i]: seconds within +-width of i
        centre = int(np.argmax(windowed))
        members = (centre + offsets) % 360
        weight = hist[members]
        azimuth = math.degrees(math.atan2(float(weight @ np.sin(angles[members])), float(weight @ np.cos(angles[members])))) % 360.0
        side = max(sides, key=lambda name: float(sides[name][members].sum()))
        found.append((azimuth, float(weight.sum()), side or None))
        hist[members] = 0.0
        for counts in sides.values():
            counts[members] = 0.0
    return found


def line_axis_deg(mic_positions_m) -> float | None:
    """The azimuth of the array's axis if its mics lie on one line (seen from above), else None."""
    xy = np.asarray(mic_positions_m, dtype=float)[:, :2]
    xy = xy - xy.mean(axis=0)
    _, spread, directions = np.linalg.svd(xy, full_matrices=False)
    if len(spread) > 1 and spread[1] > 1e-6 * max(spread[0], 1e-12):
        return None
    return math.degrees(math.atan2(directions[0][1], directions[0][0])) % 360.0


class PlacementTracker:
    """Front-end events in (audio time), a ``Placement`` out. ``window_s`` None: everything since the start.

    ``axis_deg``: a line array's axis. A line measures only the angle from its axis (a direction and
    its mirror image across the axis are the same to it), so directions are compared by that angle.
    """

    @classmethod
    def for_settings(cls, settings: Settings, window_s: float | None = None) -> PlacementTracker:
        return cls(settings.sides, window_s, line_axis_deg(settings.array.mic_positions_m))

    def __init__(self, sides: SidesSettings, window_s: float | None = None, axis_deg: float | None = None) -> None:
        self.sides = sides
        self.window_s = window_s
        self.axis_deg = axis_deg
        self._spans: deque[_Span] = deque()
        self._on = False

    def heard(self, event: FrontendEvent) -> None:
        """An utterance (speech one side got) or an off-counter rejection (speech from elsewhere); the rest is ignored."""
        if isinstance(event, Utterance):
            self._spans.append(_Span(event.start_s, event.end_s, event.azimuth_deg, event.side))
        elif isinstance(event, UtteranceRejected) and event.reason == "off_counter" and event.azimuth_deg is not None:
            self._spans.append(_Span(event.start_s, event.end_s, event.azimuth_deg, None))

    def verdict(self, now_s: float | None = None) -> Placement:
        """The verdict over the window ending at ``now_s`` (audio time; default: the last speech heard)."""
        if self.window_s is not None and self._spans:
            now_s = max(s.end_s for s in self._spans) if now_s is None else now_s
            while self._spans and self._spans[0].end_s < now_s - self.window_s:
                self._spans.popleft()
        spans = list(self._spans)
        off = [s for s in spans if s.side is None]
        on = [s for s in spans if s.side is not None]
        heard_s, off_s = sum(s.seconds for s in spans), sum(s.seconds for s in off)
        share = off_s / heard_s if heard_s > 0 else 0.0
        off_clusters, on_clusters = _clusters(off), _clusters(on)
        # Off-sector speech across the counter from a side heard where the config puts it: a talker misplaced, not babble.
        misplaced = (bool(off_clusters) and bool(on_clusters) and heard_s - off_s >= MIN_SIDE_S
                  and self._separation_deg(off_clusters[0][0], on_clusters[0][0]) >= ACROSS_DEG
                  and self._separation_deg(on_clusters[0][0], self._azimuth_of(on_clusters[0][2])) <= SIDE_CORE_DEG)
        if self._on and self.window_s is not None:  # live: it stays on until clearly fixed
            self._on = heard_s >= MIN_HEARD_S and share >= CLEAR_SHARE
        else:  # a whole run is judged as a whole
            self._on = heard_s >= MIN_HEARD_S and share >= OFF_SHARE and misplaced
        ranked = sorted(off_clusters + on_clusters, key=lambda c: -c[1])
        directions = tuple(Direction(round(a, 1), round(sec, 2), side) for a, sec, side in ranked if sec >= MIN_DIRECTION_S)[:MAX_DIRECTIONS]
        return Placement(self._on, round(heard_s, 2), round(off_s, 2), directions, self.window_s)

    def _azimuth_of(self, side: str | None) -> float:
        return self.sides.staff_azimuth_deg if side == "staff" else self.sides.resident_azimuth_deg

    def _separation_deg(self, a: float, b: float) -> float:
        if self.axis_deg is None:
            return angular_distance_deg(a, b)
        return abs(angular_distance_deg(a, self.axis_deg) - angular_distance_deg(b, self.axis_deg))
