"""`madoguchi models fetch` of translation models from a Hugging Face hub: download at a pinned commit,
convert with CTranslate2's TransformersConverter (real transformers and torch), verify, lock, translate.

No real model can be downloaded here, so tests/hf_mirror.py makes tiny random models in the real
repository layouts with transformers and serves them on 127.0.0.1 the way the hub does;
$HF_ENDPOINT points the fetch at it. The failures: licence, hub down, a file missing upstream,
a revision mismatch, a corrupted download, a conversion that fails, no disk space.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from madoguchi.models import hub
from madoguchi.models.cli import models_fetch, models_verify
from madoguchi.models.ct2 import read_ct2_model
from madoguchi.models.errors import (
    ConversionFailedError,
    HubChecksumError,
    HubFileMissingError,
    HubRevisionError,
    HubUnpinnedError,
    HubUnreachableError,
    ManifestError,
    ModelUnlicensedError,
    NoSpaceError,
)
from madoguchi.models.manifest import load_manifest, parse_manifest, read_lock
from madoguchi.mt.router import MachineTranslation, MtResult
from tests.hf_mirror import TINY_M2M100, TINY_MADLAD, TINY_MARIAN, TINY_NLLB, HubMirror, tiny_repos

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "models" / "manifest.toml"
REPOS = {"opus-mt-ja-en": TINY_MARIAN, "m2m100-418m": TINY_M2M100, "nllb-200-distilled-600m": TINY_NLLB, "madlad400-3b-mt": TINY_MADLAD}
SENTENCE = "住民票をください。"


@pytest.fixture(scope="session")
def repos() -> dict[str, Path]:
    return tiny_repos()


@pytest.fixture()
def mirror(repos: dict[str, Path]) -> Iterator[HubMirror]:
    served = HubMirror({})
    for repo, folder in repos.items():
        served.add(repo, folder)
    served.start()
    yield served
    served.stop()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def write_manifest(path: Path, mirror: HubMirror, *, revisions: dict[str, str] | None = None, repos: dict[str, str] | None = None) -> Path:
    """The repository's MT entries, their hub sources pointed at the mirror's tiny repositories and pinned to its commits."""
    doc = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))
    lines = ["schema = 1", ""]
    for entry in doc["models"]:
        if entry["id"] not in REPOS:
            continue
        lines.append("[[models]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items() if k != "sources"]
        for source in entry["sources"]:
            if source["kind"] == "huggingface":
                repo = (repos or {}).get(entry["id"], REPOS[entry["id"]])
                source = {**source, "repo": repo, "revision": (revisions or {}).get(entry["id"], mirror.repos[repo].commit if repo in mirror.repos else "")}
                source = {k: v for k, v in source.items() if v != ""}
            lines.append("[[models.sources]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in source.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture()
def where(tmp_path: Path, mirror: HubMirror, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("HF_ENDPOINT", mirror.endpoint)
    return {"models_dir": tmp_path / "store", "manifest": write_manifest(tmp_path / "manifest.toml", mirror), "lock": tmp_path / "manifest.lock"}


def fetch(where: dict[str, Path], model_id: str, accept_licence: bool = False) -> str:
    out = io.StringIO()
    models_fetch([model_id], accept_licence, out, progress=False, **where)
    return out.getvalue()


def leftovers(store: Path) -> list[str]:
    """What a failed fetch left in the store besides the download cache: model folders and temp folders."""
    return sorted(p.name for p in store.iterdir() if p.name != hub.CACHE_DIR) if store.exists() else []


def assert_int8(folder: Path) -> None:
    model = read_ct2_model(folder / "model.bin")
    linear = {name: kind for name, kind in model.dtypes.items() if name.endswith("/weight") and ("linear" in name or "projection" in name)}
    assert linear and set(linear.values()) == {"int8"}, linear
    assert all(model.dtypes[f"{name}_scale"] == "float32" for name in linear)


def test_repository_manifest_pins_hub_sources() -> None:
    manifest = load_manifest(MANIFEST)
    for model_id in REPOS:
        source = next(s for s in manifest.get(model_id).sources if s.kind == "huggingface")
        assert source.quantization == "int8" and set(source.copy_files) <= set(manifest.get(model_id).files)
        assert manifest.get(model_id).fetchable == bool(source.revision)
    assert manifest.get("m2m100-418m").sources[0].revision == "55c2e61bbf05dfb8d7abccdc3fae6fc8512fd636"


@pytest.mark.parametrize("change, words", [
    ({"revision": "main"}, ["sources #1", "'revision'", "40 lowercase hex digits"]),
    ({"repo": "m2m100_418M"}, ["sources #1", "'repo'", "owner/name"]),
    ({"copy_files": ["spiece.model"]}, ["sources #1", "'copy_files'", "spiece.model"]),
    ({"quantization": "q8_0"}, ["sources #1", "'quantization'", "int8"]),
])
def test_hub_source_errors_name_entry_and_key(change: dict, words: list[str]) -> None:
    source = {"kind": "huggingface", "repo": "facebook/m2m100_418M", "revision": "a" * 40, "copy_files": ["sentencepiece.bpe.model"], "quantization": "int8", **change}
    doc = {"schema": 1, "models": [{"id": "m", "engine": "ctranslate2-translator", "task": "mt", "files": ["model.bin", "sentencepiece.bpe.model"],
                                    "licence": "MIT", "commercial": True, "languages": ["*"], "size_mb": 1, "sources": [source]}]}
    with pytest.raises(ManifestError) as err:
        parse_manifest(doc, Path("manifest.toml"))
    for word in ["manifest.toml", "id='m'", *words]:
        assert word in str(err.value)


@pytest.mark.parametrize("model_id, source, target", [
    ("opus-mt-ja-en", "ja", "en"),
    ("m2m100-418m", "ja", "vi"),
    ("nllb-200-distilled-600m", "ja", "en"),
    ("madlad400-3b-mt", "ja", "en"),
])
def test_fetch_converts_verifies_locks_and_translates(where: dict[str, Path], mirror: HubMirror, model_id: str, source: str, target: str) -> None:
    entry = load_manifest(where["manifest"]).get(model_id)
    assert f"{model_id}: ok" in fetch(where, model_id, accept_licence=True)
    folder = where["models_dir"] / model_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(entry.files)  # exactly what the lock covers
    assert sorted(read_lock(where["lock"])[model_id]) == sorted(entry.files)
    assert_int8(folder)
    downloaded = {p.rsplit("/", 1)[-1] for p in mirror.paths(f"/{REPOS[model_id]}/resolve/")}
    assert "model.safetensors" in downloaded and not {"README.md", ".gitattributes"} & downloaded
    assert leftovers(where["models_dir"]) == [model_id]

    mt = MachineTranslation.from_folders({model_id: folder}, threads=1)
    try:
        result = mt.translate(SENTENCE, source, target)  # random weights: garbage, but from the converted model
    finally:
        mt.close()
    assert isinstance(result, MtResult) and isinstance(result.text, str)
    assert result.model_ids == (model_id,) and result.input_tokens > 0

    # the lock is enforced after: a second conversion from the kept downloads must give the same bytes
    before = len(mirror.requests)
    assert f"{model_id}: ok" in fetch(where, model_id, accept_licence=True)
    assert len(mirror.requests) == before  # present and verified: nothing asked
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    assert f"{model_id}: ok" in fetch(where, model_id, accept_licence=True)
    assert not [p for p in mirror.paths()[before:] if "/resolve/" in p or p.startswith("/lfs/")]  # kept downloads, re-checked, not re-fetched
    models_verify([model_id], io.StringIO(), **where)


def test_cli_subprocess_shows_progress(where: dict[str, Path], mirror: HubMirror) -> None:
    env = {**os.environ, "HF_ENDPOINT": mirror.endpoint, "MADOGUCHI_MODELS_DIR": str(where["models_dir"]),
           "MADOGUCHI_MODEL_MANIFEST": str(where["manifest"])}
    done = subprocess.run([sys.executable, "-m", "madoguchi", "models", "fetch", "m2m100-418m"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "m2m100-418m: ok" in done.stdout
    assert f"download {TINY_M2M100}/model.safetensors" in done.stderr and "converting 1/3" in done.stderr and "converting 2/3: quantizing to int8" in done.stderr
    assert "m2m100-418m" in read_lock(where["manifest"].with_suffix(".lock"))


def test_without_the_convert_extra_it_says_what_to_install(where: dict[str, Path], mirror: HubMirror) -> None:
    """A fresh interpreter in which transformers and torch cannot be imported, as on a machine without the extra."""
    block = ("import sys, runpy; [sys.modules.__setitem__(m, None) for m in ('transformers', 'torch')]; "
             "sys.argv[0] = 'madoguchi'; runpy.run_module('madoguchi', run_name='__main__')")
    env = {**os.environ, "HF_ENDPOINT": mirror.endpoint, "MADOGUCHI_MODELS_DIR": str(where["models_dir"]),
           "MADOGUCHI_MODEL_MANIFEST": str(where["manifest"])}
    done = subprocess.run([sys.executable, "-c", block, "models", "fetch", "m2m100-418m"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "pip install 'madoguchi[convert]'" in done.stderr
    assert mirror.requests == [] and leftovers(where["models_dir"]) == []  # said before downloading anything


def test_nllb_is_refused_without_accept_licence(where: dict[str, Path], mirror: HubMirror) -> None:
    with pytest.raises(ModelUnlicensedError) as err:
        fetch(where, "nllb-200-distilled-600m")
    assert "CC-BY-NC-4.0" in str(err.value) and "--accept-licence" in str(err.value)
    assert mirror.requests == [] and leftovers(where["models_dir"]) == []


def one_line_error(where: dict[str, Path], model_id: str, error: type[Exception]) -> str:
    with pytest.raises(error) as err:
        fetch(where, model_id, accept_licence=True)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{model_id}: ") and "fix: " in message
    assert leftovers(where["models_dir"]) == []  # no model folder, no half-written temp folder
    return message


def test_hub_down_is_a_clear_error(where: dict[str, Path], mirror: HubMirror) -> None:
    mirror.stop()
    message = one_line_error(where, "opus-mt-ja-en", HubUnreachableError)
    assert f"cannot reach the model hub at {mirror.endpoint}" in message and "HF_ENDPOINT" in message


def test_file_missing_upstream(where: dict[str, Path], mirror: HubMirror) -> None:
    mirror.missing.add((TINY_MARIAN, "source.spm"))
    message = one_line_error(where, "opus-mt-ja-en", HubFileMissingError)
    assert f"{TINY_MARIAN}/source.spm" in message and "HTTP 404" in message


def test_revision_mismatch(tmp_path: Path, where: dict[str, Path], mirror: HubMirror) -> None:
    write_manifest(where["manifest"], mirror, revisions={"opus-mt-ja-en": "0" * 40})  # a commit the repository does not have
    message = one_line_error(where, "opus-mt-ja-en", HubRevisionError)
    assert "the pinned commit does not exist upstream" in message
    write_manifest(where["manifest"], mirror)
    mirror.answer_commit[TINY_MARIAN] = "f" * 40  # a mirror that answers for another commit
    message = one_line_error(where, "opus-mt-ja-en", HubRevisionError)
    assert "it answered for ffffffffffff" in message


def test_unpinned_revision_is_refused_with_the_current_commit(where: dict[str, Path], mirror: HubMirror) -> None:
    write_manifest(where["manifest"], mirror, revisions={"opus-mt-ja-en": ""})
    message = one_line_error(where, "opus-mt-ja-en", HubUnpinnedError)
    assert f"main is at {mirror.repos[TINY_MARIAN].commit}" in message
    assert not mirror.paths(f"/{TINY_MARIAN}/resolve/")


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer_config.json"])  # an LFS file (sha256) and a plain one (git blob id)
def test_corrupted_download_is_refused_and_deleted(where: dict[str, Path], mirror: HubMirror, name: str) -> None:
    mirror.corrupt.add((TINY_MARIAN, name))
    message = one_line_error(where, "opus-mt-ja-en", HubChecksumError)
    assert f"{TINY_MARIAN}/{name} as downloaded does not match the pinned commit" in message
    cache = where["models_dir"] / hub.CACHE_DIR
    assert not [p for p in cache.rglob("*") if p.name in (name, f".{name}.partial")]


def test_interrupted_download_resumes(where: dict[str, Path], mirror: HubMirror, repos: dict[str, Path]) -> None:
    commit = mirror.repos[TINY_MARIAN].commit
    cache = where["models_dir"] / hub.CACHE_DIR / TINY_MARIAN.replace("/", "--") / commit
    cache.mkdir(parents=True)
    weights = (repos[TINY_MARIAN] / "model.safetensors").read_bytes()
    (cache / ".model.safetensors.partial").write_bytes(weights[: len(weights) // 3])
    assert "opus-mt-ja-en: ok" in fetch(where, "opus-mt-ja-en")
    assert ("GET", f"/lfs/{TINY_MARIAN}/{mirror.repos[TINY_MARIAN].files['model.safetensors'].sha256}", f"bytes={len(weights) // 3}-") in mirror.requests
    assert (cache / "model.safetensors").read_bytes() == weights


def test_conversion_failure_is_a_clear_error(tmp_path: Path, where: dict[str, Path], mirror: HubMirror, repos: dict[str, Path]) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for p in repos[TINY_MARIAN].iterdir():
        (broken / p.name).write_bytes(p.read_bytes())
    (broken / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTModel"]}))  # an architecture CTranslate2 cannot convert
    mirror.add("tiny-hub/broken-opus-mt-ja-en", broken)
    write_manifest(where["manifest"], mirror, repos={"opus-mt-ja-en": "tiny-hub/broken-opus-mt-ja-en"})
    message = one_line_error(where, "opus-mt-ja-en", ConversionFailedError)
    assert "converting tiny-hub/broken-opus-mt-ja-en to CTranslate2 int8 failed" in message and "ViTConfig" in message


def test_no_space_is_refused_before_downloading(where: dict[str, Path], mirror: HubMirror, monkeypatch: pytest.MonkeyPatch) -> None:
    real = hub.shutil.disk_usage
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: real(path)._replace(free=1_000_000))  # a nearly full disk
    message = one_line_error(where, "opus-mt-ja-en", NoSpaceError)
    assert "not enough disk space" in message and "0.00 GB free" in message
    assert not mirror.paths(f"/{TINY_MARIAN}/resolve/")
