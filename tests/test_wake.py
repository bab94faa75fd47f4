"""The wake phrase: openWakeWord's feature models (through the model manager) and our trained head, for real.

The head is trained once by tests/wake_train.py and cached on everything that made it (about
20 minutes cold: Kokoro synthesis dominates; seconds warm). The phrase trials use voices,
sentences and rooms the head never saw (tests/wake_data.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from madoguchi.frontend.wake import CHUNK, FEATURE_FILES, FEATURES_ID, HEAD_FORMAT, FeatureModels, WakeHeard, WakeModelError, WakePhraseDetector

SR = 16000


@pytest.fixture(scope="module")
def features_dir() -> Path:
    from tests.wake_train import feature_models_dir

    return feature_models_dir()


@pytest.fixture(scope="module")
def head_dir() -> Path:
    from tests.wake_train import cached_head

    return cached_head()


def _toy_head(folder: Path, features_dir: Path | None = None, n_frames: int = 4) -> Path:
    """A head of the real format with random weights: for the plumbing, not for hearing anything."""
    from tests.wake_train import write_head

    rng = np.random.default_rng(0)
    meta = {"format": HEAD_FORMAT, "phrase": "テスト", "n_frames": n_frames, "threshold": 0.5,
            "feature_sha256": {n: hashlib.sha256((features_dir / n).read_bytes()).hexdigest() for n in FEATURE_FILES} if features_dir else {}}
    arrays = {"input.mean": np.zeros(96, np.float32), "input.scale": np.ones(96, np.float32),
              "dense0.w": rng.normal(0, 0.05, (n_frames * 96, 8)).astype(np.float32), "dense0.b": np.zeros(8, np.float32),
              "norm0.g": np.ones(8, np.float32), "norm0.b": np.zeros(8, np.float32),
              "out.w": rng.normal(0, 1, (8, 1)).astype(np.float32), "out.b": np.zeros(1, np.float32)}
    write_head(folder / "wake.npz", arrays, meta)
    return folder


def _stream(det: WakePhraseDetector, audio: np.ndarray, block: int = 512) -> list[WakeHeard]:
    found = []
    for i in range(0, len(audio), block):
        heard = det.process(audio[i:i + block])
        if heard:
            found.append(heard)
    return found


# --- errors ---------------------------------------------------------------------------------------

def test_missing_feature_models_name_the_fetch_command(tmp_path: Path) -> None:
    head = _toy_head(tmp_path / "wake-x")
    with pytest.raises(WakeModelError) as err:
        WakePhraseDetector(head)  # no openwakeword-features beside it
    assert err.value.code == "wake_model"
    assert f"madoguchi models fetch --accept-licence {FEATURES_ID}" in str(err.value)
    assert str(tmp_path / FEATURES_ID) in str(err.value)


def test_missing_or_corrupt_head_and_damaged_features_are_clear_errors(tmp_path: Path, features_dir: Path) -> None:
    with pytest.raises(WakeModelError, match="no wake-phrase head.*python -m tests.wake_train"):
        WakePhraseDetector(tmp_path / "nothing", features_dir=features_dir)
    good = _toy_head(tmp_path / "good", features_dir)
    WakePhraseDetector(good, features_dir=features_dir)  # loads
    bad = tmp_path / "bad"
    bad.mkdir()
    blob = (good / "wake.npz").read_bytes()
    (bad / "wake.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(WakeModelError, match="corrupt wake-phrase head") as err:
        WakePhraseDetector(bad, features_dir=features_dir)
    assert err.value.file == bad / "wake.npz"
    damaged = tmp_path / FEATURES_ID
    shutil.copytree(features_dir, damaged)
    data = bytearray((damaged / "embedding_model.onnx").read_bytes())
    data[5000:5010] = b"\0" * 10
    (damaged / "embedding_model.onnx").write_bytes(bytes(data))
    with pytest.raises(WakeModelError, match=f"sha256 differs.*madoguchi models fetch --accept-licence {FEATURES_ID}"):
        WakePhraseDetector(good, features_dir=damaged)
    (damaged / "melspectrogram.onnx").write_bytes(b"not onnx")
    with pytest.raises(WakeModelError, match="not a loadable ONNX model"):
        FeatureModels(damaged)  # no sha256 to compare: onnxruntime's refusal becomes the same error


def test_the_feature_models_need_the_licence_accepted(tmp_path: Path) -> None:
    from madoguchi.models.errors import ModelUnlicensedError
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore

    store = ModelStore.open(tmp_path / "store", lock_path=tmp_path / "manifest.lock")
    entry = store.manifest.get(FEATURES_ID)
    assert (entry.engine, entry.task, entry.commercial) == ("openwakeword", "wake", False)
    assert entry.sources[0].packages == ("openwakeword==0.5.1",)
    with pytest.raises(ModelUnlicensedError, match="--accept-licence"):
        fetch_model(store, FEATURES_ID)


# --- openWakeWord's method, reproduced --------------------------------------------------------------

def test_streaming_is_block_size_independent_and_equals_whole_clip_features(tmp_path: Path, features_dir: Path) -> None:
    from tests.bench.wake import Scorer
    from tests.sim import speech

    head = _toy_head(tmp_path / "toy", features_dir)
    audio = np.concatenate([np.zeros(SR // 2, np.float32), speech.japanese("通訳お願いします。", "jf_tebukuro"), np.zeros(SR, np.float32)])
    traces = []
    for block in (160, 512, 4000, len(audio)):
        det = WakePhraseDetector(head, features_dir=features_dir)
        traces.append(np.concatenate([det.scores(audio[i:i + block]) for i in range(0, len(audio), block)]))
        assert det.time_s == pytest.approx(len(audio) / SR)
    for t in traces[1:]:
        np.testing.assert_allclose(t, traces[0], atol=2e-5)
    det = WakePhraseDetector(head, features_dir=features_dir)
    whole = Scorer(det.features, det.head).scores(det.features.clip_embeddings(audio))
    assert len(whole) == len(audio) // CHUNK
    np.testing.assert_allclose(whole, traces[0], atol=2e-5)


def test_hey_jarvis_scores_as_openwakeword_does(features_dir: Path) -> None:
    """openWakeWord 0.6.0 itself (inference_framework="onnx", measured once outside this venv:
    it cannot be installed here) scored steps 35-42 and 78-84 of this audio above 0.5."""
    from tests.sim import speech
    from tests.wake_train import hey_jarvis_dir

    rng = np.random.default_rng(1)
    a, b = speech.natural("Hey Jarvis.", "am_adam"), speech.natural("Hey Jarvis, turn on the lights.", "af_heart")
    x = np.concatenate([np.zeros(32000), a * 0.5, np.zeros(40000), b * 0.5, np.zeros(30000)]).astype(np.float32)
    x += rng.normal(0, 1e-3, len(x)).astype(np.float32)
    det = WakePhraseDetector(hey_jarvis_dir(), features_dir=features_dir)
    steps = np.flatnonzero(np.concatenate([det.scores(x[i:i + 1000]) for i in range(0, len(x), 1000)]) > 0.5)
    assert abs(steps.min() - 35) <= 1 and abs(steps.max() - 84) <= 1
    assert set(range(37, 41)) | set(range(79, 83)) <= set(steps.tolist()) and not set(range(45, 75)) & set(steps.tolist())
    det.reset()
    heard = _stream(det, x)
    assert [round(h.time_s / 0.08) for h in heard] in ([36, 79], [35, 79], [36, 80], [35, 80], [37, 79], [36, 78])
    assert all(h.phrase == "hey_jarvis_v0.1" for h in heard)


# --- our phrase, held-out voices in simulated rooms ----------------------------------------------------

def test_the_phrase_in_a_room_is_heard_once(head_dir: Path, features_dir: Path) -> None:
    from tests import wake_data as wd

    rooms = wd.held_out_rooms(1)
    babble, follow = wd.held_out_babble_pool(), wd.follow_lines()
    rng = np.random.default_rng(11)
    det = WakePhraseDetector(head_dir, features_dir=features_dir)
    assert det.phrase == "通訳お願いします" and det.n_frames == 20
    hits = 0
    cases = [(v, room, d) for v in wd.JA_HELD_OUT_VOICES for room, d in ((rooms[1], 0.5), (rooms[2], 1.0), (rooms[0], 1.0))]
    for voice, room, d in cases:
        t = wd.trial(room, d, wd.say("通訳お願いします。", voice), voice, rng, babble, follow[int(rng.integers(len(follow)))])
        det.reset()
        heard = _stream(det, t.audio)
        assert len(heard) <= 1, f"{voice} at {d} m, RT60 {room.rt60_s}: heard {len(heard)} times {heard}"
        if heard:
            assert t.hit(heard[0].time_s), f"{voice}: heard at {heard[0].time_s} s, the phrase is at {t.phrase_s}"
            assert heard[0].score >= det.threshold
        hits += len(heard)
    assert hits >= len(cases) - 1, f"heard {hits} of {len(cases)}"


def test_counter_talk_babble_and_near_misses_do_not_fire(head_dir: Path, features_dir: Path) -> None:
    import soundfile

    from tests import wake_data as wd
    from tests.sim.catalog import standard_scenes
    from tests.sim.counter import build_scene

    det = WakePhraseDetector(head_dir, features_dir=features_dir)
    scene = build_scene(standard_scenes()[1])  # 44 s: clerk, resident (en) and a neighbour
    audio, sr = soundfile.read(str(scene.wav_path), dtype="float32", always_2d=True)
    assert sr == SR
    assert _stream(det, audio.mean(axis=1)) == []
    rooms = wd.held_out_rooms(1)
    babble = wd.held_out_babble_pool()
    rng = np.random.default_rng(5)
    for text in ("通帳、お願いします。", "よろしくお願いいたします。", "通訳の人を呼びましょうか。", "記入をお願いします。"):
        for voice in wd.JA_HELD_OUT_VOICES:
            t = wd.trial(rooms[1], 0.5, wd.say(text, voice), text, rng, babble, phrase=False, n_babble=3)
            det.reset()
            assert _stream(det, t.audio) == [], f"{voice}: {text}"


def test_detections_in_one_long_block_and_reset(head_dir: Path, features_dir: Path) -> None:
    from tests.sim import speech

    phrase = speech.japanese("通訳お願いします。", "jf_tebukuro")
    gap = np.zeros(3 * SR, np.float32)
    audio = np.concatenate([gap, phrase, gap, phrase, gap])
    det = WakePhraseDetector(head_dir, features_dir=features_dir)
    both = det.detections(audio)
    assert len(both) == 2 and 3.0 < both[0].time_s < both[1].time_s - 3.0
    det.reset()
    assert det.time_s == 0.0
    first = det.process(audio)  # one block, two detections: the first is returned (and a warning logged)
    assert first == both[0]
    assert json.loads(json.dumps(first.__dict__))["phrase"] == "通訳お願いします"
