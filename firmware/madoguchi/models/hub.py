"""Translation models from a Hugging Face hub repository, pinned to a commit, converted here to CTranslate2.

This runs on the machine that builds the box's image (online), never on the box. Steps:

1. Ask the hub for the repository at the pinned commit (``/api/models/{repo}/revision/{sha}``,
   with file sizes and hashes). Its answer must name that same commit.
2. Download what the converter reads (config, tokenizer files, one set of weights: safetensors
   if the repository has them, else the PyTorch ``.bin``) from ``/{repo}/resolve/{sha}/{file}``
   into ``<store>/.hub/<owner>--<name>/<sha>/``, kept so a re-run downloads nothing. Each file must
   match the hash the hub lists for the pinned commit: sha256 for large (LFS) files, the git blob
   id for the others. An interrupted download resumes where it stopped.
3. Convert with CTranslate2's own ``TransformersConverter`` (needs ``transformers`` and
   ``torch``: ``pip install 'madoguchi[convert]'``) into a temp folder inside the store, copying
   the tokenizer files the engine reads (``copy_files``), then check the result against
   ``manifest.lock`` (or record it there on first fetch) and rename it into place. A failure at
   any step leaves the installed model as it was and no half-written folder.

The hub's address is ``$HF_ENDPOINT`` when set (a mirror), as for ``huggingface_hub``.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from madoguchi import __version__
from madoguchi.models.errors import (
    ConversionFailedError,
    ConverterMissingError,
    HubChecksumError,
    HubFileMissingError,
    HubRevisionError,
    HubUnpinnedError,
    HubUnreachableError,
    ModelError,
    ModelUnavailableError,
    NoSpaceError,
)
from madoguchi.models.manifest import ModelEntry, Source
from madoguchi.models.store import CHUNK, ModelStore, Progress, file_sha256

log = logging.getLogger(__name__)

ENDPOINT_ENV = "HF_ENDPOINT"
DEFAULT_ENDPOINT = "https://huggingface.co"  # the one place the hub's address is written; $HF_ENDPOINT overrides it
TIMEOUT_S = 30.0
CACHE_DIR = ".hub"
CONVERT_EXTRA = "pip install 'madoguchi[convert]'  (transformers and torch; a CPU torch is enough)"

# what the converter reads besides the weights: transformers' config and tokenizer files, and the sentencepiece models the engine needs
_CONFIG_FILES = frozenset({"config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json",
                           "vocab.json", "target_vocab.json", "added_tokens.json", "source.spm", "target.spm", "sentencepiece.bpe.model",
                           "spiece.model"})


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    blob_id: str  # git blob sha1 of the file (of its LFS pointer for large files)
    sha256: str = ""  # LFS files: sha256 of the content

    def matches(self, size: int, sha256: str, blob_sha1: str) -> bool:
        if size != self.size:
            return False
        return sha256 == self.sha256 if self.sha256 else blob_sha1 == self.blob_id


@dataclass(frozen=True)
class RepoSnapshot:
    """The repository at one commit, as the hub lists it."""

    endpoint: str
    repo: str
    commit: str
    files: dict[str, HubFile]

    def url(self, name: str) -> str:
        return f"{self.endpoint}/{self.repo}/resolve/{self.commit}/{urllib.parse.quote(name)}"


def hub_endpoint() -> str:
    """$HF_ENDPOINT, else the public hub."""
    return (os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).rstrip("/")


def _request(url: str, headers: dict[str, str] | None = None):
    req = urllib.request.Request(url, headers={"User-Agent": f"madoguchi/{__version__}", **(headers or {})})
    return urllib.request.urlopen(req, timeout=TIMEOUT_S)  # follows the hub's redirects to its file storage


def _unreachable(model_id: str, endpoint: str, err: Exception) -> HubUnreachableError:
    reason = getattr(err, "reason", None) or err
    return HubUnreachableError(f"{model_id}: cannot reach the model hub at {endpoint} ({reason}); fix: check the network, or set {ENDPOINT_ENV} "
                               f"to a reachable mirror, or bring the converted model on a USB stick: `madoguchi models import {model_id} FOLDER`", model_id)


def _get_json(url: str, model_id: str, endpoint: str, what: str) -> Any:
    try:
        with _request(url) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        raise _http_error(err, model_id, endpoint, what) from None
    except (urllib.error.URLError, OSError) as err:
        raise _unreachable(model_id, endpoint, err) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HubUnreachableError(f"{model_id}: {endpoint} did not answer like a model hub for {what} ({err}); fix: check {ENDPOINT_ENV}", model_id) from None


def _http_error(err: urllib.error.HTTPError, model_id: str, endpoint: str, what: str) -> ModelError:
    code = err.headers.get("X-Error-Code", "") if err.headers else ""
    if code == "RevisionNotFound":
        return HubRevisionError(f"{model_id}: {what}: the pinned commit does not exist upstream (HTTP {err.code}); "
                                "fix: check `revision` in models/manifest.toml against the repository's history", model_id)
    if err.code in (401, 403, 404):
        # the hub answers 401 for a repository that does not exist (or is private or gated)
        return HubFileMissingError(f"{model_id}: {what} is not on the hub (HTTP {err.code}{', ' + code if code else ''}); "
                                   "fix: check `repo`, `revision` and the file names in models/manifest.toml", model_id)
    if err.code >= 500:
        return _unreachable(model_id, endpoint, err)
    return HubUnreachableError(f"{model_id}: {endpoint} refused {what} (HTTP {err.code}); fix: check {ENDPOINT_ENV} and the network", model_id)


def repo_snapshot(repo: str, revision: str, model_id: str, endpoint: str | None = None) -> RepoSnapshot:
    """The repository's files at ``revision`` with their sizes and hashes; the hub must answer for that very commit."""
    endpoint = endpoint or hub_endpoint()
    url = f"{endpoint}/api/models/{repo}/revision/{revision}?blobs=true"
    info = _get_json(url, model_id, endpoint, f"{repo} at {revision[:12]}")
    commit = info.get("sha") if isinstance(info, dict) else None
    if commit != revision:
        raise HubRevisionError(f"{model_id}: asked the hub for {repo} at the pinned commit {revision[:12]}, it answered for {str(commit)[:12]}; "
                               f"fix: check {ENDPOINT_ENV} (a mirror must serve exact commits) and `revision` in models/manifest.toml", model_id)
    files = {}
    for sibling in info.get("siblings") or ():
        name = sibling.get("rfilename")
        lfs = sibling.get("lfs") or {}
        if not isinstance(name, str) or not isinstance(sibling.get("size"), int) or not (lfs.get("sha256") or sibling.get("blobId")):
            raise HubUnreachableError(f"{model_id}: the hub's file list of {repo} lacks sizes or hashes ({sibling!r}); fix: check {ENDPOINT_ENV}", model_id)
        size = lfs.get("size") if isinstance(lfs.get("size"), int) else sibling["size"]  # an LFS file's own size, not its pointer's
        files[name] = HubFile(name, int(size), str(sibling.get("blobId") or ""), str(lfs.get("sha256") or ""))
    return RepoSnapshot(endpoint, repo, commit, files)


