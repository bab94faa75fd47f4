"""Phrasebook and glossary files: one format for both, validated entry by entry.

A file is ``{"name": "...", "entries": [entry, ...]}`` (JSON, or TOML with ``[[entries]]``).
An entry maps language codes to text — the form ``push_glossary``/``push_phrasebook`` write::

    {"ja": "住民票", "en": "residence certificate"}

— or, in curated files, to an object with variants and a review mark::

    {"phrase_id": "wait_moment",
     "ja": {"text": "少々お待ちください。", "variants": ["少しお待ちください"]},
     "en": {"text": "Please wait a moment.", "review": "needed"},
     "th": {"text": "…", "review": "native", "reviewer": "K. Somchai", "date": "2025-04-01"}}

``review`` is per language: ``needed`` (curated by us, not yet checked by a native speaker; the
default, and what plain pushed strings get) or ``native`` (checked; ``reviewer`` and ``date``
required). Besides language codes an entry may hold its identifier (``phrase_id`` in phrasebooks,
``term_id`` in glossaries — not ``id``, which is Indonesian), ``tags`` and ``note``.

Later files override earlier ones entry by entry: an entry with the same identifier, or failing
that the same Japanese text, replaces the earlier entry's languages that it gives and keeps the
rest. A file with any bad entry is rejected whole, so a site never runs on half a file.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

from madoguchi.errors import MadoguchiError
from madoguchi.mt.textnorm import LANGUAGES, STAFF_LANGUAGE, language_code, normalise

log = logging.getLogger(__name__)

REVIEW_STATUSES = ("needed", "native")
MAX_ENTRIES = 20000
MAX_TEXT = 500
_TOP_KEYS = frozenset({"name", "format", "description", "entries"})
_FORM_KEYS = frozenset({"text", "variants", "review", "reviewer", "date"})
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ALLOWED_LANGS = ", ".join(LANGUAGES)


class TermFileError(MadoguchiError, ValueError):
    """A phrasebook or glossary file is unusable; ``problems`` name the file, the entry and what is allowed."""

    code = "term_file_invalid"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Rendering:
    """One language of an entry: the text shown, other ways of saying it, and its review state."""

    text: str
    variants: tuple[str, ...] = ()
    review: str = "needed"
    reviewer: str = ""
    date: str = ""

    @property
    def needs_review(self) -> bool:
        return self.review != "native"

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.text, *self.variants)


@dataclass(frozen=True)
class Entry:
    key: str
    renderings: Mapping[str, Rendering]
    origin: str  # "<file> entries[<i>]", for log messages
    tags: tuple[str, ...] = ()
    explicit_key: bool = False


def _text(value: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        problems.append(f"{where}: must be a non-empty string of at most {MAX_TEXT} characters, got {value!r:.60}")
        return None
    return value.strip()


def _rendering(value: Any, where: str, problems: list[str]) -> Rendering | None:
    if isinstance(value, str):
        text = _text(value, where, problems)
        return Rendering(text) if text else None
    if not isinstance(value, dict):
        problems.append(f'{where}: must be a string or {{"text": ..., "variants": [...], "review": "needed"|"native"}}')
        return None
    unknown = sorted(set(value) - _FORM_KEYS)
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_FORM_KEYS))}")
    before = len(problems)
    text = _text(value.get("text"), f"{where}.text", problems)
    raw_variants = value.get("variants", [])
    if not isinstance(raw_variants, list):
        problems.append(f"{where}.variants: must be a list of strings")
        raw_variants = []
    variants = tuple(v for i, item in enumerate(raw_variants) if (v := _text(item, f"{where}.variants[{i}]", problems)))
    review = value.get("review", "needed")
    reviewer, date = value.get("reviewer", ""), value.get("date", "")
    if review not in REVIEW_STATUSES:
        problems.append(f"{where}.review: {review!r} is not allowed; allowed: {', '.join(REVIEW_STATUSES)}")
    elif review == "native" and not (isinstance(reviewer, str) and reviewer.strip() and isinstance(date, str) and _DATE.fullmatch(date)):
        problems.append(f'{where}: review "native" needs "reviewer" (a name) and "date" (YYYY-MM-DD)')
    if len(problems) > before or text is None:
        return None
    return Rendering(text, variants, review, reviewer.strip() if isinstance(reviewer, str) else "", date if isinstance(date, str) else "")


def parse_document(doc: Any, file: str, key_name: str) -> list[Entry]:
    """Validate one decoded file; raise TermFileError listing every problem found in it."""
    problems: list[str] = []
    if isinstance(doc, list):
        doc = {"entries": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
        raise TermFileError([f'{file}: must be an object {{"name": "...", "entries": [{{"ja": "...", "en": "..."}}, ...]}}'])
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        problems.append(f"{file}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    raw = doc["entries"]
    if not 0 < len(raw) <= MAX_ENTRIES:
        problems.append(f"{file}: entries must hold 1 to {MAX_ENTRIES} entries, has {len(raw)}")
    stem = Path(file).stem
    entries: list[Entry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{file}: entries[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object mapping language codes to text")
            continue
        before = len(problems)
        key, explicit = f"{stem}#{index}", False
        if key_name in item:
            if isinstance(item[key_name], str) and _KEY.fullmatch(item[key_name]):
                key, explicit = item[key_name], True
                if key in seen:
                    problems.append(f"{where}.{key_name}: {key!r} is used twice in this file")
                seen.add(key)
            else:
                problems.append(f"{where}.{key_name}: must be 1 to 64 of A-Z a-z 0-9 _ . : -")
        tags = item.get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            problems.append(f"{where}.tags: must be a list of strings")
            tags = []
        if not isinstance(item.get("note", ""), str):
            problems.append(f"{where}.note: must be a string")
        renderings: dict[str, Rendering] = {}
        for raw_lang, value in item.items():
            if raw_lang in (key_name, "tags", "note"):
                continue
            lang = language_code(raw_lang) if isinstance(raw_lang, str) else None
            if lang is None:
                problems.append(f"{where}: unknown language code {raw_lang!r}; allowed: {_ALLOWED_LANGS} (region tags such as pt-BR are accepted), {key_name}, tags, note")
            elif lang in renderings:
                problems.append(f"{where}: language {lang!r} given twice (as {raw_lang!r})")
            elif (rendering := _rendering(value, f"{where}.{raw_lang}", problems)) is not None:
                renderings[lang] = rendering
        if STAFF_LANGUAGE not in renderings and len(problems) == before:
            problems.append(f"{where}: has no Japanese ('ja') text; every entry needs one")
        elif len(renderings) < 2 and len(problems) == before:
            problems.append(f"{where}: needs at least one language besides 'ja'")
        if len(problems) == before:
            entries.append(Entry(key, MappingProxyType(renderings), where.replace(": ", " ", 1), tuple(tags), explicit))
    if problems:
        raise TermFileError(problems[:50] + ([f"{file}: … and {len(problems) - 50} more problems"] if len(problems) > 50 else []))
    return entries


def read_file(path: Path, key_name: str) -> list[Entry]:
    """Read and validate one file (JSON, or TOML when it ends in .toml)."""
    try:
        raw = path.read_bytes().decode("utf-8")
        doc = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except OSError as err:
        raise TermFileError([f"{path}: cannot read: {err.strerror or err}"]) from err
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise TermFileError([f"{path}: not valid UTF-8 {'TOML' if path.suffix == '.toml' else 'JSON'}: {err}"]) from err
    return parse_document(doc, str(path), key_name)


def bundled_path(*parts: str) -> Path:
    return Path(str(files("madoguchi").joinpath("data", *parts)))


def load_entries(paths: Sequence[Path], key_name: str, *, strict: bool, error: type[TermFileError]) -> tuple[list[Entry], tuple[str, ...]]:
    """Every good file's entries in order. strict: raise ``error`` naming every bad file; else log and skip them."""
    loaded: list[Entry] = []
    problems: list[str] = []
    for path in paths:
        try:
            loaded.extend(read_file(Path(path), key_name))
        except TermFileError as err:
            problems.extend(err.problems)
            if not strict:
                log.error("skipping %s (the other files are still used): %s", path, "; ".join(err.problems))
    if problems and strict:
        raise error(problems)
    return merge(loaded), tuple(problems)


