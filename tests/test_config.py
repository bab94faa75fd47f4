"""Config: layering, validation, and error messages that name the file, the key and what is allowed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from madoguchi.config import Settings, load_settings, settings_from_layers
from madoguchi.errors import ConfigError

SQUARE = "[array]\nmic_positions_m = [[0.032, 0, 0], [0, 0.032, 0], [-0.032, 0, 0], [0, -0.032, 0]]\n"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path, system_layers=False)
    return [str(p) for p in caught.value.problems]


def test_defaults_are_valid_and_frozen() -> None:
    settings = settings_from_layers([])
    assert settings.array.n_mics == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.sides.staff_azimuth_deg = 0.0  # type: ignore[misc]


def test_brief_keys_load(write_config) -> None:
    path = write_config(SQUARE + "[sides]\nstaff_azimuth_deg = 180\nresident_azimuth_deg = 0\n")
    settings = load_settings(path, system_layers=False)
    assert settings.array.mic_positions_m[1] == (0.0, 0.032, 0.0)
    assert (settings.sides.staff_azimuth_deg, settings.sides.resident_azimuth_deg) == (180.0, 0.0)
    assert settings.sources == (str(path),)


def test_later_layer_overrides_key_by_key(write_config) -> None:
    system = write_config(SQUARE + "[sides]\nstaff_azimuth_deg = 180\nresident_azimuth_deg = 0\n", "etc.toml")
    boot = write_config("[sides]\nresident_azimuth_deg = 10\n", "boot.toml")
    from madoguchi.config import read_toml

    settings = settings_from_layers([(str(system), read_toml(system)), (str(boot), read_toml(boot))])
    assert settings.sides.staff_azimuth_deg == 180.0
    assert settings.sides.resident_azimuth_deg == 10.0


def test_unknown_key_names_file_key_and_allowed(write_config) -> None:
    path = write_config("[sides]\nstaff_azimuth = 10\n")
    (message,) = problems(path)
    assert str(path) in message and "[sides] staff_azimuth" in message
    assert "unknown key" in message and "staff_azimuth_deg" in message


def test_unknown_table(write_config) -> None:
    (message,) = problems(write_config("[mikes]\nx = 1\n"))
    assert "[mikes]" in message and "allowed tables" in message and "array" in message


def test_wrong_type_and_range_are_reported_together(write_config) -> None:
    path = write_config('[vad]\nhangover_ms = "long"\nspeech_threshold = 2.0\n')
    found = problems(path)
    assert len(found) == 2
    assert any("[vad] hangover_ms" in m and "whole number" in m for m in found)
    assert any("[vad] speech_threshold" in m and "from 0.05 to 0.99" in m for m in found)


def test_invalid_toml_names_line(write_config) -> None:
    (message,) = problems(write_config("[array\n"))
    assert "not valid TOML" in message and "line 1" in message


def test_missing_file() -> None:
    (message,) = problems(Path("/nonexistent/madoguchi.toml"))
    assert "file not found" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[array]\nmic_positions_m = [[0, 0, 0]]\n", "at least 2"),
        ("[array]\nmic_positions_m = []\n", "at least 2"),
        ("[array]\nmic_positions_m = [[0, 0, 0], [0.05, 0, 0], [0.05, 0, 0]]\n", "same position"),
        ("[array]\nmic_positions_m = [[0, 0], [0.05, 0]]\n", "list of 3 values"),
        ("[array]\nmic_positions_m = [[0, 0, 0], [32, 0, 0]]\n", "not millimetres"),
        (SQUARE + "[sides]\nstaff_azimuth_deg = 90\nresident_azimuth_deg = 90\n", "apart"),
        (SQUARE + "[sides]\nstaff_azimuth_deg = 90\nresident_azimuth_deg = 450\n", "-360 to 360"),
        ("[array]\nmic_positions_m = [[0.03, 0, 0], [-0.03, 0, 0]]\n[sides]\nstaff_azimuth_deg = 90\nresident_azimuth_deg = 270\n", "mic axis across the counter"),
        (SQUARE + "[audio]\nchannel_map = [0, 1]\n", "one captured channel per mic"),
        (SQUARE + "[vad]\nsilence_threshold = 0.8\n", "at most speech_threshold"),
    ],
)
def test_bad_geometry_and_sides(write_config, body: str, expected: str) -> None:
    found = problems(write_config(body))
    assert any(expected in m for m in found), found


def test_two_mic_line_across_the_counter_is_fine(write_config) -> None:
    path = write_config("[array]\nmic_positions_m = [[0.03, 0, 0], [-0.03, 0, 0]]\n[sides]\nstaff_azimuth_deg = 180\nresident_azimuth_deg = 0\n")
    assert load_settings(path, system_layers=False).array.n_mics == 2


def test_digest_ignores_where_settings_came_from() -> None:
    a = Settings()
    b = dataclasses.replace(a, sources=("x.toml",))
    assert a.digest() == b.digest()
    assert a.digest() != dataclasses.replace(a, vad=dataclasses.replace(a.vad, hangover_ms=500)).digest()