def files_to_download(snapshot: RepoSnapshot, copy_files: tuple[str, ...], model_id: str) -> list[HubFile]:
    """Config, tokenizer and one set of weights (safetensors if there are any, else PyTorch); other formats (TF, Flax, Rust, ONNX) are skipped."""
    top = {name: f for name, f in snapshot.files.items() if "/" not in name}
    safetensors = [n for n in top if n.endswith(".safetensors") or n == "model.safetensors.index.json"]
    pytorch = [n for n in top if (n.startswith("pytorch_model") and n.endswith(".bin")) or n == "pytorch_model.bin.index.json"]
    weights = safetensors or pytorch
    for name in ("config.json", *copy_files):
        if name not in top:
            raise HubFileMissingError(f"{model_id}: {snapshot.repo} has no {name} at commit {snapshot.commit[:12]}; "
                                      "fix: check `repo`, `revision` and `copy_files` in models/manifest.toml", model_id, name)
    if not weights:
        raise HubFileMissingError(f"{model_id}: {snapshot.repo} has no PyTorch or safetensors weights at commit {snapshot.commit[:12]} "
                                  f"(files: {', '.join(sorted(top))}); fix: pick a repository with transformers weights", model_id)
    wanted = sorted({*weights, *copy_files, *(n for n in top if n in _CONFIG_FILES)})
    return [top[n] for n in wanted]


