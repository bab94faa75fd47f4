"""Mic-array geometry: pure functions of positions and angles (no audio, no clock).

Conventions (fixed by the product brief): positions in metres in the array's own frame, in
captured channel order; azimuth in the array's x-y plane, degrees counter-clockwise from +x.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from madoguchi.config import Settings

MIN_MIC_SPACING_M = 0.005  # closer than this, two "mics" are the same point to any DOA method
MIN_SIDE_SEPARATION_DEG = 60.0  # sides closer than this cannot be told apart through reverberation
MAX_APERTURE_M = 1.0


def angular_distance_deg(a: float | np.ndarray, b: float | np.ndarray) -> float | np.ndarray:
    """Smallest absolute difference between two azimuths, in [0, 180]."""
    d = np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)
    return float(d) if np.ndim(d) == 0 else d


def unit_vectors(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Unit vectors (..., 3) pointing from the array towards each (azimuth, elevation)."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def mic_pairs(n_mics: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(n_mics), 2))


def arrival_lead_s(positions_m: np.ndarray, directions: np.ndarray, speed_m_s: float) -> np.ndarray:
    """How early (s) a far-field wave from each direction reaches each mic, relative to the origin.

    ``directions`` (..., 3) unit vectors; returns (..., n_mics).
    """
    return directions @ np.asarray(positions_m, dtype=float).T / speed_m_s


def linear_axis(positions_m: np.ndarray) -> np.ndarray | None:
    """The unit axis of a collinear array, or None if the mics span a plane or a volume."""
    centred = np.asarray(positions_m, dtype=float) - np.mean(positions_m, axis=0)
    _, s, vt = np.linalg.svd(centred)
    if len(s) < 2 or s[1] > 1e-3 * max(s[0], 1e-12):
        return None
    return vt[0]


def check_geometry(settings: Settings) -> list[tuple[str, str, str]]:
    """Cross-field checks of [array] and [sides]; returns (table, key, message) for each problem."""
    problems: list[tuple[str, str, str]] = []
    pos = np.asarray(settings.array.mic_positions_m, dtype=float).reshape(-1, 3)
    key = ("array", "mic_positions_m")
    if len(pos) < 2:
        problems.append((*key, f"{len(pos)} mic(s) given; allowed: at least 2 [x, y, z] positions (2-, 4- and 6-mic arrays are supported)"))
        return problems
    for i, j in mic_pairs(len(pos)):
        if np.linalg.norm(pos[i] - pos[j]) < MIN_MIC_SPACING_M:
            problems.append((*key, f"mics {i} and {j} are at the same position {pos[i].tolist()}; allowed: distinct positions at least {MIN_MIC_SPACING_M * 1000:g} mm apart"))
    aperture = max(np.linalg.norm(pos[i] - pos[j]) for i, j in mic_pairs(len(pos)))
    if aperture > MAX_APERTURE_M:
        problems.append((*key, f"the array spans {aperture:.2f} m; allowed: at most {MAX_APERTURE_M:g} m (positions are in metres, not millimetres)"))
    audio = settings.audio
    if audio.channel_map and len(audio.channel_map) != len(pos):
        problems.append(("audio", "channel_map", f"{len(audio.channel_map)} channels mapped but the array has {len(pos)} mics; allowed: one captured channel per mic"))
    if audio.channels and audio.channels < max(audio.channel_map or (len(pos) - 1,)) + 1:
        problems.append(("audio", "channels", f"{audio.channels} channels cannot hold {len(pos)} mics; allowed: 0 (one per mic) or at least {max(audio.channel_map or (len(pos) - 1,)) + 1}"))
    sides = settings.sides
    separation = angular_distance_deg(sides.staff_azimuth_deg, sides.resident_azimuth_deg)
    if separation < MIN_SIDE_SEPARATION_DEG:
        problems.append(("sides", "resident_azimuth_deg", f"{sides.resident_azimuth_deg:g} is only {separation:.0f} degrees from staff_azimuth_deg {sides.staff_azimuth_deg:g}; allowed: at least {MIN_SIDE_SEPARATION_DEG:g} degrees apart (the two sides face each other across the counter, ideally 180)"))
    axis = linear_axis(pos)
    if axis is not None and separation >= MIN_SIDE_SEPARATION_DEG:
        # A mic line hears only the angle to its own axis: the two sides must differ along it.
        s, r = (unit_vectors(np.array(a), np.array(0.0)) for a in (sides.staff_azimuth_deg, sides.resident_azimuth_deg))
        if abs(float(s @ axis) - float(r @ axis)) < 1.0:
            axis_az = math.degrees(math.atan2(axis[1], axis[0])) % 180.0
            problems.append(("sides", "resident_azimuth_deg", f"a {len(pos)}-mic line along {axis_az:.0f} degrees cannot tell staff ({sides.staff_azimuth_deg:g}) from resident ({sides.resident_azimuth_deg:g}); allowed: sides on opposite ends of the mic axis (e.g. {axis_az:.0f} and {axis_az + 180:.0f}) - mount the array with its mic axis across the counter"))
    if sides.min_frequency_hz >= sides.max_frequency_hz:
        problems.append(("sides", "max_frequency_hz", f"{sides.max_frequency_hz:g} is not above min_frequency_hz {sides.min_frequency_hz:g}; allowed: a band with max > min"))
    if settings.vad.silence_threshold > settings.vad.speech_threshold:
        problems.append(("vad", "silence_threshold", f"{settings.vad.silence_threshold:g} is above speech_threshold {settings.vad.speech_threshold:g}; allowed: at most speech_threshold"))
    return problems
