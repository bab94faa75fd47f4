"""Commands from the fleet: decided by pure functions, applied by one small writer.

``decide`` turns a raw MQTT message into an outcome: the ``cmd_result`` payload and the file
writes it implies. It changes nothing itself, so anything malformed — bad JSON, an unknown
command, a config key that fails validation — yields an error result and no writes. Only then
does ``apply`` write, each file atomically (temp file, fsync, rename).

| command         | args                                              | effect |
|-----------------|---------------------------------------------------|--------|
| set_config      | {"set": {"<table>": {"<key>": value, ...}, ...}}  | validated exactly like the config file, merged into the fleet layer (``<state_dir>/fleet.toml``) |
| push_glossary   | {"name": "...", "entries": [{"ja": "住民票", "en": "residence certificate"}, ...]} | ``<state_dir>/glossaries/<name>.json`` |
| push_phrasebook | {"name": "...", "entries": [...same form...]}     | ``<state_dir>/phrasebooks/<name>.json`` |
| ping            | {}                                                | result {"pong": true, "version": ...} |
| request_health  | {}                                                | publishes health now |
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from madoguchi import __version__
from madoguchi.config import Settings, settings_from_layers
from madoguchi.errors import ConfigError
from madoguchi.files import atomic_write_text
from madoguchi.telemetry.schemas import problems

# Keys a running box applies at once; the rest take effect at the next start (restart_required).
LIVE_KEYS = frozenset({"log.level", "mqtt.health_interval_s"})
# Keys only the site itself may set, in its own files: where the box keeps its state and secrets,
# and whether words may leave the counter at all (privacy is the site's decision, not the fleet's).
LOCAL_ONLY_KEYS = frozenset({"paths.state_dir", "mqtt.share_transcripts", "mqtt.password_file", "mqtt.ca_file", "mqtt.cert_file", "mqtt.key_file", "mqtt.spool_path"})
COMMANDS = ("set_config", "push_glossary", "push_phrasebook", "ping", "request_health")
MAX_PAYLOAD_BYTES = 1 << 20
MAX_ENTRIES = 20000
_NAME = re.compile(r"[a-z0-9_-]{1,32}")
_LANG = re.compile(r"[a-z]{2,3}(-[A-Za-z]{2,4})?")


@dataclass(frozen=True)
class Write:
    """A file to write atomically: TOML text or JSON."""

    path: Path
    text: str


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]  # the cmd_result payload, without "ts"
    writes: tuple[Write, ...] = ()
    reload_settings: bool = False
    publish_health: bool = False


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _fail(command_id: str | None, name: str, code: str, message: str) -> Outcome:
    return Outcome({"id": command_id, "name": name, "ok": False, "error": {"code": code, "message": message[:1000]}})


def decide(name: str | None, payload: bytes, layers: list[tuple[str, dict[str, Any]]], settings: Settings) -> Outcome:
    """The outcome of one command message; ``layers`` are the config files as loaded."""
    shown = name if name is not None else "?"
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _fail(None, shown, "too_large", f"payload of {len(payload)} bytes; allowed: at most {MAX_PAYLOAD_BYTES}")
    try:
        message = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return _fail(None, shown, "bad_json", f"not UTF-8 JSON: {err}")
    command_id = message.get("id") if isinstance(message, dict) and isinstance(message.get("id"), str) else None
    found = problems("cmd", message)
    if found:
        return _fail(command_id, shown, "bad_command", "; ".join(found) + ' (allowed: {"id": "...", "args": {...}})')
    if name not in COMMANDS:
        return _fail(command_id, shown, "unknown_command", f"unknown command {shown!r}; allowed: {', '.join(COMMANDS)}")
    args = message.get("args", {})
    try:
        return _decide(name, command_id, args, layers, settings)
    except _Refused as refused:
        return _fail(command_id, name, refused.code, str(refused))


def _decide(name: str, command_id: str | None, args: dict[str, Any], layers: list[tuple[str, dict[str, Any]]], settings: Settings) -> Outcome:
    ok: dict[str, Any] = {"id": command_id, "name": name, "ok": True}
    if name == "ping":
        return Outcome({**ok, "result": {"pong": True, "version": __version__}})
    if name == "request_health":
        return Outcome({**ok, "result": {}}, publish_health=True)
    if name == "set_config":
        return _set_config(ok, args, layers, settings)
    folder = "glossaries" if name == "push_glossary" else "phrasebooks"
    return _push_terms(ok, args, Path(settings.paths.state_dir) / folder)


def _set_config(ok: dict[str, Any], args: dict[str, Any], layers: list[tuple[str, dict[str, Any]]], settings: Settings) -> Outcome:
    changes = args.get("set")
    if set(args) != {"set"} or not isinstance(changes, dict) or not changes or not all(isinstance(v, dict) and v for v in changes.values()):
        raise _Refused("bad_args", 'set_config needs {"set": {"<table>": {"<key>": value}}}')
    keys = sorted(f"{t}.{k}" for t, body in changes.items() for k in body)
    local_only = [k for k in keys if k in LOCAL_ONLY_KEYS]
    if local_only:
        raise _Refused("local_only", f"{', '.join(local_only)} can only be set in the box's own config file, not remotely")
    fleet_path = settings.paths.fleet_config
    others = [(n, doc) for n, doc in layers if Path(n) != fleet_path]
    current = next((doc for n, doc in layers if Path(n) == fleet_path), {})
    merged = {table: dict(body) for table, body in current.items() if isinstance(body, dict)}
    for table, body in changes.items():
        merged.setdefault(table, {}).update(body)
    try:
        updated = settings_from_layers([*others, (str(fleet_path), merged)])
    except ConfigError as err:
        raise _Refused("invalid_config", "; ".join(str(p) for p in err.problems)) from err
    result = {"set": keys, "config_hash": updated.digest(), "restart_required": [k for k in keys if k not in LIVE_KEYS]}
    return Outcome({**ok, "result": result}, writes=(Write(fleet_path, to_toml(merged)),), reload_settings=True)


def _push_terms(ok: dict[str, Any], args: dict[str, Any], folder: Path) -> Outcome:
    name, entries = args.get("name"), args.get("entries")
    if set(args) != {"name", "entries"} or not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _Refused("bad_args", 'needs {"name": "<a-z0-9_- up to 32>", "entries": [{"<lang>": "<term>", ...}, ...]}')
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_ENTRIES:
        raise _Refused("bad_args", f"entries must be a list of 1 to {MAX_ENTRIES} objects")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or len(entry) < 2 or not all(isinstance(k, str) and _LANG.fullmatch(k) and isinstance(v, str) and 0 < len(v) <= 500 for k, v in entry.items()):
            raise _Refused("bad_args", f"entries[{i}] must map two or more language codes (ja, en, pt-BR …) to non-empty strings of at most 500 characters")
    text = json.dumps({"name": name, "entries": entries}, ensure_ascii=False, indent=1) + "\n"
    return Outcome({**ok, "result": {"name": name, "entries": len(entries)}}, writes=(Write(folder / f"{name}.json", text),))


def to_toml(tables: dict[str, dict[str, Any]]) -> str:
    """TOML for the fleet layer: tables of scalars and (nested) lists of them."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    lines = ["# Written by Madoguchi from fleet commands (cmd/set_config). Delete to drop remote settings."]
    for table, body in tables.items():
        lines += ["", f"[{table}]", *(f"{k} = {value(v)}" for k, v in body.items())]
    return "\n".join(lines) + "\n"


def apply(outcome: Outcome) -> None:
    """Carry out an outcome's writes, each atomically (a power cut leaves the old or the new file)."""
    for write in outcome.writes:
        atomic_write_text(write.path, write.text)