def merge(entries: Sequence[Entry]) -> list[Entry]:
    """Later entries override earlier ones with the same key, or else the same Japanese text, language by language."""
    merged: list[Entry] = []
    by_key: dict[str, int] = {}
    by_ja: dict[str, int] = {}
    for entry in entries:
        ja = normalise(entry.renderings[STAFF_LANGUAGE].text, STAFF_LANGUAGE)
        at = by_key.get(entry.key) if entry.explicit_key else None
        if at is None:
            at = by_ja.get(ja)
        if at is None:
            by_key[entry.key] = by_ja[ja] = len(merged)
            merged.append(entry)
            continue
        old = merged[at]
        merged[at] = Entry(old.key, MappingProxyType({**old.renderings, **entry.renderings}), entry.origin, entry.tags or old.tags, old.explicit_key)
        by_ja[ja] = at
        log.debug("%s overrides %s (%s)", entry.origin, old.key, ", ".join(sorted(entry.renderings)))
    return merged


def pushed_files(state_dir: Path, folder: str) -> list[Path]:
    """The files the fleet pushed (``<state_dir>/glossaries`` or ``phrasebooks``), in a stable order."""
    root = Path(state_dir) / folder
    return sorted(p for p in root.glob("*.json") if p.is_file()) if root.is_dir() else []