def _no_space(model_id: str, where: Path, need: int, what: str) -> NoSpaceError:
    free = shutil.disk_usage(where).free
    return NoSpaceError(f"{model_id}: not enough disk space in {where} for {what}: needs about {need / 1e9:.2f} GB, {free / 1e9:.2f} GB free; "
                        f"fix: free some space, or point MADOGUCHI_MODELS_DIR at a larger disk", model_id, where)


def check_space(model_id: str, where: Path, need: int, what: str) -> None:
    """Refuse before starting rather than fail half-way through gigabytes."""
    where.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(where).free < need:
        raise _no_space(model_id, where, need, what)


class _Hashes:
    """sha256 and the git blob sha1 (``blob <size>\\0`` + content) of a file, fed as it is written."""

    def __init__(self, size: int) -> None:
        self.sha256 = hashlib.sha256()
        self.blob = hashlib.sha1(f"blob {size}\0".encode())  # git's object id, not a security hash
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.blob.update(chunk)
        self.size += len(chunk)


def _hash_file(path: Path, expected_size: int, progress: Callable[[int], None] | None = None) -> _Hashes:
    hashes = _Hashes(expected_size)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            hashes.update(chunk)
            if progress:
                progress(len(chunk))
    return hashes


def download_file(snapshot: RepoSnapshot, f: HubFile, folder: Path, model_id: str, progress: bool = True) -> Path:
    """One repository file into ``folder``, resumed when a partial download is there, checked against the hub's hash."""
    path = folder / f.name
    if path.is_file() and path.stat().st_size == f.size:
        bar = Progress(f"check {snapshot.repo}/{f.name}", f.size, enabled=progress)
        try:
            got = _hash_file(path, f.size, bar.update)
        finally:
            bar.close()
        if f.matches(got.size, got.sha256.hexdigest(), got.blob.hexdigest()):
            return path
        log.warning("%s: the kept download %s does not match the hub's hash; downloading it again", model_id, path)
    path.unlink(missing_ok=True)
    partial = folder / f".{f.name}.partial"
    have = partial.stat().st_size if partial.is_file() else 0
    if have >= f.size:  # complete but never checked, or longer than it should be: start over
        partial.unlink()
        have = 0
    what = f"{snapshot.repo}/{f.name} at commit {snapshot.commit[:12]}"
    try:
        resp = _request(snapshot.url(f.name), {"Range": f"bytes={have}-"} if have else None)
    except urllib.error.HTTPError as err:
        raise _http_error(err, model_id, snapshot.endpoint, what) from None
    except OSError as err:  # URLError, refused, reset, timeout
        raise _unreachable(model_id, snapshot.endpoint, err) from None
    bar = Progress(f"download {snapshot.repo}/{f.name}", f.size, enabled=progress)
    try:
        with resp:
            resumed = bool(have) and resp.status == 206  # a server that ignores Range sends the whole file: start over
            hashes = _hash_file(partial, f.size) if resumed else _Hashes(f.size)
            bar.update(hashes.size)
            with partial.open("ab" if resumed else "wb") as out:
                while True:
                    try:
                        chunk = resp.read(CHUNK)
                    except (OSError, http.client.HTTPException) as err:  # the partial file stays: the next fetch resumes it
                        raise _unreachable(model_id, snapshot.endpoint, err) from None
                    if not chunk:
                        break
                    out.write(chunk)
                    hashes.update(chunk)
                    bar.update(len(chunk))
                out.flush()
                os.fsync(out.fileno())
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise _no_space(model_id, folder, f.size, what) from None
        raise
    finally:
        bar.close()
    if hashes.size < f.size:
        raise HubUnreachableError(f"{model_id}: the download of {what} stopped at {hashes.size} of {f.size} bytes; "
                                  f"fix: run `madoguchi models fetch {model_id}` again (it resumes)", model_id, partial)
    if not f.matches(hashes.size, hashes.sha256.hexdigest(), hashes.blob.hexdigest()):
        partial.unlink(missing_ok=True)
        want = f"sha256 {f.sha256[:12]}…" if f.sha256 else f"git blob {f.blob_id[:12]}…"
        raise HubChecksumError(f"{model_id}: {snapshot.repo}/{f.name} as downloaded does not match the pinned commit {snapshot.commit[:12]} "
                               f"({hashes.size} bytes, sha256 {hashes.sha256.hexdigest()[:12]}…; the hub lists {f.size} bytes, {want}); it was deleted. "
                               f"fix: fetch again; if it still differs, {snapshot.endpoint} serves other files than it lists", model_id, path)
    os.replace(partial, path)
    return path


