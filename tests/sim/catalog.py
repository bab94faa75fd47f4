"""The fixed set of test scenes and the bundled demo conversation (all deterministic)."""
from __future__ import annotations

import logging

import numpy as np

from .scripts import RESIDENT_VOICES, TOPICS, demo_dialogue, dialogue
from .spec import SceneSpec

log = logging.getLogger(__name__)

RT60S = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ROOMS = ((8.0, 5.0, 2.8), (9.0, 6.0, 3.0), (10.0, 7.0, 3.2), (12.0, 8.0, 3.5), (8.5, 5.5, 2.7))
# A 2-mic line must keep its axis across the counter: rotations near 90 (x -> resident) or 270.
ROT_2MIC = (90.0, 84.0, 97.0, 270.0, 93.0, 265.0, 88.0, 276.0)
ROT_ANY = (0.0, 30.0, 45.0, 137.0, -60.0, 200.0, 15.0, 90.0,
           250.0, -135.0, 72.0, 180.0, 5.0, 300.0, -20.0, 160.0)
OTHER_LANGS = ("vi", "pt", "es", "id", "ne", "zh")
QUIET_RESIDENT = frozenset({2, 7, 12, 22})
HIGH_RATE = frozenset({5, 16})  # 48 kHz float32 scenes, for the front end's resampler
N_STANDARD = 24


def _spread(i: int, mult: int, shift: int, lo: float, hi: float, steps: int) -> float:
    """A deterministic scatter over [lo, hi] (a permutation of `steps` evenly spaced values)."""
    return round(lo + (hi - lo) * ((i * mult + shift) % steps) / (steps - 1), 2)


