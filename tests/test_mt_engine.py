"""The translation engine on real CTranslate2 models built here (tests/mt_models.py): hand-set
"lexical copy" transformers whose output is known word for word, for each model family.

No downloads; all models are built once per session in a few hundred milliseconds.
"""

from __future__ import annotations

import pytest

from madoguchi.mt.engine import MAX_OUTPUT_TOKENS, TranslationEngine, chunk_pieces
from madoguchi.mt.errors import MtClosedError, MtLanguageError, MtRouteError
from madoguchi.mt.families import DAY_ONE, M2M100, MADLAD, MARIAN, NLLB, marian_direction
from madoguchi.mt.router import Hop, MtResult
from madoguchi.mt.sentences import join_sentences, split_sentences
from tests.mt_models import CONCEPTS, LEXICON, MADLAD_TAGS, NLLB_TAGS, load, record, toy_corpus, toy_sentence

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
