"""Rejection of what is not speech text, and the encoder-window policy: pure functions, synthetic inputs."""

from __future__ import annotations

import pytest

from madoguchi.asr.filters import (
    RejectionThresholds,
    compression_ratio,
    is_known_hallucination,
    normalize,
    rejection_reason,
    repeated_run,
)
from madoguchi.asr.window import FULL_FRAMES, WindowPolicy

CLEAR = dict(avg_logprob=-0.3, no_speech_prob=0.05)


@pytest.mark.parametrize("text", [
    "ご視聴ありがとうございました",
    "ご視聴ありがとうございました。",
    " ご視聴、ありがとうございました！ ",
    "最後までご視聴いただきありがとうございました",
    "チャンネル登録お願いします",
    "ご視聴ありがとうございました。チャンネル登録よろしくお願いします。",
    "字幕作成者 山田",
    "字幕",
    "Thank you for watching!",
    "Thanks for watching.",
    "Please subscribe to my channel.",
    "Subtitles by the Amara.org community",
    "you",
    " You.",
    "(音楽)",
    "[Music]",
    "♪",
    "（拍手）",
    "谢谢观看",
    "字幕由Amara.org社区提供",
    "시청해 주셔서 감사합니다.",
    "Obrigado por assistir.",
    "Gracias por ver el video.",
])
def test_known_hallucinations_are_rejected(text):
    assert is_known_hallucination(text)
    assert rejection_reason(text, **CLEAR) == "hallucination"


@pytest.mark.parametrize("text", [
    "ありがとうございました",  # real counter speech: Whisper's silence favourite, but rejected only by the no-speech rule
    "Thank you.",
    "Thank you very much.",
    "住民票の写しを一通お願いします。",
    "ご視聴ありがとうございましたと言われました",  # contains a hallucination, is not one
    "字幕をお願いします",  # asks for captions
    "I watched the video, thank you for watching my child.",
    "You need a form.",
    "Where do I submit the change of address form?",
])
def test_real_speech_passes(text):
    assert not is_known_hallucination(text)
    assert rejection_reason(text, **CLEAR) is None


def test_empty_and_punctuation_only():
    for text in ("", "   ", "。", "...", " - "):
        assert rejection_reason(text, **CLEAR) == "empty"


def test_no_speech_rule_needs_both_signals():
    # high no-speech estimate but a confident decode: speech (Whisper's own rule)
    assert rejection_reason("はい、そうです。", avg_logprob=-0.2, no_speech_prob=0.9) is None
    # high no-speech and unconfident: silence
    assert rejection_reason("ありがとうございました", avg_logprob=-1.2, no_speech_prob=0.9) == "no_speech"
    # no estimate (whisper.cpp): the low-confidence backstop
    assert rejection_reason("ありがとうございました", avg_logprob=-1.2, no_speech_prob=None) == "low_confidence"
    assert rejection_reason("ありがとうございました", avg_logprob=-0.4, no_speech_prob=None) is None


@pytest.mark.parametrize(("text", "lang"), [("Yes!", "en"), ("そうです", "ja"), ("はい、そうです。", "ja"), ("Sí.", "es"), ("Não.", "pt"), ("是的。", "zh"), ("Okay.", "en"),
                                                  ("Não, não.", "pt"), ("はい、はい", "ja")])
def test_a_yes_no_answer_is_shown_at_lower_confidence(text, lang):
    # far-field "Yes!" and そうです decoded right at -1.21 and -1.31, "Não." as "Não, não." at -1.18:
    # shown, down to -2.0
    assert rejection_reason(text, avg_logprob=-1.3, no_speech_prob=None, lang=lang) is None
    assert rejection_reason(text, avg_logprob=-2.1, no_speech_prob=None, lang=lang) == "low_confidence"
    assert rejection_reason(text, avg_logprob=-1.3, no_speech_prob=None) == "low_confidence"  # language unknown


@pytest.mark.parametrize(("text", "lang"), [
    ("Sangue.", "pt"), ("4 y un baño", "es"), ("Thank you.", "en"), ("Sí.", "en"), ("Yes, I need a copy.", "en"), ("はい、はい、はい、はい", "ja"),
])
def test_other_short_outputs_keep_the_usual_bar(text, lang):
    # wrong decodes of short replies in the same rooms, thanks (murmur comes out as it), another
    # language's yes, an answer with more words, a loop of one
    assert rejection_reason(text, avg_logprob=-1.3, no_speech_prob=None, lang=lang) is not None


@pytest.mark.parametrize(("text", "lang"), [("Gracias.", "es"), ("Thanks!", "en"), ("Thank you.", "en"), ("謝謝", "zh"), ("Obrigada!", "pt"),
                                                  ("ありがとうございます。", "ja"), ("Cảm ơn.", "vi")])