def _standard(i: int) -> SceneSpec:
    # i % 8 picks the RT60 and i % 3 the array: 8 and 3 are coprime, so all 24 pairs occur.
    rt60 = RT60S[i % 8]
    n_mics = (2, 4, 6)[i % 3]
    rotation = ROT_2MIC[i // 3] if n_mics == 2 else ROT_ANY[i - i // 3 - 1]
    n_babble = (i + i // 8) % 4  # shifted per block of 8 so babble doesn't track the RT60
    lang = OTHER_LANGS[i // 4] if i % 4 == 3 else "en"
    voices = RESIDENT_VOICES[lang]
    resident_voice = voices[i % len(voices)]
    topic = (i // 3) % len(TOPICS)  # each topic in three scenes, one per array size
    seed = 1000 + i
    lines = dialogue(topic, resident_voice, lang, np.random.default_rng([seed, 9]))
    quiet = i in QUIET_RESIDENT
    rate = 48000 if i in HIGH_RATE else 16000
    name = (f"s{i:02d}-{n_mics}mic-rt{rt60:.1f}-b{n_babble}" + ("-quiet" if quiet else "")
            + ("-48k" if rate == 48000 else "") + ("" if lang == "en" else f"-{lang}"))
    return SceneSpec(
        name=name, n_mics=n_mics, array_rotation_deg=rotation, rt60_s=rt60,
        room_dim_m=ROOMS[i % len(ROOMS)],
        staff_offset_deg=_spread(i, 7, 0, -45.0, 45.0, 24),
        resident_offset_deg=_spread(i, 5, 13, -45.0, 45.0, 24),
        staff_distance_m=_spread(i, 5, 0, 0.5, 1.0, 8),
        resident_distance_m=_spread(i, 3, 2, 0.5, 1.0, 8),
        staff_mouth_z_m=(1.15, 1.2, 1.25, 1.3, 1.5, 1.18)[i % 6],  # mostly seated clerks
        resident_mouth_z_m=(1.6, 1.45, 1.55, 1.15, 1.5, 1.58, 1.35)[i % 7],  # 1.15: wheelchair
        counter_z_m=(0.9, 0.95, 1.0)[(i // 2) % 3],
        # Neighbours talk as loud as anyone but face their own counter: a talker's voice is
        # 3-9 dB weaker to the side than in front (speech directivity), hence the gains.
        n_babble=n_babble, babble_gain_db=(-3.0, -5.0, -7.0, -9.0)[(i * 3) % 4],
        resident_gain_db=-10.0 if quiet else 0.0, sample_rate=rate, seed=seed, lines=lines)


def standard_scenes() -> list[SceneSpec]:
    """The 24 standard scenes: every RT60 x array-size pair, babble 0-3, offsets over +-45 deg."""
    return [_standard(i) for i in range(N_STANDARD)]


# Issue 10's far-field counters, resident languages with their voices and topics, one row per
# scene. Natural Kokoro v1.0 voices for en/es/pt/zh, espeak-ng for vi/ko (no natural voice).
# The held-out rows use other voices (es and pt have three, so one repeats), the other half of the
# English topics and HELD_OUT_LINES, and meet other array sizes (scene i has (2, 4, 6)[i % 3] mics).
FARFIELD = (
    ("en", "af_heart", 0), ("es", "ef_dora", 1), ("pt", "pf_dora", 2), ("zh", "zf_xiaoyi", 3),
    ("en", "bm_george", 2), ("es", "em_alex", 5), ("pt", "pm_alex", 6), ("zh", "zm_yunjian", 7),
    ("en", "bf_emma", 4), ("en", "am_michael", 6), ("ko", "ko+m3", 0), ("vi", "vi+f2", 1),
)
FARFIELD_HELD_OUT = (
    ("es", "em_santa", 0), ("en", "af_bella", 1), ("zh", "zf_xiaoxiao", 2), ("pt", "pm_santa", 3),
    ("en", "bm_fable", 3), ("ko", "ko+f4", 4), ("en", "bf_isabella", 5), ("zh", "zm_yunxi", 6),
    ("es", "ef_dora", 7), ("vi", "vi+m3", 4), ("pt", "pf_dora", 5), ("en", "am_fenrir", 7),
)
FARFIELD_BABBLE_M = (2.0, 2.8)  # along the counter; with the 0.5-0.9 m step back, 2-3 m away


def _farfield(i: int, held_out: bool) -> SceneSpec:
    lang, voice, topic = (FARFIELD_HELD_OUT if held_out else FARFIELD)[i]
    h = int(held_out)  # shifts every scatter, so held-out rooms share no placement with the others
    n_mics = (2, 4, 6)[i % 3]
    rt60 = _spread(i, 5, 3 * h, 0.25, 0.6, 8)  # 0.25, 0.30 … 0.60: low and high for every array
    k = i // 3  # the k-th room of its array size
    rotation = ROT_2MIC[k + 4 * h] if n_mics == 2 else ROT_ANY[2 * k + (i % 3 == 2) + 8 * h]
    seed = 2000 + 1000 * h + i
    lines = dialogue(topic, voice, lang, np.random.default_rng([seed, 9]), held_out=held_out)
    return SceneSpec(
        name=f"{'ho' if held_out else 'ff'}{i:02d}-{lang}-{n_mics}mic-rt{rt60:.2f}",
        n_mics=n_mics, array_rotation_deg=rotation, rt60_s=rt60,
        room_dim_m=ROOMS[(i + 2 * h) % len(ROOMS)],
        staff_offset_deg=_spread(i, 7, 5 + 11 * h, -45.0, 45.0, 24),
        resident_offset_deg=_spread(i, 5, 17 + 7 * h, -45.0, 45.0, 24),
        staff_distance_m=_spread(i, 5, 1 + 4 * h, 0.5, 1.0, 6),
        resident_distance_m=_spread(i, 7, 4 + h, 0.5, 1.0, 6),
        staff_mouth_z_m=(1.2, 1.15, 1.3, 1.25)[(i + h) % 4],
        resident_mouth_z_m=(1.55, 1.6, 1.45, 1.5, 1.35)[(i + 2 * h) % 5],
        counter_z_m=(0.9, 0.95, 1.0)[(i + h) % 3],
        n_babble=2, babble_gain_db=(-3.0, -5.0, -7.0)[(k + h) % 3],
        babble_distance_m=FARFIELD_BABBLE_M, sample_rate=16000, seed=seed, lines=lines)


def farfield_scenes(held_out: bool = False) -> list[SceneSpec]:
    """12 far-field counters as issue 10 measured: RT60 0.25-0.6 s asked, four rooms per 2-, 4- and
    6-mic array, talkers 0.5-1 m from it, two neighbours 2-3 m away, a Japanese clerk and a resident
    in en x4, es/pt/zh x2 (natural voices), vi/ko x1 (espeak). `held_out` gives 12 other rooms,
    voices and phrases, for a final check nothing was tuned on."""
    return [_farfield(i, held_out) for i in range(len(FARFIELD))]


def demo_spec() -> SceneSpec:
    """The bundled demo: 住民票 / 転入届 exchange, 4-mic square, a reverberant hall (RT60 0.5 s),
    a natural English resident and a neighbour talking."""
    return SceneSpec(
        name="counter-demo", n_mics=4, array_rotation_deg=0.0, rt60_s=0.5,
        room_dim_m=(9.0, 6.0, 3.0), staff_offset_deg=-10.0, resident_offset_deg=15.0,
        staff_distance_m=0.6, resident_distance_m=0.75, staff_mouth_z_m=1.2,
        resident_mouth_z_m=1.55, counter_z_m=0.95, n_babble=1, babble_gain_db=-6.0,
        sample_rate=16000, seed=9, lines=demo_dialogue("jf_alpha", "af_heart"),
        # Capture-like headroom and a quieter floor keep the bundled FLAC at about 2 MB.
        peak_dbfs=-14.0, self_noise_dbfs=-80.0)
