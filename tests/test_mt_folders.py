"""Bad translation-model folders: every one an error naming the file and the fix, never a crash;
and models taken from the store only after they verify against the lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from madoguchi.errors import MadoguchiError
from madoguchi.models.errors import ModelCorruptError, ModelError, ModelMissingError, ModelTruncatedError
from madoguchi.mt.engine import TranslationEngine
from madoguchi.mt.errors import MtModelUnsupportedError
from madoguchi.mt.router import MachineTranslation
from tests.mt_models import copy_model

# ---------------------------------------------------------------------------------------------
# bad model folders: an error naming the file and the fix, never a crash


def damage(folder: Path, how: str) -> Path:
    """Damage a model folder; returns the file that should be named."""
    if how == "missing model.bin":
        (folder / "model.bin").unlink()
        return folder / "model.bin"
    if how == "missing config.json":
        (folder / "config.json").unlink()
        return folder / "config.json"
    if how == "truncated model.bin":
        data = (folder / "model.bin").read_bytes()
        (folder / "model.bin").write_bytes(data[: len(data) // 2])
        return folder / "model.bin"
    if how == "empty model.bin":
        (folder / "model.bin").write_bytes(b"")
        return folder / "model.bin"
    if how == "garbage model.bin":
        size = (folder / "model.bin").stat().st_size
        (folder / "model.bin").write_bytes(bytes((i * 151 + 7) % 256 for i in range(size)))
        return folder / "model.bin"
    if how == "missing source.spm":
        (folder / "source.spm").unlink()
        return folder / "source.spm"
    if how == "garbage target.spm":
        (folder / "target.spm").write_bytes(b"\x00not a sentencepiece model" * 10)
        return folder / "target.spm"
    if how == "missing vocabulary":
        (folder / "shared_vocabulary.json").unlink()
        return folder / "shared_vocabulary.json"
    if how == "garbage vocabulary":
        (folder / "shared_vocabulary.json").write_text("[\"a\", ", encoding="utf-8")
        return folder / "shared_vocabulary.json"
    if how == "vocabulary of another model":
        vocab = json.loads((folder / "shared_vocabulary.json").read_text(encoding="utf-8"))
        (folder / "shared_vocabulary.json").write_text(json.dumps(vocab + ["extra"]), encoding="utf-8")
        return folder / "model.bin"
    if how == "garbage config.json":
        (folder / "config.json").write_text("{unk_token", encoding="utf-8")
        return folder / "config.json"
    raise AssertionError(how)


@pytest.mark.parametrize("how, error", [
    ("missing model.bin", ModelMissingError),
    ("missing config.json", ModelMissingError),
    ("truncated model.bin", ModelTruncatedError),
    ("empty model.bin", ModelTruncatedError),
    ("garbage model.bin", ModelCorruptError),
    ("missing source.spm", ModelMissingError),
    ("garbage target.spm", ModelCorruptError),
    ("missing vocabulary", ModelMissingError),
    ("garbage vocabulary", ModelCorruptError),
    ("vocabulary of another model", ModelCorruptError),
    ("garbage config.json", ModelCorruptError),
])
def test_bad_model_folder(toy, tmp_path: Path, how: str, error: type[ModelError]) -> None:
    folder = copy_model(toy, "opus-mt-ja-en", tmp_path)
    named = damage(folder, how)
    with pytest.raises(error) as info:
        MachineTranslation.from_folders({"opus-mt-ja-en": folder}, threads=1)
    message = str(info.value)
    assert str(named) in message and "madoguchi models import opus-mt-ja-en" in message, message
    assert info.value.code == error.code and info.value.model_id == "opus-mt-ja-en" and isinstance(info.value, (MadoguchiError, OSError))


def test_missing_folder_and_missing_tokenizer(toy, tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"model folder .*nowhere does not exist; fix: .*madoguchi models fetch m2m"):
        MachineTranslation.from_folders({"m2m": tmp_path / "nowhere"}, threads=1)
    folder = copy_model(toy, "m2m100-toy", tmp_path)
    (folder / "sentencepiece.bpe.model").unlink()
    with pytest.raises(ModelMissingError, match=r"has no tokenizer \(expected source.spm \+ target.spm .*sentencepiece.bpe.model .*spiece.model"):
        MachineTranslation.from_folders({"m2m": folder}, threads=1)


def test_unsupported_folders(toy, tmp_path: Path) -> None:
    folder = copy_model(toy, "opus-mt-ja-en", tmp_path)
    with pytest.raises(MtModelUnsupportedError, match="cannot tell the direction"):
        MachineTranslation.from_folders({"my-marian": folder}, threads=1)
    m2m = copy_model(toy, "m2m100-toy", tmp_path)
    vocab = json.loads((m2m / "shared_vocabulary.json").read_text(encoding="utf-8"))
    (m2m / "shared_vocabulary.json").write_text(json.dumps([t.replace("__", "@@") for t in vocab]), encoding="utf-8")
    with pytest.raises(MtModelUnsupportedError, match="no language tokens of M2M100 or NLLB-200"):
        MachineTranslation.from_folders({"m2m": m2m}, threads=1)


def test_a_failed_load_unloads_the_models_already_loaded(toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = []
    monkeypatch.setattr(TranslationEngine, "close", lambda self: closed.append(self.model_id))
    with pytest.raises(ModelMissingError):
        MachineTranslation.from_folders({"opus-mt-ja-en": toy["opus-mt-ja-en"], "gone": tmp_path / "gone"}, threads=1)
    assert closed == ["opus-mt-ja-en"]


def toy_store(toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model store and manifest holding the toy ja->en model as "opus-mt-ja-en", locked."""
    from madoguchi.models.store import ModelStore

    manifest = tmp_path / "manifest.toml"
    files = sorted(p.name for p in toy["opus-mt-ja-en"].iterdir())
    manifest.write_text(f"""schema = 1
[[models]]
id = "opus-mt-ja-en"
engine = "ctranslate2-translator"
task = "mt"
files = {json.dumps(files)}
licence = "Apache-2.0"
commercial = true
languages = ["ja", "en"]
size_mb = 1
[[models.sources]]
kind = "upstream"
url = "https://example.org/opus-mt-ja-en"
[[models]]
id = "whisper-toy"
engine = "whisper.cpp"
task = "asr"
files = ["ggml.bin"]
licence = "MIT"
commercial = true
languages = ["*"]
size_mb = 1
[[models.sources]]
kind = "upstream"
url = "https://example.org/whisper"
""", encoding="utf-8")
    monkeypatch.setenv("MADOGUCHI_MODEL_MANIFEST", str(manifest))
    root = tmp_path / "store"
    copy_model(toy, "opus-mt-ja-en", root)
    store = ModelStore.open(root, manifest)
    from madoguchi.models.store import file_sha256

    store.set_lock("opus-mt-ja-en", {n: {"size": (root / "opus-mt-ja-en" / n).stat().st_size, "sha256": file_sha256(root / "opus-mt-ja-en" / n)} for n in files})
    return root


def test_from_store_verifies_against_the_lock(toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = toy_store(toy, tmp_path, monkeypatch)
    mt = MachineTranslation.from_store(["opus-mt-ja-en"], threads=1, root=root)
    assert mt.translate("はい。", "ja", "en").text == "yes." and mt.model_ids == ("opus-mt-ja-en",)
    mt.close()
    weights = root / "opus-mt-ja-en" / "model.bin"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # a flipped bit in the weights: only the lock's sha256 can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelCorruptError, match=r"model.bin is corrupt \(sha256"):
        MachineTranslation.from_store(["opus-mt-ja-en"], threads=1, root=root)
    with pytest.raises(MtModelUnsupportedError, match="whisper-toy is a asr model, not a translation model"):
        MachineTranslation.from_store(["whisper-toy"], threads=1, root=root)
