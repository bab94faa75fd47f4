"""Reading the easy-Japanese JSON files: every problem names the file, the entry and what is allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import EasyJapaneseError


def load(path: Path, fmt: str, list_key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A ``{"format": fmt, list_key: [...]}`` file and its entries, each checked to be an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise EasyJapaneseError(f"{path}: cannot be read ({err.strerror or err})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EasyJapaneseError(f"{path}: not valid UTF-8 JSON ({err})") from err
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise EasyJapaneseError(f"{path}: format must be {fmt!r} (an object with \"format\" and \"{list_key}\")")
    entries = data.get(list_key)
    if not isinstance(entries, list) or not entries:
        raise EasyJapaneseError(f"{path}: \"{list_key}\" must be a non-empty list")
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise EasyJapaneseError(f"{path}: {list_key}[{number}]: must be an object")
    return data, entries


def text(path: Path, where: str, entry: dict[str, Any], key: str, *, required: bool = True, allowed: str = "a non-empty string") -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise EasyJapaneseError(f"{path}: {where}: \"{key}\" must be {allowed}, not {value!r}")
    return value
