"""Where the talkers stand and what they say: dry source signals and truth segments."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from . import speech
from .scripts import BABBLE_VOICES, babble_pool
from .spec import RESIDENT_ROOM_DEG, STAFF_ROOM_DEG, SceneSpec, azimuth_in_array

log = logging.getLogger(__name__)

LEAD_S = 1.0  # room tone / babble only before the first line
TAIL_S = 1.0
GAP_S = (0.35, 1.2)  # pause between dialogue lines
# A neighbouring counter is a conversation too: each babble talker pauses while the person they
# talk with answers, so a neighbour voices about half the time, like the talkers here.
BABBLE_GAP_S = (0.5, 3.5)
SPAN_FRAME_S = 0.02
SPAN_GAP_S = 0.25  # pauses shorter than this are inside a phrase, not between phrases
SOURCE_LEVEL_DBFS = -23.0  # active-speech RMS every clip is levelled to before gains
SPEED_OF_SOUND = 343.0  # pyroomacoustics' default
WALL_MARGIN_M = 0.4


@dataclass(frozen=True, eq=False)
class Talker:
    role: str  # "staff" | "resident" | "babble"
    position: np.ndarray  # room frame, metres
    voice: str = ""
    lang: str = ""
    gain_db: float = 0.0

    def describe(self, center: np.ndarray, rotation_deg: float) -> dict:
        d = self.position - center
        horiz = float(np.hypot(d[0], d[1]))
        return {"role": self.role, "voice": self.voice, "lang": self.lang, "gain_db": self.gain_db,
                "position_m": self.position.tolist(), "horizontal_distance_m": horiz,
                "azimuth_deg": azimuth_in_array(center, self.position, rotation_deg),
                "elevation_deg": float(np.degrees(np.arctan2(d[2], horiz)))}


def _at(center: np.ndarray, room_deg: float, dist: float, z: float) -> np.ndarray:
    a = np.deg2rad(room_deg)
    return np.array([center[0] + dist * np.cos(a), center[1] + dist * np.sin(a), z])


def place_talkers(spec: SceneSpec, center: np.ndarray, rng: np.random.Generator) -> list[Talker]:
    """Staff, resident, then the babble talkers (neighbouring clerks and customers)."""
    first = {side: (voice, lang) for side, lang, _t, voice in reversed(spec.lines)}
    talkers = [
        Talker("staff", _at(center, STAFF_ROOM_DEG + spec.staff_offset_deg,
                            spec.staff_distance_m, spec.staff_mouth_z_m),
               *first.get("staff", ("", ""))),
        Talker("resident", _at(center, RESIDENT_ROOM_DEG + spec.resident_offset_deg,
                               spec.resident_distance_m, spec.resident_mouth_z_m),
               *first.get("resident", ("", "")), gain_db=spec.resident_gain_db),
    ]
    staff_voices = {v for s, _l, _t, v in spec.lines if s == "staff"}
    resident_voices = {v for s, _l, _t, v in spec.lines if s == "resident"}
    ja_voices = [v for v in speech.KOKORO_VOICES if v not in staff_voices]
    customers = [vl for vl in BABBLE_VOICES if vl[0] not in resident_voices]
    rng.shuffle(ja_voices)
    rng.shuffle(customers)
    # Alternate kinds so two or more babble talkers always mix a clerk and a customer.
    first_ja = bool(rng.integers(2))
    lx = spec.room_dim_m[0]
    base_dir = 1.0 if rng.integers(2) else -1.0
    near, far = spec.babble_distance_m
    for k in range(spec.n_babble):
        ja = (k % 2 == 0) == first_ja
        voice, lang = (ja_voices.pop(), "ja") if ja else customers.pop()
        # Japanese babble = a neighbouring clerk (staff side, seated), else a customer standing.
        y = center[1] - rng.uniform(0.5, 0.9) if ja else center[1] + rng.uniform(0.5, 0.9)
        z = rng.uniform(1.15, 1.3) if ja else rng.uniform(1.45, 1.6)
        direction = base_dir if k in (0, 1) else -base_dir  # talkers 0/1 share a side of the array
        room = (lx - WALL_MARGIN_M - center[0]) if direction > 0 else (center[0] - WALL_MARGIN_M)
        if room < near:
            direction = -direction
            room = (lx - WALL_MARGIN_M - center[0]) if direction > 0 else (center[0] - WALL_MARGIN_M)
        dist = rng.uniform(near, min(far, room))
        pos = np.array([center[0] + direction * dist, y, z])
        talkers.append(Talker("babble", pos, voice, lang, spec.babble_gain_db))
    return talkers


def voiced_spans(clip: np.ndarray, fs: int) -> list[tuple[float, float]]:
    """(start, end) seconds of the clip where speech energy is within 40 dB of its loudest frame."""
    frame = int(SPAN_FRAME_S * fs)
    n = len(clip) // frame
    if n == 0:
        return [(0.0, len(clip) / fs)]
    energy = (clip[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    active = np.flatnonzero(energy > energy.max() * 1e-4)
    spans: list[list[float]] = []
    for i in active:
        start, end = i * SPAN_FRAME_S, (i + 1) * SPAN_FRAME_S
        if spans and start - spans[-1][1] < SPAN_GAP_S:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [(a, b) for a, b in spans]


def _levelled(clip: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale to SOURCE_LEVEL_DBFS active RMS (frames within 40 dB of the loudest) + gain."""
    frame = 320
    n = len(clip) // frame * frame
    energy = (clip[:n].reshape(-1, frame) ** 2).mean(axis=1) if n else np.array([np.mean(clip**2)])
    active = energy[energy > energy.max() * 1e-4]
    rms = np.sqrt(active.mean())
    return clip * (10.0 ** ((SOURCE_LEVEL_DBFS + gain_db) / 20.0) / max(rms, 1e-9))


