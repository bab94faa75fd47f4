"""Shared fixtures. Tests run against the real parts: Silero VAD, pyroomacoustics scenes, PulseAudio."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# No test reaches the real model hub: a fetch that is not pointed at the tests' own mirror
# (tests/hf_mirror.py) finds nothing listening and fails as an offline box would.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
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


@pytest.fixture(scope="session")
def speech_store():
    """A model store holding Whisper base for both backends, fetched and converted once (checked against the lock)."""
    from tests.asr_assets import speech_model_store

    return speech_model_store()


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small CTranslate2 translation models of every family, with known outputs (tests/mt_models.py)."""
    from tests.mt_models import toy_models

    return toy_models(tmp_path_factory.mktemp("mt-models"))
