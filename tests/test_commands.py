"""Fleet commands decided by pure functions: malformed input gets an error and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from madoguchi.config import Settings, config_layers, load_settings, settings_from_layers
from madoguchi.telemetry import commands
from madoguchi.telemetry.schemas import problems


@pytest.fixture()
def box(tmp_path: Path) -> tuple[Settings, list]:
    site = tmp_path / "site.toml"
    site.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[sides]\nstaff_azimuth_deg = 270\nresident_azimuth_deg = 90\n')
    layers = config_layers(site, system_layers=False)
    return settings_from_layers(layers), layers


def decide(box, name: str | None, message: object) -> commands.Outcome:
    settings, layers = box
    payload = message if isinstance(message, bytes) else json.dumps(message).encode()
    outcome = commands.decide(name, payload, layers, settings)
    assert not problems("cmd_result", {**outcome.result, "ts": 0.0}), outcome.result
    return outcome


def test_ping(box) -> None:
    outcome = decide(box, "ping", {"id": "a1"})
    assert outcome.result["ok"] and outcome.result["result"]["pong"] and outcome.result["id"] == "a1" and not outcome.writes


def test_set_config_writes_the_fleet_layer_which_then_wins(box, tmp_path: Path) -> None:
    outcome = decide(box, "set_config", {"id": "c1", "args": {"set": {"sides": {"staff_azimuth_deg": 180, "resident_azimuth_deg": 0}, "log": {"level": "DEBUG"}}}})
    assert outcome.result["ok"], outcome.result
    assert outcome.result["result"]["restart_required"] == ["sides.resident_azimuth_deg", "sides.staff_azimuth_deg"]
    commands.apply(outcome)
    settings = load_settings(tmp_path / "site.toml", system_layers=False)
    assert (settings.sides.staff_azimuth_deg, settings.log.level) == (180.0, "DEBUG")
    assert outcome.result["result"]["config_hash"] == settings.digest()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        ({"set": {"sides": {"staff_azimuth_deg": 90, "resident_azimuth_deg": 95}}}, "invalid_config", "apart"),
        ({"set": {"sides": {"stafff": 1}}}, "invalid_config", "unknown key"),
        ({"set": {"vad": {"hangover_ms": "long"}}}, "invalid_config", "whole number"),
        ({"set": {"paths": {"state_dir": "/tmp/elsewhere"}}}, "local_only", "paths.state_dir can only be set in the box's own config"),
        ({"set": {"mqtt": {"share_transcripts": True}}}, "local_only", "mqtt.share_transcripts"),
        ({"set": {}}, "bad_args", "set_config needs"),
        ({"sides": {"x": 1}}, "bad_args", "set_config needs"),
    ],
)
def test_invalid_set_config_changes_nothing(box, tmp_path: Path, args: dict, code: str, fragment: str) -> None:
    outcome = decide(box, "set_config", {"id": "c2", "args": args})
    assert not outcome.result["ok"] and outcome.result["error"]["code"] == code and fragment in outcome.result["error"]["message"]
    assert outcome.writes == () and not outcome.reload_settings
    assert not (tmp_path / "state" / "fleet.toml").exists()


def test_push_glossary(box, tmp_path: Path) -> None:
    entries = [{"ja": "住民票", "en": "residence certificate", "vi": "phiếu cư trú"}, {"ja": "転入届", "en": "moving-in notification"}]
    outcome = decide(box, "push_glossary", {"id": "g1", "args": {"name": "city-hall", "entries": entries}})
    assert outcome.result["ok"] and outcome.result["result"] == {"name": "city-hall", "entries": 2}
    commands.apply(outcome)
    stored = json.loads((tmp_path / "state" / "glossaries" / "city-hall.json").read_text(encoding="utf-8"))
    assert stored["entries"] == entries


@pytest.mark.parametrize(
    ("name", "message", "code"),
    [
        ("ping", b"\xff\xfe", "bad_json"),
        ("ping", b"{not json", "bad_json"),
        ("ping", [1, 2], "bad_command"),
        ("ping", {"args": {}}, "bad_command"),
        ("ping", {"id": "x", "extra": 1}, "bad_command"),
        ("reboot", {"id": "x"}, "unknown_command"),
        (None, {"id": "x"}, "unknown_command"),
        ("push_glossary", {"id": "x", "args": {"name": "../../etc", "entries": [{"ja": "a", "en": "b"}]}}, "bad_args"),
        ("push_phrasebook", {"id": "x", "args": {"name": "p", "entries": [{"ja": "only one language"}]}}, "bad_args"),
        ("ping", b"x" * (commands.MAX_PAYLOAD_BYTES + 1), "too_large"),
    ],
)
def test_malformed_commands_get_a_clear_error(box, name, message, code) -> None:
    outcome = decide(box, name, message)
    assert not outcome.result["ok"] and outcome.result["error"]["code"] == code and outcome.writes == ()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20), lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4), max_leaves=12)
malformed = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": st.text(max_size=70) | st.integers(), "args": json_values}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": st.just("p"), "args": st.fixed_dictionaries({"set": json_values})}).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": st.just("g"), "args": st.fixed_dictionaries({"name": st.text(max_size=40), "entries": json_values})}).map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # decide() writes nothing
@given(name=st.sampled_from([*commands.COMMANDS, "", "x", None, "set_config/extra"]), payload=malformed)
def test_a_thousand_generated_commands_never_crash_or_change_state_unless_valid(box, name, payload) -> None:
    outcome = decide(box, name, payload)
    if not outcome.result["ok"]:
        assert outcome.writes == () and not outcome.reload_settings
    else:  # the generator found a valid command: it must really be one
        assert name in commands.COMMANDS
