"""The wake phrase: openWakeWord's method, run directly on onnxruntime.

openWakeWord (Apache-2.0 code) detects a phrase in three steps, all kept here:

1. ``melspectrogram.onnx``: 16 kHz int16-scaled audio -> 32 mel bands every 10 ms (then x/10 + 2),
   one call per 80 ms step with 30 ms of context (the model floors its output relative to the
   call's loudest frame, so the steps must be the same as openWakeWord's);
2. ``embedding_model.onnx`` (Google's ``speech_embedding``): the last 76 mel frames -> one 96-dim
   embedding every 80 ms (1280 samples);
3. a small classifier over the last ``n_frames`` embeddings -> a score in [0, 1].

Steps 1 and 2 are the two files of the model-store entry ``openwakeword-features`` (from the
``openwakeword`` 0.5.1 wheel; ``madoguchi models fetch --accept-licence openwakeword-features``).
The ``openwakeword`` package itself is not used: every version of it requires tflite-runtime on
Linux, which has no wheel for Python 3.13 (Raspberry Pi OS trixie) and, where it installs, fails
under NumPy 2. Its streaming arithmetic is reproduced exactly below (same buffers, same 80 ms
steps); ``tests/test_wake.py`` pins the scores of openWakeWord's own ``hey_jarvis`` model.

Step 3 is the head: a folder holding ``wake.npz`` (our phrase, trained by
``python -m tests.wake_train``; format below) or an openWakeWord ``.onnx`` classifier
(``wake.onnx``, e.g. the shipped English ``hey_jarvis``). ``wake.npz`` records the sha256 of the
feature models it was trained on; they are checked when the detector is built.

``wake.npz`` (NumPy, no pickles): ``meta`` = a JSON string (``format`` =
"madoguchi-wake-head/1", ``phrase``, ``n_frames``, ``threshold``, ``feature_sha256`` {file: hex},
training record); ``input.mean``/``input.scale`` (96,) standardise each embedding dimension;
then per hidden layer k: ``dense{k}.w`` (in, out), ``dense{k}.b``, ``norm{k}.g``, ``norm{k}.b``
(LayerNorm, eps 1e-5) and ReLU; last ``out.w`` (hidden, 1), ``out.b`` and a sigmoid. The input is
the window of ``n_frames`` standardised embeddings, flattened oldest first.

Pure of clocks: time is the count of samples fed, so replay and live audio give the same result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from madoguchi.errors import MadoguchiError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
CHUNK = 1280  # samples per embedding step (80 ms)
MEL_CONTEXT = 480  # samples before a chunk that its 8 mel frames also see (3 hops of 160)
MEL_FRAMES_PER_CHUNK = 8
MEL_WINDOW = 76  # mel frames per embedding
EMBEDDING_DIM = 96
FEATURES_ID = "openwakeword-features"
FEATURE_FILES = ("melspectrogram.onnx", "embedding_model.onnx")
HEAD_NPZ, HEAD_ONNX = "wake.npz", "wake.onnx"
HEAD_FORMAT = "madoguchi-wake-head/1"
DEFAULT_THRESHOLD = 0.5
DEFAULT_REFRACTORY_S = 2.0
_FETCH = f"madoguchi models fetch --accept-licence {FEATURES_ID}"


class WakeModelError(MadoguchiError, OSError):
    """A wake-phrase model file is missing, corrupt or does not fit: the message names it and the fix."""

    code = "wake_model"

    def __init__(self, message: str, file: Path | str | None = None) -> None:
        super().__init__(message)
        self.file = Path(file) if file is not None else None


@dataclass(frozen=True)
class WakeHeard:
    """The wake phrase was heard; times are audio time (seconds of samples fed since the start or reset)."""

    time_s: float  # end of the 80 ms step whose score crossed the threshold
    score: float  # the score that crossed the threshold
    phrase: str

    @property
    def window_start_s(self) -> float:
        """The earliest the phrase can have begun (the default head sees 20 steps of 760 ms embeddings: 2.3 s):
        a session should not hand this audio to ASR."""
        return max(0.0, self.time_s - 2.3)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _session(path: Path, threads: int, fix: str):
    import onnxruntime as ort

    if not path.is_file():
        raise WakeModelError(f"{path}: wake-phrase model file is missing; fix: {fix}", path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise WakeModelError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0][:160]}); fix: {fix}", path) from err


class FeatureModels:
    """openWakeWord's melspectrogram and speech-embedding models (``openwakeword-features``)."""

    def __init__(self, folder: Path, threads: int = 1, expect_sha256: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        for name in FEATURE_FILES:
            path = self.folder / name
            if not path.is_file():
                what = "are not installed" if not self.folder.exists() else f"are incomplete: {path} is missing"
                raise WakeModelError(f"{self.folder}: the wake-phrase feature models {what}; fix: `{_FETCH}`", path)
            if expect_sha256 and name in expect_sha256 and _sha256(path) != expect_sha256[name]:
                raise WakeModelError(f"{path}: is not the feature model the wake phrase was trained on (sha256 differs: corrupt or another "
                                     f"version); fix: `{_FETCH}` (it checks the files against the lock)", path)
        self._mel = _session(self.folder / FEATURE_FILES[0], threads, f"`{_FETCH}`")
        self._emb = _session(self.folder / FEATURE_FILES[1], threads, f"`{_FETCH}`")
        self._emb_input = self._emb.get_inputs()[0].name

    def mel(self, pcm: np.ndarray) -> np.ndarray:
        """(frames, 32) transformed mel frames of int16-scaled float32 audio (one frame per 160 samples after the first 480)."""
        out = self._mel.run(None, {"input": np.ascontiguousarray(pcm, np.float32)[None, :]})[0]
        return np.squeeze(out, axis=(0, 1)) / 10.0 + 2.0

    def step_mels(self, pcm: np.ndarray) -> np.ndarray:
        """(8 n, 32) mel frames of n 80 ms steps, given 480 samples of context + 1280 n samples.

        One model call per step, as openWakeWord streams: the model floors its log-mel output
        relative to the loudest frame of the call (a fixed dynamic range), so a call over many
        steps, or a batch of them, would give quiet steps other values.
        """
        n = (len(pcm) - MEL_CONTEXT) // CHUNK
        out = [self.mel(pcm[j * CHUNK: (j + 1) * CHUNK + MEL_CONTEXT]) for j in range(n)]
        return np.concatenate(out) if out else np.zeros((0, 32), np.float32)

    def embed(self, mels: np.ndarray, batch: int = 512) -> np.ndarray:
        """(n, 96) embeddings of (n, 76, 32) mel windows."""
        out = [self._emb.run(None, {self._emb_input: mels[i:i + batch, :, :, None].astype(np.float32)})[0].reshape(-1, EMBEDDING_DIM)
               for i in range(0, len(mels), batch)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING_DIM), np.float32)

    def clip_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """(steps, 96): the embedding the streaming detector has after each whole 80 ms step of ``audio``.

        Float audio in [-1, 1] at 16 kHz, as fed to the detector; step j ends at sample 1280 (j + 1).
        Steps before the first 76 mel frames exist start from silence, as the detector's do.
        """
        pcm = np.asarray(audio, np.float32) * 32767.0
        steps = len(pcm) // CHUNK
        if steps == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        # The detector's mel frames of step j come from samples [1280 j - 480, 1280 (j + 1)):
        # prepend 480 samples of silence so step 0 has its context, as a primed stream does.
        padded = np.concatenate([np.zeros(MEL_CONTEXT, np.float32), pcm[:steps * CHUNK]])
        mel = self.step_mels(padded)
        lead = np.tile(self.mel(np.zeros(CHUNK + MEL_CONTEXT, np.float32)), (MEL_WINDOW // MEL_FRAMES_PER_CHUNK + 1, 1))
        mel = np.concatenate([lead, mel])  # silence before the clip: every step has 76 frames
        ends = len(lead) + MEL_FRAMES_PER_CHUNK * (np.arange(steps) + 1)
        windows = np.stack([mel[e - MEL_WINDOW:e] for e in ends])
        return self.embed(windows)


class _NumpyHead:
    """Our trained classifier (``wake.npz``): standardise, dense + LayerNorm + ReLU layers, sigmoid."""

    def __init__(self, path: Path, retrain: str) -> None:
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # truncated/corrupt zip: CRC or header errors
            raise WakeModelError(f"{path}: corrupt wake-phrase head ({err}); fix: {retrain}", path) from err
        try:
            self.meta = json.loads(str(arrays.pop("meta")))
            if self.meta.get("format") != HEAD_FORMAT:
                raise ValueError(f"format {self.meta.get('format')!r}, expected {HEAD_FORMAT!r}")
            self.n_frames = int(self.meta["n_frames"])
            self.mean, self.scale = arrays["input.mean"].astype(np.float32), arrays["input.scale"].astype(np.float32)
            self.layers = []
            k = 0
            while f"dense{k}.w" in arrays:
                self.layers.append(tuple(arrays[f"{name}{k}.{p}"].astype(np.float32) for name, p in (("dense", "w"), ("dense", "b"), ("norm", "g"), ("norm", "b"))))
                k += 1
            self.out_w, self.out_b = arrays["out.w"].astype(np.float32), arrays["out.b"].astype(np.float32)
            width = self.n_frames * EMBEDDING_DIM
            for w, *_ in self.layers:
                if w.shape[0] != width:
                    raise ValueError(f"layer input {w.shape[0]} != {width}")
                width = w.shape[1]
            if self.out_w.shape != (width, 1):
                raise ValueError(f"out.w shape {self.out_w.shape} != ({width}, 1)")
        except (KeyError, ValueError, TypeError) as err:
            raise WakeModelError(f"{path}: not a wake-phrase head this firmware can use ({err}); fix: {retrain}", path) from err
        self.phrase = str(self.meta.get("phrase", ""))
        self.threshold = float(self.meta.get("threshold", DEFAULT_THRESHOLD))
        self.feature_sha256 = dict(self.meta.get("feature_sha256") or {})

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Scores of (batch, n_frames, 96) embedding windows."""
        x = ((windows - self.mean) / self.scale).reshape(len(windows), -1)
        for w, b, g, beta in self.layers:
            h = x @ w + b
            mu = h.mean(axis=1, keepdims=True)
            var = h.var(axis=1, keepdims=True)
            x = np.maximum((h - mu) / np.sqrt(var + 1e-5) * g + beta, 0.0)
        logit = (x @ self.out_w + self.out_b)[:, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))


class _OnnxHead:
    """An openWakeWord classifier (.onnx, input (1, n_frames, 96)), e.g. the shipped hey_jarvis."""

    def __init__(self, path: Path, retrain: str) -> None:
        self._session = _session(path, 1, retrain)
        shape = self._session.get_inputs()[0].shape
        self._input = self._session.get_inputs()[0].name
        self.n_frames = int(shape[1]) if len(shape) == 3 and isinstance(shape[1], int) else 16
        self.phrase = path.stem
        self.threshold = DEFAULT_THRESHOLD
        self.feature_sha256: dict[str, str] = {}
        self.meta = {"phrase": self.phrase, "n_frames": self.n_frames}

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        return np.array([float(np.ravel(self._session.run(None, {self._input: w[None].astype(np.float32)})[0])[0]) for w in windows])


def load_head(model_dir: Path):
    """The head in ``model_dir``: ``wake.npz`` (ours), else ``wake.onnx`` or a single ``*.onnx`` (openWakeWord's)."""
    model_dir = Path(model_dir)
    retrain = f"train it again (`python -m tests.wake_train --out {model_dir}`) or copy {model_dir.name}/ from a good source"
    if (model_dir / HEAD_NPZ).is_file():
        return _NumpyHead(model_dir / HEAD_NPZ, retrain)
    onnx = [model_dir / HEAD_ONNX] if (model_dir / HEAD_ONNX).is_file() else sorted(model_dir.glob("*.onnx")) if model_dir.is_dir() else []
    if len(onnx) == 1:
        return _OnnxHead(onnx[0], retrain)
    raise WakeModelError(f"{model_dir}: no wake-phrase head ({HEAD_NPZ}) there; fix: {retrain}", model_dir / HEAD_NPZ)


class WakePhraseDetector:
    """Feed 16 kHz float32 mono blocks of any length; ``process`` says when the phrase was heard.

    ``model_dir`` holds the head; the feature models are ``features_dir``, by default the
    ``openwakeword-features`` folder beside it in the model store. One utterance fires once:
    after a detection, nothing more is reported for ``refractory_s`` of audio.
    """

    def __init__(self, model_dir: Path, threshold: float | None = None, *, features_dir: Path | None = None,
                 refractory_s: float = DEFAULT_REFRACTORY_S, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.head = load_head(self.model_dir)
        self.features = FeatureModels(Path(features_dir) if features_dir else self.model_dir.parent / FEATURES_ID, threads, self.head.feature_sha256)
        self.threshold = float(self.head.threshold if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"wake threshold must be between 0 and 1 (exclusive), got {self.threshold}")
        self.phrase = self.head.phrase
        self.n_frames = self.head.n_frames
        self.refractory_steps = max(1, int(round(refractory_s * SAMPLE_RATE / CHUNK)))
        silence = np.zeros(CHUNK + MEL_CONTEXT, np.float32)
        self._silent_mel = self.features.mel(silence)
        self._silent_embedding = self.features.embed(np.tile(self._silent_mel, (MEL_WINDOW // MEL_FRAMES_PER_CHUNK + 1, 1))[-MEL_WINDOW:][None])[0]
        self.reset()

    def reset(self) -> None:
        """Forget all audio: the next sample fed is time 0, the buffers hold silence."""
        self._pending = np.zeros(0, np.float32)
        self._context = np.zeros(MEL_CONTEXT, np.float32)
        self._mel = np.tile(self._silent_mel, (MEL_WINDOW // MEL_FRAMES_PER_CHUNK + 1, 1))[-MEL_WINDOW:]
        self._emb = np.tile(self._silent_embedding, (self.n_frames, 1))
        self._steps = 0
        self._quiet_until = 0  # step index before which nothing is reported (refractory)
        self.last_score = 0.0

    @property
    def time_s(self) -> float:
        """Audio time of the samples fed so far (whole 80 ms steps scored, plus the pending part)."""
        return (self._steps * CHUNK + len(self._pending)) / SAMPLE_RATE

    def scores(self, mono16k: np.ndarray) -> np.ndarray:
        """Feed audio; the score of every whole 80 ms step it completes (no detection logic)."""
        x = np.concatenate([self._pending, np.asarray(mono16k, np.float32).ravel() * 32767.0])
        n = len(x) // CHUNK
        self._pending = x[n * CHUNK:]
        if n == 0:
            return np.zeros(0)
        whole = np.concatenate([self._context, x[: n * CHUNK]])
        self._context = whole[-MEL_CONTEXT:]
        mel = np.concatenate([self._mel, self.features.step_mels(whole)])
        ends = MEL_WINDOW + MEL_FRAMES_PER_CHUNK * (np.arange(n) + 1)
        embeddings = self.features.embed(np.stack([mel[e - MEL_WINDOW:e] for e in ends]))
        self._mel = mel[-MEL_WINDOW:]
        emb = np.concatenate([self._emb, embeddings])
        windows = np.stack([emb[j + 1: j + 1 + self.n_frames] for j in range(n)])
        self._emb = emb[-self.n_frames:]
        self._steps += n
        out = self.head(windows)
        self.last_score = float(out[-1])
        return out

    def detections(self, mono16k: np.ndarray) -> tuple[WakeHeard, ...]:
        """Every detection completed by this block (more than one only if the block is longer than the refractory period)."""
        first = self._steps
        found = []
        scores = self.scores(mono16k)
        for j, s in enumerate(scores):
            step = first + j
            if s >= self.threshold and step >= self._quiet_until:
                found.append(WakeHeard(time_s=round((step + 1) * CHUNK / SAMPLE_RATE, 3), score=float(s), phrase=self.phrase))
                self._quiet_until = step + self.refractory_steps
        return tuple(found)

    def process(self, mono16k: np.ndarray) -> WakeHeard | None:
        """Feed a block; the detection it completed, if any (blocks up to the refractory period long give at most one)."""
        found = self.detections(mono16k)
        if len(found) > 1:
            log.warning("wake phrase heard %d times in one %.1f s block; reporting the first", len(found), len(mono16k) / SAMPLE_RATE)
        return found[0] if found else None
