"""Per-target vocabulary maps on the hand-built CTranslate2 models (tests/mt_models.py): what a
restricted model may write, how the restriction key stays out of the encoder, and the vmap tool."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from madoguchi.mt.engine import TranslationEngine
from madoguchi.mt.router import MachineTranslation
from madoguchi.mt.vmap import VMAP_FILE, VocabularyMap, build_vocabulary_map, read_vocabulary_map, restrict_batch, target_key
from tests.mt_models import CONCEPTS, LEXICON, copy_model, language_words, load, record, toy_corpus, toy_sentence

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
