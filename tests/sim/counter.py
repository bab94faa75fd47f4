"""Simulated service-counter scenes: real TTS speech placed in a pyroomacoustics shoebox room.

build_scene(spec) renders `scene.wav`, `scene.toml` and `truth.json` into a cache directory
keyed by the spec's hash, and returns a Scene with the truth segments. See spec.py for the
frames and azimuth convention.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tests.cache import cache_dir, made_by, stable_hash

from . import scripts, speech
from . import spec as spec_module
from . import talkers as talkers_module
from .catalog import demo_spec, standard_scenes
from .spec import ARRAY_GEOMETRIES, SceneSpec, TruthSegment, rotate_z
from .talkers import Talker, place_talkers, talker_signals

__all__ = ["ARRAY_GEOMETRIES", "Scene", "SceneSpec", "TruthSegment",
           "build_scene", "config_toml", "demo_spec", "scene_provenance", "standard_scenes"]

log = logging.getLogger(__name__)

SIM_RATE = speech.SAMPLE_RATE  # rooms are simulated at 16 kHz; 48 kHz scenes are upsampled after
MAX_ORDER_CAP = 50  # image-source order cap: RT60 0.9 s rooms stay at a few seconds per scene
MIC_GAIN_SPREAD_DB = 1.0


@dataclass(frozen=True)
class Scene:
    wav_path: Path
    config_path: Path
    truth_path: Path
    spec: SceneSpec
    segments: tuple[TruthSegment, ...]

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    @property
    def staff_azimuth_deg(self) -> float:
        return self.spec.staff_azimuth_deg

    @property
    def resident_azimuth_deg(self) -> float:
        return self.spec.resident_azimuth_deg

    def truth(self) -> dict:
        """The full truth.json (talker positions, babble, measured RT60, ...)."""
        return json.loads(self.truth_path.read_text(encoding="utf-8"))


@functools.cache
def scene_provenance() -> dict:
    """What a scene is made by besides its spec: the generator's code, the room simulator, the voices."""
    room = made_by([__file__, spec_module.__file__, talkers_module.__file__, scripts.__file__],
                   ("pyroomacoustics", "numpy", "scipy", "soundfile"))
    return {"room": room, "speech": {engine: speech.engine_provenance(engine) for engine in speech.ENGINE_LIBRARIES}}


def scene_key(spec: SceneSpec) -> str:
    return stable_hash({"spec": asdict(spec), "made_by": scene_provenance()})


def config_toml(spec: SceneSpec) -> str:
    """The installer-style config: mic positions and the nominal staff/resident directions."""
    rows = ",\n".join("  [" + ", ".join(f"{round(v, 6) + 0.0:.6f}" for v in p) + "]"  # no -0.0
                      for p in spec.mic_positions())
    return (
        f"# Madoguchi simulated counter scene {spec.name!r} (tests/sim)\n"
        "# Azimuths: degrees CCW from the array's +x axis, looking down on the array.\n"
        "[array]\n"
        f"mic_positions_m = [\n{rows},\n]\n\n"
        "[sides]\n"
        f"staff_azimuth_deg = {spec.staff_azimuth_deg:.3f}\n"
        f"resident_azimuth_deg = {spec.resident_azimuth_deg:.3f}\n"
    )


