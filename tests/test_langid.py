"""Language choice among the candidates with priors: synthetic probability tables."""

from __future__ import annotations

import math

import pytest

from madoguchi.asr.langid import choose_language, language_posteriors

CANDIDATES = ("ja", "en", "zh", "ko", "vi", "pt")


def table(**probs: float) -> dict[str, float]:
    rest = (1.0 - sum(probs.values())) / 90
    return {**{f"x{i}": rest for i in range(90)}, **probs}


def test_never_outside_candidates():
    probs = table(gl=0.7, pt=0.2, es=0.05)  # Portuguese heard as Galician
    choice = choose_language(probs, CANDIDATES)
    assert choice.lang == "pt"
    assert set(choice.scores) == set(CANDIDATES)
    assert math.isclose(sum(choice.scores.values()), 1.0)
    assert choice.probability == choice.scores["pt"]


def test_clear_evidence_beats_a_low_prior():
    probs = table(ja=0.98, zh=0.01)
    assert choose_language(probs, CANDIDATES, {"ja": 0.1, "zh": 3.0}).lang == "ja"


def test_prior_decides_a_close_call():
    probs = table(vi=0.35, zh=0.40)
    assert choose_language(probs, CANDIDATES).lang == "zh"
    assert choose_language(probs, CANDIDATES, {"vi": 3.0, "zh": 1.0}).lang == "vi"


def test_side_cue_moves_a_weak_staff_guess():
    probs = table(ja=0.45, ko=0.35)
    assert choose_language(probs, CANDIDATES).lang == "ja"
    assert choose_language(probs, CANDIDATES, {"ja": 0.1}).lang == "ko"  # resident side: Japanese unlikely


def test_alpha_tempers_whisper():
    probs = table(en=0.8, es=0.1)
    sharp = language_posteriors(probs, ("en", "es"), alpha=1.0)
    soft = language_posteriors(probs, ("en", "es"), alpha=0.5)
    assert sharp["en"] == pytest.approx(8 / 9)
    assert soft["en"] == pytest.approx(math.sqrt(8) / (math.sqrt(8) + 1))
    assert choose_language(probs, ("en", "es"), {"es": 4.0}, alpha=0.5).lang == "es"
    assert choose_language(probs, ("en", "es"), {"es": 4.0}, alpha=1.0).lang == "en"


def test_unnormalised_and_missing_priors():
    probs = table(en=0.5, zh=0.5)
    a = language_posteriors(probs, ("en", "zh"), {"en": 2.0, "zh": 1.0})
    b = language_posteriors(probs, ("en", "zh"), {"en": 200.0, "zh": 100.0})
    assert a == pytest.approx(b)
    assert language_posteriors(probs, ("en", "zh"), {"en": 1.0}) == pytest.approx({"en": 0.5, "zh": 0.5})  # missing = 1


def test_zero_prior_removes_a_candidate_unless_all_go():
    probs = table(en=0.9, zh=0.05)
    scores = language_posteriors(probs, ("en", "zh"), {"en": 0.0})
    assert scores["en"] == 0.0 and scores["zh"] == 1.0
    fallback = language_posteriors(probs, ("en", "zh"), {"en": 0.0, "zh": 0.0})
    assert max(fallback, key=fallback.get) == "en"


def test_zero_probability_is_floored_not_vetoed():
    probs = {"en": 1.0}
    scores = language_posteriors(probs, ("en", "my"), {"my": 1e6})
    assert scores["my"] > 0.5  # a strong prior still counts for a language Whisper gave nothing


def test_ties_keep_caller_order_and_duplicates_collapse():
    probs = {"en": 0.3, "zh": 0.3}
    assert choose_language(probs, ("zh", "en")).lang == "zh"
    assert list(language_posteriors(probs, ("en", "en", "zh"))) == ["en", "zh"]


def test_no_candidates_is_an_error():
    with pytest.raises(ValueError, match="candidate"):
        choose_language({"en": 1.0}, ())
