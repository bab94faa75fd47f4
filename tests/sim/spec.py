"""Scene description types and counter geometry (light: no audio or room-acoustics imports).

Frames and conventions
----------------------
Room frame: metres, the counter runs along +x, the array sits on the counter top, the staff
seat is on the -y side and the resident stands on the +y side.
Array frame: the array's own x axis is the room x axis rotated CCW by `array_rotation_deg`
(r) around z. A room direction phi (degrees CCW from room +x) therefore has azimuth phi - r
in the array frame. All azimuths are degrees CCW from the array's +x, wrapped to [0, 360)
(the firmware's convention, madoguchi.geometry).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


def _circle(n: int, radius: float) -> np.ndarray:
    ang = np.deg2rad(np.arange(n) * 360.0 / n)
    return np.stack([radius * np.cos(ang), radius * np.sin(ang), np.zeros(n)], axis=1)


# Mic positions in the array frame (metres, z = 0), in channel order.
ARRAY_GEOMETRIES: dict[int, np.ndarray] = {
    # A 2-mic line can only tell front from back along its axis, so installs put this axis
    # across the counter (staff <-> resident); see SceneSpec.array_rotation_deg.
    2: np.array([[0.03, 0.0, 0.0], [-0.03, 0.0, 0.0]]),
    4: _circle(4, 0.032),  # square, mics at 0, 90, 180, 270 deg
    6: _circle(6, 0.0463),  # ReSpeaker-6-like circle, mics at 0, 60, ..., 300 deg
}
for _g in ARRAY_GEOMETRIES.values():
    _g.setflags(write=False)

STAFF_ROOM_DEG = -90.0  # staff seat direction in the room frame
RESIDENT_ROOM_DEG = 90.0


def wrap_deg(angle: float) -> float:
    """Wrap to [0, 360)."""
    a = float(angle) % 360.0
    return 0.0 if a == 360.0 else a  # -1e-17 % 360 rounds to 360.0


def angular_distance_deg(a: float, b: float) -> float:
    """Smallest absolute difference between two azimuths, in [0, 180]."""
    return abs((a - b + 180.0) % 360.0 - 180.0)


Line = tuple[str, str, str, str]  # (side, lang, text, voice)


@dataclass(frozen=True)
class TruthSegment:
    """Where one talker's (silence-trimmed) clip sits in the scene file."""

    start_s: float
    end_s: float
    side: str  # "staff" | "resident"
    lang: str  # ISO 639-1, e.g. "ja", "en", "vi"
    text: str
    azimuth_deg: float  # true horizontal direction of this talker in the array frame
    # Where in [start_s, end_s] the talker is actually voicing (pauses between sentences
    # and phrases excluded); empty means the whole segment.
    speech_spans: tuple[tuple[float, float], ...] = ()

    @property
    def spans(self) -> tuple[tuple[float, float], ...]:
        return self.speech_spans or ((self.start_s, self.end_s),)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class SceneSpec:
    """Everything that determines a scene; its hash is the cache key."""

    name: str
    n_mics: int  # 2, 4 or 6 (a key of ARRAY_GEOMETRIES)
    array_rotation_deg: float
    rt60_s: float  # 0.2-0.9 (requested via Sabine; the ISM result is recorded in truth.json)
    room_dim_m: tuple[float, float, float]
    staff_offset_deg: float  # talker's horizontal angle off the counter axis, |.| <= 45
    resident_offset_deg: float
    staff_distance_m: float  # horizontal distance from the array centre, 0.5-1.0
    resident_distance_m: float
    staff_mouth_z_m: float  # mouth height above the floor, 1.15-1.6
    resident_mouth_z_m: float
    lines: tuple[Line, ...]
    counter_z_m: float = 0.95  # counter top = array height
    n_babble: int = 0  # talkers at neighbouring counters, 0-3
    babble_gain_db: float = -3.0  # source level relative to the main talkers
    babble_distance_m: tuple[float, float] = (2.5, 4.0)  # neighbours' range along the counter from the array
    resident_gain_db: float = 0.0  # -10 for "a quiet resident"
    sample_rate: int = 16000  # 16000 (int16 wav) or 48000 (float32 wav)
    seed: int = 0
    self_noise_dbfs: float = -65.0  # white mic self-noise, RMS
    peak_dbfs: float = -3.0  # the mix is normalised to this peak before self-noise

    def __post_init__(self) -> None:
        if self.n_mics not in ARRAY_GEOMETRIES:
            raise ValueError(f"{self.name}: n_mics must be one of {sorted(ARRAY_GEOMETRIES)}")
        if self.sample_rate not in (16000, 48000):
            raise ValueError(f"{self.name}: sample_rate must be 16000 or 48000")
        if max(abs(self.staff_offset_deg), abs(self.resident_offset_deg)) > 45.0:
            raise ValueError(f"{self.name}: talker offsets must stay within +-45 deg")
        if not 0 <= self.n_babble <= 3:
            raise ValueError(f"{self.name}: n_babble must be 0-3")
        for side, _lang, _text, _voice in self.lines:
            if side not in ("staff", "resident"):
                raise ValueError(f"{self.name}: bad side {side!r}")

    @property
    def staff_azimuth_deg(self) -> float:
        """Nominal (installer-configured) direction of the staff seat in the array frame."""
        return wrap_deg(STAFF_ROOM_DEG - self.array_rotation_deg)

    @property
    def resident_azimuth_deg(self) -> float:
        return wrap_deg(RESIDENT_ROOM_DEG - self.array_rotation_deg)

    def talker_azimuth_deg(self, side: str) -> float:
        """True horizontal direction of the staff or resident talker in the array frame."""
        if side == "staff":
            return wrap_deg(self.staff_azimuth_deg + self.staff_offset_deg)
        return wrap_deg(self.resident_azimuth_deg + self.resident_offset_deg)

    def mic_positions(self) -> np.ndarray:
        """(n_mics, 3) mic positions in the array frame."""
        return ARRAY_GEOMETRIES[self.n_mics].copy()


def rotate_z(points: np.ndarray, deg: float) -> np.ndarray:
    """Rotate (n, 3) points CCW around z."""
    c, s = np.cos(np.deg2rad(deg)), np.sin(np.deg2rad(deg))
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return points @ rot.T


def azimuth_in_array(center: np.ndarray, position: np.ndarray, rotation_deg: float) -> float:
    """Horizontal direction of `position` seen from the array centre, in the array frame."""
    d = np.asarray(position) - np.asarray(center)
    return wrap_deg(round(wrap_deg(float(np.degrees(np.arctan2(d[1], d[0]))) - rotation_deg), 6))