def test_thanks_are_shown_a_little_below_the_usual_bar(text, lang):
    # far-field "Gracias." and "Thanks!" decoded right at -1.04 and -1.06: shown; murmur that
    # Whisper writes as "Thank you." scores -1.3 and below: still rejected
    assert rejection_reason(text, avg_logprob=-1.1, no_speech_prob=None, lang=lang) is None
    assert rejection_reason(text, avg_logprob=-1.3, no_speech_prob=None, lang=lang) == "low_confidence"
    assert rejection_reason(text, avg_logprob=-1.1, no_speech_prob=None, lang="ko") == "low_confidence"  # not that language's thanks


def test_the_end_credits_thanks_gets_no_allowance():
    assert rejection_reason("ありがとうございました。", avg_logprob=-1.1, no_speech_prob=None, lang="ja") == "low_confidence"
    assert rejection_reason("Thank you for watching!", avg_logprob=-0.2, no_speech_prob=None, lang="en") == "hallucination"


def test_thresholds_come_from_settings():
    strict = RejectionThresholds(no_speech=0.3, logprob=-0.5)
    assert rejection_reason("Thank you.", avg_logprob=-0.7, no_speech_prob=0.4, thresholds=strict) == "no_speech"
    assert rejection_reason("Thank you.", avg_logprob=-0.7, no_speech_prob=0.1, thresholds=strict) == "low_confidence"
    assert rejection_reason("Thank you.", avg_logprob=-0.7, no_speech_prob=0.4) is None


@pytest.mark.parametrize("text", [
    "I'm sorry, " * 20,
    "おかげで、" * 15,
    "Đi đi, " + "đi, " * 30,
    "the the the the the",
    "はいはいはいはいはいはいはいはい",
    "国民健康保険、国民健康保険、国民健康保険",  # a 0.35 s fragment, decoded as a loop of a long phrase
    "Thank you. Thank you. Thank you.",
])
def test_loops_are_rejected(text):
    assert rejection_reason(text, **CLEAR) == "repetition"


def test_repetition_measures():
    assert compression_ratio("") == 0.0
    assert compression_ratio("abc " * 50) > 2.4
    assert compression_ratio("Where do I submit the change of address form?") < 1.5
    assert repeated_run("a b c d e f") == 0.0
    assert repeated_run("はい、はい。") == 0.0  # two is not a loop
    assert repeated_run("はい、はい、はい") == 0.0  # three short ones are a reply, a long phrase three times a loop
    assert repeated_run("go go go go home") == pytest.approx(0.8)
    assert rejection_reason("go go go go home now please thanks", **CLEAR) is None  # 4 of 8 words: not over half


def test_normalize():
    assert normalize("Ｈｅｌｌｏ、 World!") == "helloworld"
    assert normalize("ไทย ภาษา") == "ไทยภาษา"  # combining marks stay


def test_window_policy():
    policy = WindowPolicy(margin_s=1.0, min_s=10.0, partial_min_s=5.0, langid_margin_s=1.0, langid_min_s=0.0)
    second = 16000
    assert policy.frames(2 * second) == 512  # the 10 s floor, rounded up to whole 256-position steps
    assert policy.frames(int(9.5 * second)) == 768  # 10.5 s of context wanted
    assert policy.frames(20 * second) == 1280
    assert policy.frames(29 * second) == FULL_FRAMES  # never past Whisper's window
    assert policy.frames(2 * second, partial=True) == 256
    assert policy.langid_frames(2 * second) == 256 and policy.langid_frames(6 * second) == 512
    # no stale flash-attention pad for anything the endpointer cuts (at most 20 s)
    assert all(policy.frames(n) % 256 == 0 for n in range(1600, 24 * second, 4000))
    full = WindowPolicy(fitted=False)
    assert full.frames(second) == full.langid_frames(second) == full.frames(second, partial=True) == FULL_FRAMES
    exact = WindowPolicy(margin_s=0.0, min_s=0.0, step_frames=1)
    assert exact.frames(second) == 50 and exact.frames(1) == 1


def test_window_from_settings():
    from madoguchi.asr.window import policy_from_settings
    from madoguchi.config import AsrSettings

    assert policy_from_settings(AsrSettings(window="full")).frames(16000) == FULL_FRAMES
    policy = policy_from_settings(AsrSettings(window_margin_s=3.0))
    assert policy.fitted and policy.margin_s == 3.0


# --- the vocabulary prompt -------------------------------------------------------------------

from madoguchi.asr.vocabulary import echoes_prompt, vocabulary_prompt  # noqa: E402


def test_vocabulary_prompt_is_a_sentence_of_the_first_distinct_terms() -> None:
    prompt = vocabulary_prompt(["住民票", "転入届", "住民票", " ", "在留カード"], "ja", max_terms=2)
    assert prompt == "市役所の窓口です。かしこまりました。少々お待ちください。住民票、転入届などの手続きをします。"
    assert vocabulary_prompt(["residence card", "My Number card"], "en") == "residence card, My Number card."
    assert vocabulary_prompt([], "ja") == ""


