"""The translation engine on real CTranslate2 models built here (tests/mt_models.py): hand-set
"lexical copy" transformers whose output is known word for word, for each model family.

No downloads; all models are built once per session in a few hundred milliseconds.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from madoguchi.errors import MadoguchiError
from madoguchi.models.errors import ModelCorruptError, ModelError, ModelMissingError, ModelTruncatedError
from madoguchi.mt.engine import MAX_OUTPUT_TOKENS, TranslationEngine, chunk_pieces
from madoguchi.mt.errors import MtClosedError, MtLanguageError, MtModelUnsupportedError, MtRouteError
from madoguchi.mt.families import DAY_ONE, M2M100, MADLAD, MARIAN, NLLB, marian_direction
from madoguchi.mt.router import Hop, MachineTranslation, MtResult
from madoguchi.mt.sentences import join_sentences, split_sentences
from madoguchi.mt.vmap import VMAP_FILE, VocabularyMap, build_vocabulary_map, read_vocabulary_map, restrict_batch, target_key
from tests.mt_models import (
    LEXICON,
    MADLAD_TAGS,
    NLLB_TAGS,
    build_m2m100,
    build_madlad,
    build_marian,
    build_nllb,
    language_words,
    toy_corpus,
    toy_sentence,
)

CONCEPTS = ["certificate", "please"]  # 住民票 ください。 / certificate please. / giấy xin. / certidão favor.


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mt-models")
    return {
        "opus-mt-ja-en": build_marian(root / "opus-mt-ja-en", "ja", "en"),
        "opus-mt-en-ja": build_marian(root / "opus-mt-en-ja", "en", "ja"),
        "opus-mt-en-vi": build_marian(root / "opus-mt-en-vi", "en", "vi", shared_vocabulary=False),
        "opus-mt-en-mul": build_marian(root / "opus-mt-en-mul", "en", ["ja", "vi", "pt"]),
        "m2m100-toy": build_m2m100(root / "m2m100-toy"),
        "nllb-toy": build_nllb(root / "nllb-toy"),
        "madlad-toy": build_madlad(root / "madlad-toy"),
    }


def load(toy: dict[str, Path], *ids: str, **options) -> MachineTranslation:
    return MachineTranslation.from_folders({i: toy[i] for i in ids}, threads=1, **options)


def copy_model(toy: dict[str, Path], model_id: str, root: Path) -> Path:
    return Path(shutil.copytree(toy[model_id], root / model_id))


class Recorder:
    """Stands in for the ctranslate2.Translator of an engine and records every call."""

    def __init__(self, inner) -> None:
        self.inner, self.calls = inner, []

    def translate_batch(self, source, target_prefix=None, **options):
        self.calls.append((source, target_prefix, options))
        return self.inner.translate_batch(source, target_prefix, **options)

    def unload_model(self) -> None:
        self.inner.unload_model()


def record(mt: MachineTranslation, model_id: str) -> Recorder:
    engine = next(e for e in mt._engines if e.model_id == model_id)
    engine._translator = Recorder(engine._translator)
    return engine._translator


# ---------------------------------------------------------------------------------------------
# translating


def test_marian_pair_translates_word_for_word(toy) -> None:
    mt = load(toy, "opus-mt-ja-en")
    result = mt.translate("住民票 ください。", "ja", "en")
    assert result == MtResult("certificate please.", ("ja", "en"), ("opus-mt-ja-en",), 5, 5)  # ▁ 住民票 ▁ ください 。
    assert mt.translate("名前 はい いいえ？", "ja", "en").text == "name yes no?"


def test_marian_with_separate_source_and_target_vocabularies(toy) -> None:
    assert {p.name for p in toy["opus-mt-en-vi"].iterdir()} >= {"source_vocabulary.json", "target_vocabulary.json"}
    assert load(toy, "opus-mt-en-vi").translate("certificate please.", "en", "vi").text == "giấy xin."


@pytest.mark.parametrize("model_id", ["m2m100-toy", "nllb-toy", "madlad-toy", "opus-mt-en-mul"])
def test_target_language_token_steers_multilingual_models(toy, model_id: str) -> None:
    mt = load(toy, model_id)
    source = "en" if model_id == "opus-mt-en-mul" else "ja"
    text = toy_sentence(source, CONCEPTS)
    for target in ("vi", "pt", "ja", "en"):
        if target != source and mt.can_translate(source, target):
            assert mt.translate(text, source, target).text == toy_sentence(target, CONCEPTS), target


@pytest.mark.parametrize("model_id, source, prefix", [
    ("m2m100-toy", ["__ja__", "▁", "住民票", "▁", "ください", "。", "</s>"], [["__vi__"]]),
    ("nllb-toy", ["jpn_Jpan", "▁", "住民票", "▁", "ください", "。", "</s>"], [["vie_Latn"]]),
    ("madlad-toy", ["<2vi>", "▁", "住民票", "▁", "ください", "。", "</s>"], None),
])
def test_each_family_gets_its_language_tokens(toy, model_id: str, source: list[str], prefix) -> None:
    mt = load(toy, model_id)
    recorder = record(mt, model_id)
    mt.translate("住民票 ください。", "ja", "vi")
    (batch, target_prefix, options), = recorder.calls
    assert batch == [source] and target_prefix == prefix
    assert options["beam_size"] == 1 and not options["use_vmap"]
    assert options["max_decoding_length"] == (1 if prefix else 0) + 2 * 5 + 16  # bounded by the input: 2 x 5 pieces + 16


def test_marian_multi_target_model_gets_the_target_tag_first(toy) -> None:
    mt = load(toy, "opus-mt-en-mul")
    recorder = record(mt, "opus-mt-en-mul")
    assert mt.translate("name?", "en", "pt").text == "nome?"
    assert recorder.calls[0][0] == [[">>por<<", "▁", "name", "?", "</s>"]] and recorder.calls[0][1] is None


def test_pivot_through_english_chains_two_pair_models(toy) -> None:
    mt = load(toy, "opus-mt-ja-en", "opus-mt-en-vi")
    assert mt.route("ja", "vi") == (Hop("ja", "en", "opus-mt-ja-en"), Hop("en", "vi", "opus-mt-en-vi"))
    result = mt.translate("住民票 ください。写真 必要？", "ja", "vi")
    assert result == MtResult("giấy xin. ảnh cần?", ("ja", "en", "vi"), ("opus-mt-ja-en", "opus-mt-en-vi"), 10, 10)
    assert not mt.can_translate("vi", "ja")


def test_dedicated_pair_preferred_multilingual_direct_before_pivot(toy) -> None:
    mt = load(toy, "m2m100-toy", "opus-mt-ja-en", "opus-mt-en-vi")  # the multilingual model listed first on purpose
    assert mt.route("ja", "en") == (Hop("ja", "en", "opus-mt-ja-en"),)
    assert mt.route("en", "vi") == (Hop("en", "vi", "opus-mt-en-vi"),)
    assert mt.route("ja", "vi") == (Hop("ja", "vi", "m2m100-toy"),)  # direct, not ja->en->vi
    assert mt.route("vi", "ja") == (Hop("vi", "ja", "m2m100-toy"),)
    assert mt.translate("giấy xin.", "vi", "ja").text == "住民票 ください。"


def test_no_route_names_the_pair_and_the_installed_models(toy) -> None:
    mt = load(toy, "opus-mt-ja-en", "opus-mt-en-vi")
    with pytest.raises(MtRouteError) as info:
        mt.translate("giấy", "vi", "ja")
    message = str(info.value)
    assert "vi->ja" in message and "opus-mt-ja-en: ja -> en" in message and "opus-mt-en-vi: en -> vi" in message
    assert info.value.code == "mt_no_route" and isinstance(info.value, LookupError)
    assert not mt.can_translate("ko", "ja") and mt.can_translate("ja", "vi")


def test_blank_input_and_same_language_do_not_run_a_model(toy) -> None:
    mt = load(toy, "opus-mt-ja-en", "opus-mt-en-vi")
    recorders = [record(mt, "opus-mt-ja-en"), record(mt, "opus-mt-en-vi")]
    assert mt.translate("", "ja", "vi") == MtResult("", ("ja", "en", "vi"), ("opus-mt-ja-en", "opus-mt-en-vi"), 0, 0)
    assert mt.translate("  \n\t ", "ja", "en").text == ""
    assert mt.translate("はい。", "ja", "ja") == MtResult("はい。", ("ja",), (), 0, 0)
    assert all(not r.calls for r in recorders)
    with pytest.raises(MtRouteError):
        mt.translate("", "vi", "ja")  # the route is still checked


def test_long_input_is_translated_sentence_by_sentence_in_one_batch(toy) -> None:
    mt = load(toy, "opus-mt-ja-en")
    recorder = record(mt, "opus-mt-ja-en")
    ja, en = toy_corpus("ja", 40, seed=3), toy_corpus("en", 40, seed=3)
    result = mt.translate("".join(ja), "ja", "en")
    assert result.text == " ".join(en)
    (batch, _, _), = recorder.calls
    assert len(batch) == 40 and all(source[-1] == "</s>" for source in batch)


def test_a_sentence_longer_than_the_model_is_cut_into_chunks(toy) -> None:
    mt = load(toy, "opus-mt-ja-en")  # its position table has 256 entries: 600 pieces in one go would not fit
    recorder = record(mt, "opus-mt-ja-en")
    words = [c for c in LEXICON if c not in ("full_stop", "question")] * 19  # 304 words, 608 pieces, no full stop
    result = mt.translate(toy_sentence("ja", words, "question"), "ja", "en")
    assert result.text == toy_sentence("en", words, "question")
    (batch, _, options), = recorder.calls
    assert len(batch) == 4 and max(map(len, batch)) <= 201 and options["max_decoding_length"] == MAX_OUTPUT_TOKENS
    assert result.input_tokens == result.output_tokens == 2 * len(words) + 1


def test_beam_search_gives_the_same_copy(toy) -> None:
    mt = load(toy, "opus-mt-ja-en", beam_size=3)
    recorder = record(mt, "opus-mt-ja-en")
    assert mt.translate("書類 印鑑 番号。", "ja", "en").text == "document seal number."
    assert recorder.calls[0][2]["beam_size"] == 3


def test_unknown_language_and_closed_model(toy) -> None:
    engine = TranslationEngine("m2m100-toy", toy["m2m100-toy"], threads=1)
    assert engine.sources == engine.targets == frozenset({"ja", "en", "vi", "pt"})
    with pytest.raises(MtLanguageError, match="m2m100-toy does not translate ja->ko"):
        engine.translate("はい", "ja", "ko")
    engine.close()
    with pytest.raises(MtClosedError):
        engine.translate("はい", "ja", "vi")
    mt = load(toy, "opus-mt-ja-en")
    mt.close()
    with pytest.raises(MtClosedError) as info:
        mt.translate("はい", "ja", "en")
    assert info.value.code == "mt_closed"


# ---------------------------------------------------------------------------------------------
# vocabulary maps


def with_vmap(toy, model_id: str, root: Path, vmap: VocabularyMap) -> Path:
    folder = copy_model(toy, model_id, root)
    vmap.write(folder / VMAP_FILE)
    return folder


COMMON = ("▁", ".", "?", "。", "？")


def test_per_target_map_restricts_only_its_language(toy, tmp_path: Path) -> None:
    vi_without_xin = tuple(w for w in language_words("vi") if w != "xin")
    folder = with_vmap(toy, "m2m100-toy", tmp_path, VocabularyMap(COMMON, {"vi": vi_without_xin, "pt": tuple(language_words("pt"))}))
    mt = MachineTranslation.from_folders({"m2m": folder}, threads=1)
    recorder = record(mt, "m2m")
    plain = load(toy, "m2m100-toy").translate("住民票 ください。", "ja", "vi").text
    assert plain == "giấy xin."
    restricted = mt.translate("住民票 ください。", "ja", "vi").text
    assert "xin" not in restricted and restricted.startswith("giấy ")
    assert mt.translate("住民票 ください。", "ja", "pt").text == "certidão favor."  # allowed everything it needs: unchanged
    assert mt.translate("住民票 ください。", "ja", "en").text == "certificate please."  # no line for English: unrestricted
    calls = recorder.calls
    assert [c[2]["use_vmap"] for c in calls] == [True, True, False]  # and no reset calls: see the next tests
    assert calls[0][0][0][-2:] == [target_key("vi")] * 2 and calls[0][2]["max_input_length"] == 7


def test_restricting_cuts_the_key_off_before_the_encoder(toy, tmp_path: Path) -> None:
    """The key tokens reach the vocabulary map but not the encoder: attention on them is exactly 0 (CTranslate2 pads
    the attention of truncated positions with 0; an encoded position gets a small softmax weight)."""
    folder = with_vmap(toy, "m2m100-toy", tmp_path, VocabularyMap(COMMON, {"vi": tuple(language_words("vi"))}))
    engine = TranslationEngine("m2m", folder, threads=1)
    source = ["__ja__", "▁", "住民票", "▁", "ください", "。", "</s>"]
    batch, max_input_length = restrict_batch([source], "vi")
    result = engine._translator.translate_batch(batch, [["__vi__"]], use_vmap=True, max_input_length=max_input_length, return_attention=True)[0]
    assert result.hypotheses[0] == ["__vi__", "▁", "giấy", "▁", "xin", "."]
    for row in result.attention[0]:
        assert len(row) == len(source) + 2 and row[-2:] == [0.0, 0.0]
    unrestricted = engine._translator.translate_batch([source + [target_key("vi")] * 2], [["__vi__"]], return_attention=True)[0]
    assert all(row[-1] > 0.0 for row in unrestricted.attention[0])  # the check above can fail


RESET = [["<unk>"]]


@pytest.mark.parametrize("stray_tag, resets", [(False, 0), (True, 3)])
def test_switching_between_restricted_languages(toy, tmp_path: Path, stray_tag: bool, resets: int) -> None:
    """CTranslate2 keeps a stale id table from one restricted vocabulary to the next. With one line per language the
    table stays right; a prefix tag in another language's line (here __pt__ in Vietnamese's) makes the engine reset it."""
    lines = {lang: tuple(language_words(lang)) for lang in ("vi", "pt")}
    if stray_tag:
        lines["vi"] += ("__pt__",)
    folder = with_vmap(toy, "m2m100-toy", tmp_path, VocabularyMap(COMMON, lines))
    mt = MachineTranslation.from_folders({"m2m": folder}, threads=1)
    recorder = record(mt, "m2m")
    text = toy_sentence("en", CONCEPTS)
    for target in ("vi", "pt", "vi", "ja", "pt", "pt", "vi"):
        assert mt.translate(text, "en", target).text == toy_sentence(target, CONCEPTS), target
    assert sum(c[0] == RESET for c in recorder.calls) == resets  # vi>pt>vi, ja (unrestricted: clears it), pt, pt>vi


def test_lexical_map_with_a_target_prefix_resets_between_calls(toy, tmp_path: Path) -> None:
    rules = {LEXICON[c]["ja"]: (LEXICON[c]["vi"],) for c in LEXICON}
    folder = with_vmap(toy, "m2m100-toy", tmp_path, VocabularyMap(("▁",), {}, rules))
    mt = MachineTranslation.from_folders({"m2m": folder}, threads=1)
    recorder = record(mt, "m2m")
    assert mt.translate("住民票 ください。", "ja", "vi").text == "giấy xin."
    assert mt.translate("写真 名前 番号 住民票。", "ja", "vi").text == "ảnh tên số giấy."  # more candidates: __vi__ moved
    assert [c[0] == RESET for c in recorder.calls] == [False, True, False]


def test_lexical_map_keyed_by_source_tokens(toy, tmp_path: Path) -> None:
    rules = {LEXICON[c]["ja"]: (LEXICON[c]["en"],) for c in LEXICON if c != "name"}
    folder = with_vmap(toy, "opus-mt-ja-en", tmp_path, VocabularyMap(("▁",), {}, rules))
    mt = MachineTranslation.from_folders({"opus-mt-ja-en": folder}, threads=1)
    assert mt.translate("住民票 ください。", "ja", "en").text == "certificate please."
    assert load(toy, "opus-mt-ja-en").translate("名前 はい。", "ja", "en").text == "name yes."
    assert "name" not in mt.translate("名前 はい。", "ja", "en").text  # (the copy model, refused its word, ends the sentence)
    assert mt.translate("写真 はい。", "ja", "en").text == "photo yes."  # a lexical map changes per call: reset in between


def test_build_vocabulary_map_from_samples(toy, tmp_path: Path) -> None:
    engine = TranslationEngine("m2m100-toy", toy["m2m100-toy"], threads=1)
    vocab = engine.layout.target_vocabulary
    samples = {lang: toy_corpus(lang, 50, seed=11) for lang in ("vi", "ja")}
    vmap = build_vocabulary_map(vocab, engine.tokenizer.encode_target, samples)
    assert set(vmap.always) >= {"</s>", "<unk>", "▁", ".", "?", "。"} and "giấy" not in vmap.always
    seen_vi = {w for line in samples["vi"] for w in line.replace(".", " ").replace("?", " ").split()}
    assert seen_vi <= set(vmap.by_target["vi"]) and not set(language_words("ja")) & set(vmap.by_target["vi"])
    assert set(vmap.by_target["ja"]) & set(language_words("ja")) and "giấy" not in vmap.by_target["ja"]
    capped = build_vocabulary_map(vocab, engine.tokenizer.encode_target, samples, max_tokens=len(vmap.always) + 3)
    assert len(capped.by_target["vi"]) == 3
    path = vmap.write(tmp_path / VMAP_FILE)
    again = read_vocabulary_map(path)
    assert again.always == vmap.always and dict(again.by_target) == dict(vmap.by_target)


def test_vmap_command_writes_a_map_the_engine_uses(toy, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from madoguchi.mt.vmap import main

    folder = copy_model(toy, "m2m100-toy", tmp_path)
    samples = {}
    for lang in ("vi", "ja"):
        samples[lang] = tmp_path / f"{lang}.txt"
        samples[lang].write_text("\n".join(toy_corpus(lang, 30, seed=5)), encoding="utf-8")
    assert main([str(folder), *(f"{lang}={path}" for lang, path in samples.items())]) == 0
    assert "wrote" in capsys.readouterr().out
    engine = TranslationEngine("m2m", folder, threads=1)
    assert set(engine.layout.vocabulary_map.by_target) == {"vi", "ja"}
    assert engine.translate("certificate please.", "en", "vi").text == "giấy xin."
    assert main([str(tmp_path / "missing"), f"vi={samples['vi']}"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_broken_vocabulary_map_is_ignored_with_an_error(toy, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = copy_model(toy, "m2m100-toy", tmp_path)
    (folder / VMAP_FILE).write_text("no tab on this line\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        mt = MachineTranslation.from_folders({"m2m": folder}, threads=1)
    assert "vmap.txt:1" in caplog.text
    assert mt.translate("住民票 ください。", "ja", "vi").text == "giấy xin."


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


# ---------------------------------------------------------------------------------------------
# tables and text handling


def test_language_tokens_of_each_family_for_the_day_one_languages() -> None:
    everything = {t for f in (M2M100, NLLB, MADLAD, MARIAN) for cands in f.language_tokens.values() for t in cands}
    for lang in DAY_ONE:
        assert M2M100.language_token(lang, everything) == f"__{lang}__"
        assert MADLAD.language_token(lang, everything) == f"<2{lang}>"
    expected_nllb = {"ja": "jpn_Jpan", "en": "eng_Latn", "zh": "zho_Hans", "ko": "kor_Hang", "vi": "vie_Latn", "pt": "por_Latn",
                     "es": "spa_Latn", "tl": "tgl_Latn", "ne": "npi_Deva", "id": "ind_Latn", "th": "tha_Thai", "my": "mya_Mymr"}
    assert {lang: NLLB.language_token(lang, everything) for lang in DAY_ONE} == expected_nllb
    assert NLLB_TAGS.items() <= expected_nllb.items()
    assert MADLAD.language_token("tl", {"<2fil>", "<2en>"}) == "<2fil>" and MADLAD_TAGS["vi"] == "<2vi>"
    assert MARIAN.language_token("zh", {">>zho<<", ">>cmn_Hans<<"}) == ">>cmn_Hans<<"
    assert MARIAN.language_token("ne", {">>nep<<"}) == ">>nep<<" and MARIAN.language_token("ko", {">>jpn<<"}) is None
    assert marian_direction("opus-mt-ja-en") == ("ja", "en") and marian_direction("opus-mt-tc-big-en-mul") == ("en", "mul")
    assert marian_direction("m2m100-418m") is None


@pytest.mark.parametrize("text, sentences", [
    ("はい。住民票をください！ありがとう", ["はい。", "住民票をください！", "ありがとう"]),
    ("It costs 3.5 yen. Is v1.2 OK? Yes!", ["It costs 3.5 yen.", "Is v1.2 OK?", "Yes!"]),
    ("「はい。」と言いました。", ["「はい。」", "と言いました。"]),
    ("สวัสดีครับ ขอบคุณครับ", ["สวัสดีครับ ขอบคุณครับ"]),
    ("नमस्ते। धन्यवाद।", ["नमस्ते।", "धन्यवाद।"]),
    ("မင်္ဂလာပါ။ ကျေးဇူးပါ။", ["မင်္ဂလာပါ။", "ကျေးဇူးပါ။"]),
    ("   ", []),
])
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


def test_join_sentences_and_chunks() -> None:
    assert join_sentences(["はい。", "どうぞ。"], "ja") == "はい。どうぞ。"
    assert join_sentences(["Yes.", " ", "Go."], "en") == "Yes. Go."
    pieces = ["▁a", "b", "c", "▁d", "e", "▁f", "g", "h", "i", "j"]
    assert chunk_pieces(pieces, 4) == [["▁a", "b", "c"], ["▁d", "e", "▁f", "g"], ["h", "i", "j"]]
    assert chunk_pieces(["x"] * 9, 4) == [["x"] * 4, ["x"] * 4, ["x"]]
    assert chunk_pieces([], 4) == []
