"""Which language to listen for and which to translate into: pure functions of the evidence.

Direction is the first cue for who spoke and language the second (the resident usually does not
speak the staff language). A confident side fixes the staff language or limits identification to
the site's resident languages; an ambiguous one lets Japanese compete, weighted by the side's
evidence, and the language heard then corrects the side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from madoguchi.asr.filters import is_thanks, is_yes_no_reply, normalize, phrase_sets
from madoguchi.config import LanguageSettings
from madoguchi.events import Interpretation, Side, Utterance

CONFIDENT_SIDE = 0.3  # side_confidence from which direction alone decides (decide_side's scale)
SESSION_BOOST = 4.0  # the resident already heard in this session is this much more likely again
# Shorter than this, Whisper base cannot tell a language (half a second of "Sí." scores zh 0.86):
# a resident already heard keeps their language; a longer utterance is identified again.
SHORT_UTTERANCE_S = 1.5
AMBIGUOUS_STAFF_PRIOR = 0.5  # staff language's share of the prior when direction cannot tell


@dataclass(frozen=True)
class LanguageRequest:
    """What ASR is asked: a fixed ``language``, or identification among ``candidates`` with ``priors``."""

    language: str | None
    candidates: tuple[str, ...] = ()
    priors: Mapping[str, float] = field(default_factory=dict)


def resident_priors(languages: LanguageSettings, session_lang: str | None) -> dict[str, float]:
    """The site's language mix, normalised, with the session's resident language boosted."""
    weights = languages.resident_weights or (1.0,) * len(languages.residents)
    priors = dict(zip(languages.residents, weights))
    if session_lang in priors:
        priors[session_lang] *= SESSION_BOOST
    total = sum(priors.values())
    return {lang: w / total for lang, w in priors.items()}


def side_is_confident(utterance: Utterance) -> bool:
    return not utterance.side_held and utterance.side_confidence >= CONFIDENT_SIDE


def language_request(utterance: Utterance, languages: LanguageSettings, session_lang: str | None, mode: str = "interpret",
                     chosen: str | None = None) -> LanguageRequest:
    """The ASR request for one utterance, from its side, the site's languages, the session and the mode.

    Caption mode (a deaf resident at a Japanese counter) hears both sides in the staff language,
    unless a resident language was ``chosen`` with the button. Easy Japanese hears the clerk in
    it and lets it compete with the resident's languages: a resident who reads some Japanese may
    speak it, or answer in their own language.
    """
    if mode == "caption":
        return LanguageRequest(chosen if utterance.side == "resident" and chosen is not None else languages.staff)
    if mode == "easy_japanese":
        if utterance.side == "staff":
            return LanguageRequest(languages.staff)
        priors = {lang: p / 2 for lang, p in resident_priors(languages, session_lang).items()}
        priors[languages.staff] = 0.5
        return LanguageRequest(None, tuple(priors), priors)
    if side_is_confident(utterance):
        if utterance.side == "staff":
            return LanguageRequest(languages.staff)
        if session_lang in languages.residents and utterance.duration_s < SHORT_UTTERANCE_S:
            return LanguageRequest(session_lang)
        priors = resident_priors(languages, session_lang)
        if len(priors) == 1:  # one resident language (a site's, or the one chosen with the button): nothing to identify
            return LanguageRequest(languages.residents[0])
        return LanguageRequest(None, tuple(priors), priors)
    staff_share = AMBIGUOUS_STAFF_PRIOR + (0.25 if utterance.side == "staff" else -0.25) * min(1.0, utterance.side_confidence / CONFIDENT_SIDE)
    priors = {lang: p * (1.0 - staff_share) for lang, p in resident_priors(languages, session_lang).items()}
    priors[languages.staff] = staff_share
    return LanguageRequest(None, (languages.staff, *languages.residents), priors)


def speaker_side(utterance: Utterance, lang: str, languages: LanguageSettings, mode: str = "interpret") -> Side:
    """The side after hearing the language: only an ambiguous direction can be overruled, and only
    in interpret mode (the same-language modes expect the staff language from both sides)."""
    if mode != "interpret" or side_is_confident(utterance):
        return utterance.side
    return "staff" if lang == languages.staff else "resident"


def target_language(side: Side, languages: LanguageSettings, session_lang: str | None) -> str:
    """Staff speech goes to the resident's language (the session's, else the site's most common)."""
    if side == "resident":
        return languages.staff
    if session_lang:
        return session_lang
    weights = languages.resident_weights or (1.0,) * len(languages.residents)
    best = max(range(len(weights)), key=weights.__getitem__)  # ties: the first listed
    return languages.residents[best]


def resident_language_heard(result: Interpretation, staff_lang: str) -> str | None:
    """The resident's language this result teaches the session, if any: words from the resident
    side in interpret mode, or, in easy-Japanese mode, a resident answering in their own language."""
    if result.rejected or not result.text or result.side != "resident":
        return None
    if result.mode == "interpret" or (result.mode == "easy_japanese" and result.lang != staff_lang):
        return result.lang
    return None


# Acknowledgements that are a whole turn of their own, beside the yes/no answers and thanks
# (asr.filters): a clerk's "かしこまりました。" and what they say next are two things to read, not
# one sentence.
_ACKNOWLEDGEMENTS: dict[str, str] = {
    "ja": "かしこまりました|承知しました|承知いたしました|わかりました|分かりました|少々お待ちください",
    "en": "right|alright|all right|sure|of course|i see",
    "es": "de acuerdo|entiendo",
    "pt": "certo|entendi",
    "zh": "好的|明白了|知道了",
}
ACKNOWLEDGEMENTS = phrase_sets(_ACKNOWLEDGEMENTS)


# Whisper ends a whole Japanese sentence with one of these; a sentence cut at a comma (暗証番号を、
# / 数字四桁で…) without one (measured on 135 far-field records: 9 of the 12 without were cut there).
# Chinese and Korean outputs often carry none, so only Japanese says anything by its last mark.
_JAPANESE_SENTENCE_ENDS = frozenset("。？！?!…")


def is_unfinished(result: Interpretation) -> bool:
    """The words stop mid-sentence: Japanese without a sentence-ending mark (the talker is likely
    to go on after a long comma)."""
    return not result.rejected and result.lang == "ja" and bool(result.text) and result.text.rstrip()[-1] not in _JAPANESE_SENTENCE_ENDS


def is_standalone_reply(result: Interpretation) -> bool:
    """The words are a whole reply ("Yes.", "そうです。", "かしこまりました。"): shown as a record of
    their own at the talker's pause, even if the same talker goes on after it. Joined to the next
    sentence, a short reply is read as part of it, and the other side waits for both."""
    if result.rejected or not result.text:
        return False
    return (is_yes_no_reply(result.text, result.lang) or is_thanks(result.text, result.lang)
            or normalize(result.text) in ACKNOWLEDGEMENTS.get(result.lang, frozenset()))
