"""Which language a resident spoke: Whisper's language probabilities, restricted to the site's
candidates and weighed with priors.

    posterior(l) ∝ max(p_whisper(l), floor) ** alpha × prior(l)      for l in candidates only

- Candidates only: Whisper base spreads probability over 99 languages and confuses close ones
  (Japanese speech heard as Chinese, Portuguese as Galician, Indonesian as Malay); a language the
  site cannot translate is never an answer.
- ``alpha`` < 1 tempers Whisper's over-confidence so that the priors (the site's language mix and
  the side cue: an utterance from the resident's side is unlikely to be the staff language) can
  overrule a weak acoustic preference, but not a clear one.
- ``floor`` keeps a candidate Whisper gives (numerically) zero to from being vetoed outright, so a
  strong prior still counts.

Priors are weights, not necessarily normalised. A candidate missing from ``priors`` weighs 1; a
weight of 0 (or less) removes the candidate, unless every candidate would go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_ALPHA = 1.0
DEFAULT_FLOOR = 1e-4


@dataclass(frozen=True)
class LanguageChoice:
    lang: str
    probability: float  # posterior of the winner among the candidates
    scores: dict[str, float]  # posterior of every candidate, summing to 1


def language_posteriors(
    whisper_probs: Mapping[str, float],
    candidates: Sequence[str],
    priors: Mapping[str, float] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    floor: float = DEFAULT_FLOOR,
) -> dict[str, float]:
    """Posterior over ``candidates`` (in their order); raises ValueError when there are none."""
    unique = list(dict.fromkeys(candidates))
    if not unique:
        raise ValueError("language identification needs at least one candidate language")
    priors = priors or {}
    weighted = [lang for lang in unique if priors.get(lang, 1.0) > 0]
    kept = weighted or unique  # all vetoed: fall back to equal weights rather than answer nothing
    log_scores = {}
    for lang in kept:
        p = max(float(whisper_probs.get(lang, 0.0)), floor)
        prior = float(priors.get(lang, 1.0)) if weighted else 1.0
        log_scores[lang] = alpha * math.log(p) + math.log(prior)
    top = max(log_scores.values())
    exp = {lang: math.exp(s - top) for lang, s in log_scores.items()}
    total = sum(exp.values())
    return {lang: exp.get(lang, 0.0) / total for lang in unique}


def choose_language(
    whisper_probs: Mapping[str, float],
    candidates: Sequence[str],
    priors: Mapping[str, float] | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    floor: float = DEFAULT_FLOOR,
) -> LanguageChoice:
    """The most probable candidate; ties go to the earlier candidate (the caller's order)."""
    scores = language_posteriors(whisper_probs, candidates, priors, alpha=alpha, floor=floor)
    lang = max(scores, key=lambda code: scores[code])  # max keeps the first of equal scores
    return LanguageChoice(lang, scores[lang], scores)