def download_snapshot(store: ModelStore, entry: ModelEntry, source: Source, progress: bool = True) -> tuple[RepoSnapshot, Path]:
    """The files the converter needs, downloaded (or kept from an earlier run) and checked; returns the folder holding them."""
    if not source.revision:
        raise _unpinned(store.manifest.path, entry, source)
    snapshot = repo_snapshot(source.repo, source.revision, entry.id)
    wanted = files_to_download(snapshot, source.copy_files, entry.id)
    folder = store.root / CACHE_DIR / source.repo.replace("/", "--") / snapshot.commit
    folder.mkdir(parents=True, exist_ok=True)
    missing = sum(f.size for f in wanted if not (folder / f.name).is_file())
    check_space(entry.id, folder, missing + int(entry.size_mb * 1e6), f"{len(wanted)} files of {source.repo} and the converted model")
    log.info("%s: %s at %s: %s", entry.id, source.repo, snapshot.commit[:12], ", ".join(f.name for f in wanted))
    for f in wanted:
        download_file(snapshot, f, folder, entry.id, progress)
    return snapshot, folder


def _unpinned(manifest: Path, entry: ModelEntry, source: Source) -> HubUnpinnedError:
    hint = ""
    try:  # say which commit the hub has now: pinning it is one look at the repository away
        hint = f" The hub's main is at {repo_snapshot_head(source.repo, entry.id)}: if that is the release you checked, pin it."
    except ModelError:
        pass
    return HubUnpinnedError(f"{entry.id}: {manifest} pins no commit of {source.repo}, so what it would fetch is not known in advance; "
                            f"fix: set `revision` of its huggingface source to the full commit sha.{hint}", entry.id)


def repo_snapshot_head(repo: str, model_id: str) -> str:
    endpoint = hub_endpoint()
    info = _get_json(f"{endpoint}/api/models/{repo}/revision/main", model_id, endpoint, f"{repo} at main")
    return str(info.get("sha")) if isinstance(info, dict) else "?"


