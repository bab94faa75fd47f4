"""Peers measured in the same benchmark run: plain always-on VAD and pyroomacoustics' DOA."""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
import soundfile
import soxr

from madoguchi.config import load_settings
from madoguchi.frontend.doa import SrpPhat
from madoguchi.frontend.vad import FRAME_SAMPLES, SileroVad
from madoguchi.geometry import angular_distance_deg
from tests.sim.counter import Scene

FS = 16000


def scene_audio(scene: Scene) -> np.ndarray:
    audio, rate = soundfile.read(str(scene.wav_path), dtype="float32", always_2d=True)
    return audio if rate == FS else soxr.resample(audio, rate, FS)


def silero_every_frame_cpu_s(scene: Scene) -> float:
    """CPU seconds Silero needs when run on every frame of the channel mean (no cascade)."""
    vad = SileroVad()
    mono = scene_audio(scene).mean(axis=1)
    start = time.process_time()
    for i in range(0, len(mono) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        vad(mono[i : i + FRAME_SAMPLES])
    return time.process_time() - start


def _ours(positions: np.ndarray, audio: np.ndarray) -> float:
    srp = SrpPhat(positions, FS, FRAME_SAMPLES, 343.0, (200.0, 6000.0))
    accumulated = srp.empty()
    for i in range(0, len(audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        accumulated += srp.cross_spectra(srp.spectra(audio[i : i + FRAME_SAMPLES]))
    return srp.response(accumulated).peak()[0]


def _pyroomacoustics(method: str, positions: np.ndarray, audio: np.ndarray) -> float:
    import pyroomacoustics as pra

    nfft = FRAME_SAMPLES
    frames = [np.fft.rfft(audio[i : i + nfft] * np.hanning(nfft)[:, None], axis=0) for i in range(0, len(audio) - nfft + 1, nfft // 2)]
    stft = np.stack(frames, axis=2).transpose(1, 0, 2)  # (mics, bins, snapshots)
    doa = pra.doa.algorithms[method](positions[:, :2].T, FS, nfft, c=343.0, num_src=1, azimuth=np.radians(np.arange(0.0, 360.0, 1.0)))
    doa.locate_sources(stft, freq_range=[200.0, 6000.0])
    return float(np.degrees(doa.azimuth_recon[0])) % 360.0


METHODS = {
    "madoguchi SRP-PHAT (16x GCC)": _ours,
    "pyroomacoustics SRP": lambda p, a: _pyroomacoustics("SRP", p, a),
    "pyroomacoustics NormMUSIC": lambda p, a: _pyroomacoustics("NormMUSIC", p, a),
}


def doa_peers(scenes: list[Scene]) -> list[str]:
    """Side accuracy, azimuth error (planar arrays) and CPU per utterance for each method."""
    correct: dict[str, int] = defaultdict(int)
    errors: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, float] = defaultdict(float)
    count = 0
    for scene in scenes:
        settings = load_settings(scene.config_path, system_layers=False)
        positions = np.asarray(settings.array.mic_positions_m)
        planar = settings.array.n_mics > 2
        audio = scene_audio(scene)
        for segment in scene.segments:
            clip = audio[int(segment.start_s * FS) : int(segment.end_s * FS)]
            if len(clip) < 2 * FRAME_SAMPLES:
                continue
            count += 1
            own = settings.sides.staff_azimuth_deg if segment.side == "staff" else settings.sides.resident_azimuth_deg
            other = settings.sides.resident_azimuth_deg if segment.side == "staff" else settings.sides.staff_azimuth_deg
            for name, method in METHODS.items():
                start = time.process_time()
                azimuth = method(positions, clip)
                cpu[name] += time.process_time() - start
                correct[name] += angular_distance_deg(azimuth, own) < angular_distance_deg(azimuth, other)
                if planar:  # a line's azimuth is only defined up to its mirror image
                    errors[name].append(angular_distance_deg(azimuth, segment.azimuth_deg))
    rows = [f"{'method':<30} {'side correct':>12} {'median az error':>16} {'p90 az error':>13} {'CPU ms/utt':>11}"]
    for name in METHODS:
        err = np.asarray(errors[name]) if errors[name] else np.array([np.nan])
        rows.append(f"{name:<30} {100 * correct[name] / max(count, 1):11.1f}% {np.median(err):15.1f}° {np.percentile(err, 90):12.1f}° {1000 * cpu[name] / max(count, 1):11.1f}")
    rows.append(f"({count} utterances; azimuth errors over planar arrays only; direct SRP over the whole utterance, no VAD weighting)")
    return rows
