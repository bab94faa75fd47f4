"""Phrasebook first, then glossary-protected MT, sentence by sentence: on a real (toy) CTranslate2 model.

The model is tests/mt_models.py's hand-built copy transformer in M2M100 form: it translates its
toy lexicon word for word, so every expected output is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from madoguchi.interpreter.translation import UNTRANSLATED_MARK, TranslationStage
from madoguchi.mt.glossary import Glossary
from madoguchi.mt.phrasebook import Phrasebook
from madoguchi.mt.router import MachineTranslation
from tests.mt_models import toy_sentence


@pytest.fixture(scope="module")
def stage(toy: dict[str, Path]) -> TranslationStage:
    mt = MachineTranslation.from_folders({"m2m100-toy": toy["m2m100-toy"]}, threads=1)
    yield TranslationStage(Phrasebook.load(), Glossary.load(), mt)
    mt.close()


def test_a_counter_phrase_comes_from_the_phrasebook(stage: TranslationStage) -> None:
    result = stage.translate("少々お待ちください。", "ja", "en")
    assert result.method == "phrasebook" and result.needs_review  # curated, not yet checked by a native speaker
    assert "moment" in result.text.lower()


def test_phrases_joined_by_a_comma_come_from_the_phrasebook(stage: TranslationStage) -> None:
    """A turn heard whole: Whisper writes "Hello, I need …" as one sentence of two curated phrases."""
    result = stage.translate("Hello, I need to register my new address.", "en", "ja")
    assert result.method == "phrasebook" and result.text == "こんにちは、新しい住所を登録したいです。"
    clerk = stage.translate("こんにちは、ご用件をどうぞ。", "ja", "en")
    assert clerk.method == "phrasebook" and clerk.text.startswith("Hello, how can I")  # a clause starts small, "I" stays
    # One clause no phrase knows: the sentence goes to the model whole, not half from the phrasebook.
    mixed = stage.translate("ありがとうございます、" + toy_sentence("ja", ["photo", "need"]), "ja", "en")
    assert mixed.method == "mt"


def test_other_sentences_go_to_the_model(stage: TranslationStage) -> None:
    result = stage.translate(toy_sentence("ja", ["name", "need"]), "ja", "vi")
    assert result.method == "mt" and result.text == toy_sentence("vi", ["name", "need"])
    assert result.route == ("ja", "vi") and result.untranslated == 0


def test_phrase_and_model_sentences_mix_in_order(stage: TranslationStage) -> None:
    text = "ありがとうございます。" + toy_sentence("ja", ["photo", "need"])
    result = stage.translate(text, "ja", "en")
    assert result.method == "mixed"
    assert result.text.startswith("Thank you") and result.text.endswith(toy_sentence("en", ["photo", "need"]))


def test_glossary_term_reaches_the_reader_even_when_the_model_mangles_its_placeholder(stage: TranslationStage) -> None:
    """住民票 is a site term: the reader sees the site's translation, never a placeholder."""
    result = stage.translate(toy_sentence("ja", ["certificate", "need"]), "ja", "en")
    assert result.method == "mt"
    assert "residence certificate" in result.text.lower() and "QZ" not in result.text.upper()
    assert result.glossary_terms and "residence certificate" in result.glossary_terms[0].lower()


def test_a_term_whisper_wrote_as_a_homophone_is_the_sites_term_on_screen_and_in_translation(stage: TranslationStage) -> None:
    """Whisper wrote 住民表 for the 住民票 it heard: shown and translated as the glossary's term."""
    heard = toy_sentence("ja", ["certificate", "need"]).replace("住民票", "住民表")
    written = stage.as_the_site_writes(heard, "ja")
    assert written == toy_sentence("ja", ["certificate", "need"])
    assert "residence certificate" in stage.translate(written, "ja", "en").text.lower()
    assert "residence certificate" not in stage.translate(heard, "ja", "en").text.lower()  # as heard, MT has no term to hold
    assert stage.as_the_site_writes("Juminhyo please.", "en") == "Juminhyo please."  # only Japanese has a reader


def test_no_model_for_the_pair_keeps_what_the_phrasebook_knows(stage: TranslationStage) -> None:
    result = stage.translate("ありがとうございます。" + toy_sentence("ja", ["photo"]), "ja", "th")  # the toy model has no Thai
    assert result.method == "phrasebook" and result.untranslated == 1
    assert result.text.startswith("ขอบคุณ") and result.text.endswith(UNTRANSLATED_MARK)
    nothing = stage.translate(toy_sentence("ja", ["photo"]), "ja", "th")
    assert nothing.text is None and nothing.method == "unavailable"


def test_same_language_is_passed_through(stage: TranslationStage) -> None:
    result = stage.translate("こんにちは", "ja", "ja")
    assert result.text == "こんにちは" and result.method == "same_language"


def test_from_settings_survives_a_bad_pushed_glossary(tmp_path: Path) -> None:
    from madoguchi.config import settings_from_layers

    (tmp_path / "glossaries").mkdir()
    (tmp_path / "glossaries" / "site.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "phrasebooks").mkdir()
    (tmp_path / "phrasebooks" / "site.json").write_text('{"name": "site", "entries": [{"ja": "番号札をお取りください", "en": "Please take a number ticket."}]}', encoding="utf-8")
    settings = settings_from_layers([("test", {"paths": {"state_dir": str(tmp_path)}})])
    stage = TranslationStage.from_settings(settings)
    assert stage.mt is None  # [mt] models = []: phrasebook and glossary only
    assert stage.translate("番号札をお取りください。", "ja", "en").text == "Please take a number ticket."
