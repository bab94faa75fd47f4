"""The site's vocabulary as Whisper's prompt, and the one hallucination a prompt can cause.

Whisper base writes a counter's words by sound: 転入届 comes out as 店入届け, 住民票の写し as
住民表の映し. Given the site's glossary terms as the decoder's previous text (Whisper's "prompt"),
it picks the site's spelling (on the bundled demo: 転入届, 住民票), for 0.1-0.3 s per utterance;
the sentence around them speaks as a clerk does, so polite set phrases come out as such.
Only the staff language gets a prompt: English clips decoded worse with one. The risk of a prompt is that noise gets transcribed as the prompt itself, so an
output that recites three or more prompt terms in the prompt's order is rejected; speech the prompt
led round in a loop is decoded once more without it (``asr.base.unprompted_if_looping``).
"""

from __future__ import annotations

from collections.abc import Iterable

from madoguchi.asr.filters import normalize

ECHO_TERMS = 3  # this many prompt terms recited in prompt order is the prompt, not speech
# A bare list of terms makes Whisper answer in lists ("転入届、転入届"); the same terms inside a
# sentence about the counter did not (measured on the bundled demo). Before them, a clerk's two
# commonest set phrases: Whisper base writes a reverberant かしこまりました as 歌詞が困りました or
# drops it, and with the clerk's register in its previous text it did so far less (README, Measured).
_FRAMES = {"ja": ("市役所の窓口です。かしこまりました。少々お待ちください。", "などの手続きをします。")}
_LIST_SEPARATOR = {"ja": "、", "zh": "、"}


def vocabulary_prompt(terms: Iterable[str], lang: str, max_terms: int | None = None) -> str:
    """The first ``max_terms`` (``[asr] vocabulary_terms``; None: all) distinct terms, most important
    first, in a short sentence in ``lang``. Each term costs decoder time on every utterance."""
    chosen = list(dict.fromkeys(t.strip() for t in terms if t and t.strip()))[:max_terms]
    if not chosen:
        return ""
    before, after = _FRAMES.get(lang, ("", "."))
    return before + _LIST_SEPARATOR.get(lang, ", ").join(chosen) + after


def prompt_terms(prompt: str) -> list[str]:
    for before, after in _FRAMES.values():
        prompt = prompt.removeprefix(before).removesuffix(after)
    items = prompt.rstrip("。.").replace("、", ",").split(",")
    return [n for n in (normalize(item) for item in items) if n]


def echoes_prompt(text: str, prompt: str) -> bool:
    """True when ``text`` recites ECHO_TERMS or more of the prompt's terms in the prompt's order,
    or is nothing but prompt terms, one said twice or more (国民健康保険、国民健康保険)."""
    if not prompt:
        return False
    heard = normalize(text)
    terms = prompt_terms(prompt)
    position, recited = 0, 0
    for term in terms:
        found = heard.find(term, position)
        if found >= 0:
            recited += 1
            position = found + len(term)
    if recited >= ECHO_TERMS:
        return True
    rest, said = heard, 0
    for term in sorted(terms, key=len, reverse=True):
        said += rest.count(term)
        rest = rest.replace(term, "")
    return said >= 2 and not rest