def build_scene(spec: SceneSpec) -> Scene:
    """Render the scene (or reuse the cached render of an identical spec)."""
    root = cache_dir("scenes")
    final = root / f"{spec.name}-{scene_key(spec)[:16]}"
    if not (final / "truth.json").exists():
        _clean_stale_tmp(root)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            t0 = time.monotonic()
            _render(spec, tmp)
            try:
                os.rename(tmp, final)  # atomic: readers see all three files or none
            except OSError:
                if not (final / "truth.json").exists():
                    raise
                log.info("%s: a concurrent run finished first; using its files", spec.name)
            log.info("built scene %s in %.1f s", spec.name, time.monotonic() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _load(spec, final)


def _clean_stale_tmp(root: Path, max_age_s: float = 6 * 3600) -> None:
    """Remove temp dirs left by killed runs (old enough not to belong to a live one)."""
    now = time.time()
    for p in root.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except FileNotFoundError:
            pass


def _load(spec: SceneSpec, d: Path) -> Scene:
    truth = json.loads((d / "truth.json").read_text(encoding="utf-8"))
    fields = ("start_s", "end_s", "side", "lang", "text", "azimuth_deg")
    segs = tuple(TruthSegment(**{k: s[k] for k in fields}, speech_spans=tuple(tuple(span) for span in s["speech_spans"]))
                 for s in truth["segments"])
    return Scene(d / "scene.wav", d / "scene.toml", d / "truth.json", spec, segs)


def _array_center(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    lx, ly, _lz = spec.room_dim_m
    return np.array([lx * rng.uniform(0.44, 0.56), ly * rng.uniform(0.42, 0.54), spec.counter_z_m])


def _simulate(spec: SceneSpec, mics: np.ndarray, talkers: list[Talker],
              signals: list[np.ndarray], n: int) -> tuple[np.ndarray, float]:
    import pyroomacoustics as pra  # lazy: heavy import, only needed on a cache miss

    e_abs, max_order = pra.inverse_sabine(spec.rt60_s, spec.room_dim_m)
    room = pra.ShoeBox(list(spec.room_dim_m), fs=SIM_RATE, materials=pra.Material(e_abs),
                       max_order=min(max_order, MAX_ORDER_CAP), air_absorption=False)
    for talker, sig in zip(talkers, signals):
        room.add_source(talker.position.tolist(), signal=sig)
    room.add_microphone_array(mics.T)
    room.simulate()
    out = room.mic_array.signals[:, :n]
    if out.shape[1] < n:
        out = np.pad(out, ((0, 0), (0, n - out.shape[1])))
    # What the ISM room really does (Sabine-designed rooms come out longer); T20-based.
    measured = float(np.mean(room.measure_rt60(decay_db=20)[:, :2]))
    return out, measured


def _render(spec: SceneSpec, out_dir: Path) -> None:
    rng_geo = np.random.default_rng([spec.seed, 0])
    rng_hw = np.random.default_rng([spec.seed, 2])
    center = _array_center(spec, rng_geo)
    mics = center + rotate_z(spec.mic_positions(), spec.array_rotation_deg)
    talkers = place_talkers(spec, center, rng_geo)
    signals, segments, n = talker_signals(spec, talkers, center, np.random.default_rng([spec.seed, 1]))

    mix, measured_rt60 = _simulate(spec, mics, talkers, signals, n)
    gains_db = rng_hw.uniform(-MIC_GAIN_SPREAD_DB, MIC_GAIN_SPREAD_DB, spec.n_mics)
    mix = mix * (10.0 ** (gains_db / 20.0))[:, None]
    if spec.sample_rate != SIM_RATE:
        mix = resample_poly(mix, spec.sample_rate // SIM_RATE, 1, axis=1)  # zero-phase: no delay
    mix *= 10.0 ** (spec.peak_dbfs / 20.0) / np.max(np.abs(mix))
    mix += rng_hw.normal(0.0, 10.0 ** (spec.self_noise_dbfs / 20.0), mix.shape)

    subtype = "PCM_16" if spec.sample_rate == 16000 else "FLOAT"
    sf.write(out_dir / "scene.wav", mix.T.astype(np.float32), spec.sample_rate, subtype=subtype)
    (out_dir / "scene.toml").write_text(config_toml(spec), encoding="utf-8")
    truth = {
        "made_by": scene_provenance(),
        "spec": asdict(spec),
        "sample_rate": spec.sample_rate,
        "channels": spec.n_mics,
        "num_frames": int(mix.shape[1]),
        "duration_s": mix.shape[1] / spec.sample_rate,
        "azimuth_convention": "degrees CCW from the array +x axis, wrapped to [0, 360)",
        "array": {
            "center_m": center.tolist(),
            "rotation_deg": spec.array_rotation_deg,
            "mic_positions_m": spec.mic_positions().tolist(),
            "mic_positions_room_m": mics.tolist(),
            "mic_gain_db": gains_db.tolist(),
        },
        "sides": {"staff_azimuth_deg": spec.staff_azimuth_deg,
                  "resident_azimuth_deg": spec.resident_azimuth_deg},
        "talkers": [t.describe(center, spec.array_rotation_deg) for t in talkers],
        "requested_rt60_s": spec.rt60_s,
        "measured_rt60_s": measured_rt60,
        "max_order_cap": MAX_ORDER_CAP,
        "self_noise_dbfs": spec.self_noise_dbfs,
        "segments": segments,
    }
    (out_dir / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1),
                                        encoding="utf-8")

