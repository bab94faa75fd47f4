"""The JSON Schemas of every payload, loaded once; used to check commands in and tests' messages out."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator

NAMES = ("status", "health", "usage", "event", "cmd", "cmd_result")


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((files("madoguchi.telemetry") / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, payload: Any) -> list[str]:
    """Every way ``payload`` breaks schema ``name``, as short readable lines (empty if valid)."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator(name).iter_errors(payload)]
