"""Which side of the counter spoke: a pure function of the steered response and the last side.

Each side owns the sector within ``max_offset_deg`` of its configured azimuth. The side whose
sector holds the stronger response wins; confidence is how much stronger, relative to the
response's own floor plus a small constant (a nearly flat response, which is no evidence at
all, must not look confident because of a ripple). Hysteresis: an utterance whose evidence is too weak to call
(``min_confidence``) keeps the previous side rather than flapping. Speech whose peak lies
outside both sectors came from elsewhere (the next counter) and is marked off-counter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from madoguchi.config import SidesSettings
from madoguchi.events import Side
from madoguchi.frontend.doa import SteeredResponse
from madoguchi.geometry import angular_distance_deg

FLAT_RESPONSE_MARGIN = 0.05  # in units of a perfectly coherent source's response


@dataclass(frozen=True)
class SideDecision:
    side: Side
    azimuth_deg: float
    elevation_deg: float
    confidence: float  # 0 = no idea, 1 = all the response on one side
    held: bool = False  # confidence was too low: the previous side was kept
    off_counter: bool = False  # the peak lies outside both sides' sectors


def decide_side(response: SteeredResponse, sides: SidesSettings, previous: Side | None) -> SideDecision:
    azimuth, elevation = response.peak()
    power = response.power
    to_staff = angular_distance_deg(response.azimuth_deg, sides.staff_azimuth_deg)
    to_resident = angular_distance_deg(response.azimuth_deg, sides.resident_azimuth_deg)
    staff = float(np.max(power[to_staff <= sides.max_offset_deg]))
    resident = float(np.max(power[to_resident <= sides.max_offset_deg]))
    floor = float(np.min(power))
    winner, loser = max(staff, resident), min(staff, resident)
    confidence = (winner - loser) / (winner - floor + FLAT_RESPONSE_MARGIN)
    side: Side = "staff" if staff >= resident else "resident"
    off_counter = min(angular_distance_deg(azimuth, sides.staff_azimuth_deg), angular_distance_deg(azimuth, sides.resident_azimuth_deg)) > sides.max_offset_deg
    held = confidence < sides.min_confidence and previous is not None and previous != side
    return SideDecision(
        side=previous if held and previous is not None else side,
        azimuth_deg=round(azimuth, 1),
        elevation_deg=elevation,
        confidence=round(confidence, 3),
        held=held,
        off_counter=off_counter,
    )