def _babble_signal(talker: Talker, n: int, rng: np.random.Generator) -> np.ndarray:
    """Back-to-back lines for the whole scene, starting mid-sentence at t = 0."""
    pool = babble_pool(talker.voice, talker.lang)
    clips = [_levelled(speech.clip(t, talker.voice), talker.gain_db) for t in pool]
    out = np.zeros(n, np.float32)
    order: list[int] = []
    pos = None
    while pos is None or pos < n:
        if not order:
            order = list(rng.permutation(len(clips)))
        c = clips[order.pop()]
        if pos is None:
            pos = -int(rng.integers(0, len(c)))
        lo, hi = max(pos, 0), min(pos + len(c), n)
        if hi > lo:
            out[lo:hi] += c[lo - pos: hi - pos]
        pos += len(c) + int(rng.uniform(*BABBLE_GAP_S) * speech.SAMPLE_RATE)
    return out


def talker_signals(spec: SceneSpec, talkers: list[Talker], center: np.ndarray,
                   rng: np.random.Generator) -> tuple[list[np.ndarray], list[dict], int]:
    """Dry signals per talker (16 kHz), truth segment dicts, and the scene length in samples."""
    import pyroomacoustics as pra

    fs = speech.SAMPLE_RATE
    # The simulated RIR puts the direct path at distance/c plus half the fractional-delay filter.
    rir_delay_s = (pra.constants.get("frac_delay_length") // 2) / fs
    by_role = {t.role: t for t in talkers[:2]}
    placed: list[tuple[str, int, np.ndarray]] = []
    segments: list[dict] = []
    pos = int(LEAD_S * fs)
    for i, (side, lang, text, voice) in enumerate(spec.lines):
        clip = speech.clip(text, voice)
        talker = by_role[side]
        placed.append((side, pos, _levelled(clip, talker.gain_db)))
        delay = float(np.linalg.norm(talker.position - center)) / SPEED_OF_SOUND + rir_delay_s
        start = pos / fs + delay
        segments.append({"start_s": round(start, 4), "end_s": round(start + len(clip) / fs, 4),
                         "speech_spans": [(round(start + a, 4), round(start + b, 4)) for a, b in voiced_spans(clip, fs)],
                         "side": side, "lang": lang, "text": text,
                         "azimuth_deg": azimuth_in_array(center, talker.position,
                                                         spec.array_rotation_deg),
                         "voice": voice})
        pos += len(clip)
        if i < len(spec.lines) - 1:
            pos += int(rng.uniform(*GAP_S) * fs)
    n = pos + int(TAIL_S * fs)
    signals = [np.zeros(n, np.float32), np.zeros(n, np.float32)]
    for side, start, clip in placed:
        signals[0 if side == "staff" else 1][start: start + len(clip)] += clip
    signals += [_babble_signal(t, n, rng) for t in talkers[2:]]
    return signals, segments, n
