"""The command line as an admin meets it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]


def madoguchi(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "madoguchi", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def assert_clean_failure(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> None:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_config_check_ok(write_config) -> None:
    path = write_config("[sides]\nstaff_azimuth_deg = 180\nresident_azimuth_deg = 0\n")
    result = madoguchi("config", "check", str(path))
    assert result.returncode == 0 and "ok" in result.stdout


def test_config_check_reports_every_problem_one_line_each(write_config) -> None:
    path = write_config("[array]\nmic_positions_m = [[0, 0, 0]]\n[sides]\nfoo = 1\n")
    result = madoguchi("config", "check", str(path))
    assert_clean_failure(result, 2, f"{path}: [array] mic_positions_m", f"{path}: [sides] foo: unknown key")
    assert len(result.stderr.strip().splitlines()) == 2


def test_all_example_configs_check() -> None:
    for path in sorted((ROOT / "hw" / "arrays").glob("*.toml")):
        assert madoguchi("config", "check", str(path)).returncode == 0, path


def test_replay_rejects_non_audio(tmp_path: Path) -> None:
    bogus = tmp_path / "counter.wav"
    bogus.write_bytes(b"RIFF....WAVEfmt garbage")
    result = madoguchi("replay", "--no-system-config", "--json", str(bogus))
    assert_clean_failure(result, 1, "[audio_format]", "not a readable audio file")
    assert len(result.stderr.strip().splitlines()) == 1


def test_replay_rejects_wrong_channel_count(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    soundfile.write(stereo, np.zeros((16000, 2), np.float32), 16000)
    result = madoguchi("replay", "--no-system-config", str(stereo))  # default array: 4 mics
    assert_clean_failure(result, 1, "has 2 channel(s) but the configured array needs 4")


def test_replay_missing_file(tmp_path: Path) -> None:
    assert_clean_failure(madoguchi("replay", "--no-system-config", str(tmp_path / "none.wav")), 1, "no such recording")


def test_replay_of_silence_prints_nothing(tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.wav"
    rng = np.random.default_rng(0)
    soundfile.write(quiet, (0.001 * rng.standard_normal((3 * 16000, 4))).astype(np.float32), 16000)
    result = madoguchi("replay", "--no-system-config", "--json", "--stages", "frontend", str(quiet))
    assert result.returncode == 0 and result.stdout == ""


def test_bad_config_for_replay_exits_2(write_config, tmp_path: Path) -> None:
    path = write_config("[vad]\nhangover_ms = -5\n")
    assert_clean_failure(madoguchi("replay", "--config", str(path), "--no-system-config", str(tmp_path / "x.wav")), 2, "[vad] hangover_ms")


def test_demo_prints_the_bundled_conversation(speech_store) -> None:
    result = madoguchi("demo", "--json", timeout=300, env={"MADOGUCHI_MODELS_DIR": str(speech_store.root)})
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) >= 6
    assert {r["side"] for r in records} == {"staff", "resident"}
    for r in records:
        assert {"start_s", "end_s", "side", "azimuth_deg", "lang", "text", "target_lang", "translation", "vad_ms", "asr_ms", "mt_ms", "latency_ms"} <= set(r)
        assert 0 <= r["start_s"] < r["end_s"] and 0.0 <= r["side_confidence"] <= 1.0
    assert "latency_ms" in result.stderr and "p95" in result.stderr  # the per-stage summary


def test_demo_front_end_only_needs_no_models(tmp_path: Path) -> None:
    result = madoguchi("demo", "--stages", "frontend", env={"MADOGUCHI_MODELS_DIR": str(tmp_path / "empty")})
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) >= 6 and "staff" in result.stdout
    assert "fetching" not in result.stderr and not any((tmp_path / "empty").glob("**/*.bin"))  # nothing was downloaded


def test_frames_need_the_whole_pipeline(tmp_path: Path) -> None:
    result = madoguchi("demo", "--stages", "frontend", "--frames", str(tmp_path / "faces"))
    assert result.returncode != 0 and "--frames needs the whole pipeline" in result.stderr


def test_models_list_and_the_licence_gate(tmp_path: Path, write_config) -> None:
    config = write_config(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    listing = madoguchi("models", "list", "--no-system-config", "--config", str(config))
    assert listing.returncode == 0 and "whisper-base-ct2" in listing.stdout and "CC-BY-NC" in listing.stdout
    refused = madoguchi("models", "fetch", "--no-system-config", "--config", str(config), "nllb-200-distilled-600m")
    assert_clean_failure(refused, 1, "[model_unlicensed]", "--accept-licence")
    # Accepted, it goes to the model hub: here one that is down (nothing listens on port 9).
    unreachable = madoguchi("models", "fetch", "--no-system-config", "--config", str(config), "--accept-licence", "nllb-200-distilled-600m",
                            env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert_clean_failure(unreachable, 1, "[hub_unreachable]", "HF_ENDPOINT", "madoguchi models import nllb-200-distilled-600m")
    assert not (tmp_path / "state" / "models" / "nllb-200-distilled-600m").exists()