def _load_converter(model_id: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torch  # noqa: F401  - the converter's own import swallows a missing torch; say so here instead
            import transformers  # noqa: F401
            from ctranslate2.converters import TransformersConverter
    except ImportError as err:
        raise ConverterMissingError(f"{model_id}: converting a hub model needs transformers, torch and ctranslate2 ({err}); fix: {CONVERT_EXTRA}", model_id) from err
    return TransformersConverter


def _with_language_tokens(tokenizer: Any) -> Any:
    """transformers 5's M2M100 tokenizer keeps its ``__xx__`` language tokens out of ``get_vocab()``, which is all
    CTranslate2's M2M100 loader reads: the converted vocabulary would lack them and be 100 tokens short of the
    embeddings. Put them back at their ids (transformers 4 returned them itself)."""
    extra = getattr(tokenizer, "lang_token_to_id", None)
    if not isinstance(extra, dict) or not extra:
        return tokenizer
    base = tokenizer.get_vocab
    if all(token in base() for token in extra):
        return tokenizer
    tokenizer.get_vocab = lambda: {**base(), **extra}
    return tokenizer


def convert_snapshot(src: Path, out: Path, source: Source, model_id: str, progress: bool = True) -> Path:
    """CTranslate2's TransformersConverter on the downloaded files; ``out`` must not exist yet."""
    converter_class = _load_converter(model_id)

    def stage(text: str) -> None:
        log.info("%s: %s", model_id, text)
        if progress:
            sys.stderr.write(f"{model_id}: {text}\n")
            sys.stderr.flush()

    class Converter(converter_class):  # type: ignore[misc, valid-type]
        def load_model(self, model_class, path, **kwargs):
            stage(f"converting 1/3: reading the weights ({model_class.__name__})")
            return super().load_model(model_class, path, **kwargs)

        def load_tokenizer(self, tokenizer_class, path, **kwargs):
            return _with_language_tokens(super().load_tokenizer(tokenizer_class, path, **kwargs))

        def _load(self):
            spec = super()._load()
            stage(f"converting 2/3: quantizing to {source.quantization} and writing model.bin")
            return spec

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transformers' advice (sacremoses, deprecations) is no error of ours
            Converter(str(src), copy_files=list(source.copy_files)).convert(str(out), quantization=source.quantization)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise _no_space(model_id, out.parent, int(sum(p.stat().st_size for p in src.iterdir())), "the converted model") from None
        raise ConversionFailedError(f"{model_id}: converting {source.repo} failed: {err}; fix: check the files in {src}", model_id, src) from err
    except Exception as err:  # transformers and the converter raise anything (ValueError, KeyError, RuntimeError …)
        raise ConversionFailedError(f"{model_id}: converting {source.repo} to CTranslate2 {source.quantization} failed: "
                                    f"{type(err).__name__}: {err}; fix: check the transformers/ctranslate2 versions ({CONVERT_EXTRA})", model_id, src) from err
    stage("converting 3/3: done")
    return out


def _install(store: ModelStore, entry: ModelEntry, source: Source, out: Path, progress: bool) -> Path:
    """Keep exactly the manifest's files, check them against the lock (or record them), swap the folder in."""
    written = {p.name for p in out.iterdir()}
    missing = [n for n in entry.files if n not in written]
    if missing:
        raise ConversionFailedError(f"{entry.id}: the conversion of {source.repo} wrote {', '.join(sorted(written))} but not {', '.join(missing)}; "
                                    f"fix: correct `files` (or `copy_files`) of {entry.id} in models/manifest.toml", entry.id, out / missing[0])
    for name in written - set(entry.files):  # unlocked extras would be installed but never verified
        (out / name).unlink()
    files = {}
    for name in entry.files:
        (out / name).chmod(0o644)
        bar = Progress(f"hash {entry.id}/{name}", (out / name).stat().st_size, enabled=progress)
        try:
            files[name] = {"size": (out / name).stat().st_size, "sha256": file_sha256(out / name, bar.update)}
        finally:
            bar.close()
    if store.install_made(entry.id, out, files, f"of {source.repo}@{source.revision[:12]}", "transformers or ctranslate2"):
        log.warning("%s: first fetch, recorded sha256 of %d files in %s", entry.id, len(files), store.lock_path)
    return store.folder(entry.id)


def fetch_hub(store: ModelStore, entry: ModelEntry, source: Source, progress: bool = True) -> Path:
    """Download the pinned repository files, convert them to CTranslate2, verify or lock, install; returns the model folder."""
    if entry.engine != "ctranslate2-translator":
        raise ModelUnavailableError(f"{entry.id}: hub sources convert translation models only, not {entry.engine}; fix: correct models/manifest.toml", entry.id)
    _load_converter(entry.id)  # before gigabytes of download: say now if this machine cannot convert
    _, downloaded = download_snapshot(store, entry, source, progress)
    staged = store.scratch(f"convert-{entry.id}")
    try:
        check_space(entry.id, staged, int(entry.size_mb * 1e6), "the converted model")
        out = convert_snapshot(downloaded, staged / entry.id, source, entry.id, progress)
        return _install(store, entry, source, out, progress)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