def test_reciting_the_prompt_is_an_echo_but_using_its_words_is_not() -> None:
    prompt = vocabulary_prompt(["住民票", "在留カード", "転入届", "印鑑登録"], "ja")
    assert echoes_prompt("住民票、在留カード、転入届。", prompt)
    assert echoes_prompt("市役所の窓口です。住民票、在留カード、転入届、印鑑登録などの手続きをします。", prompt)
    assert not echoes_prompt("住民票の写しと在留カードをお願いします。", prompt)  # two terms: real speech
    assert not echoes_prompt("転入届と住民票と在留カード", prompt)  # three terms, not in the prompt's order
    assert not echoes_prompt("住民票、在留カード、転入届", "")
    assert echoes_prompt("国民健康保険、国民健康保険", vocabulary_prompt(["転入届", "国民健康保険"], "ja"))  # nothing but a prompt term, twice
    assert not echoes_prompt("国民健康保険ですね。", vocabulary_prompt(["転入届", "国民健康保険"], "ja"))


def test_an_echo_of_the_prompt_is_rejected_as_a_hallucination() -> None:
    from madoguchi.asr.base import finish
    from madoguchi.asr.filters import RejectionThresholds

    prompt = vocabulary_prompt(["住民票", "在留カード", "転入届"], "ja")
    common = dict(lang="ja", lang_probability=None, lang_scores={}, avg_logprob=-0.2, no_speech_prob=None, encoder_frames=512, partial=False, thresholds=RejectionThresholds())
    assert finish("住民票、在留カード、転入届", prompt=prompt, **common).rejected == "hallucination"
    assert finish("住民票の写しをお願いします", prompt=prompt, **common).rejected is None


def test_the_box_prompts_the_clerks_language_from_the_site_glossary(tmp_path) -> None:
    import dataclasses

    from madoguchi.app.parts import staff_prompts
    from madoguchi.config import Settings
    from madoguchi.interpreter.translation import site_glossary

    settings = Settings()
    settings = dataclasses.replace(settings, paths=dataclasses.replace(settings.paths, state_dir=str(tmp_path)))
    glossary = site_glossary(settings)
    prompts = staff_prompts(settings, glossary)
    assert list(prompts) == [settings.languages.staff] == ["ja"]  # residents' languages get none
    assert prompts["ja"].startswith("市役所の窓口です。かしこまりました。") and "住民票" in prompts["ja"]
    off = dataclasses.replace(settings, asr=dataclasses.replace(settings.asr, vocabulary_prompt=False))
    assert staff_prompts(off, glossary) == {} and staff_prompts(settings, None) == {}


def test_words_looping_round_the_prompt_are_decoded_again_without_it() -> None:
    from madoguchi.asr.base import finish, unprompted_if_looping
    from madoguchi.asr.filters import RejectionThresholds

    prompt = vocabulary_prompt(["マイナンバーカード", "転入届", "転出届"], "ja")
    common = dict(lang="ja", lang_probability=None, lang_scores={}, avg_logprob=-0.2, no_speech_prob=None, encoder_frames=512, partial=False, thresholds=RejectionThresholds())
    looped = "保険病悪ね、マイナンバーカード、" + "転入届、" * 12
    asked: list[str] = []

    def decode(words: str, unprompted: str):
        def run(given: str):
            asked.append(given)
            return finish(words if given else unprompted, prompt=given, **common)
        return run

    heard = unprompted_if_looping(decode(looped, "保険病は、前の年の所得で決まります。"), prompt)
    assert asked == [prompt, ""] and heard.rejected is None and heard.text == "保険病は、前の年の所得で決まります。"
    asked.clear()  # without the prompt it loops too: the first rejection stands
    assert unprompted_if_looping(decode(looped, looped), prompt).rejected == "repetition" and asked == [prompt, ""]
    asked.clear()  # words that stand, or a rejection a prompt does not cause, are not decoded twice
    assert unprompted_if_looping(decode("転入届ですね。", "x"), prompt).text == "転入届ですね。" and asked == [prompt]
    asked.clear()
    low = dict(common, avg_logprob=-2.5)
    assert unprompted_if_looping(lambda given: asked.append(given) or finish("床口です。", prompt=given, **low), prompt).rejected == "low_confidence"
    assert asked == [prompt]
    asked.clear()  # the prompt recited (noise under a prompt) stays rejected
    recited = "住民票、在留カード、転入届。"
    assert unprompted_if_looping(decode(recited, "x"), vocabulary_prompt(["住民票", "在留カード", "転入届"], "ja")).rejected == "hallucination"
    assert asked == [vocabulary_prompt(["住民票", "在留カード", "転入届"], "ja")]
    asked.clear()  # no prompt (a resident's language): nothing to take away
    assert unprompted_if_looping(decode(looped, looped), "").rejected == "repetition" and asked == [""]
