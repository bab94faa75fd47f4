"""Easy Japanese (やさしい日本語) for the resident's panel: what the clerk said, rewritten.

Order matters: kanji numbers become digits, keigo goes (so cushions vanish before lengths are
counted), then glossary terms, then sentences are cut short (split, then shorten: always within
max_sentence_chars), and last each sentence is laid out in phrases with kana readings.
A kept term's explanation follows the first sentence that uses it, once per utterance.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from madoguchi.config import EasyJapaneseSettings

from . import keigo, numerals, phrases, rules, split, terms
from .model import EasySentence, EasyText

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC (full-width digits, half-width kana) and no spaces: Whisper puts some between Japanese words."""
    text = unicodedata.normalize("NFKC", text).replace("?", "？").replace("!", "！")
    return _SPACE.sub(lambda m: " " if _ascii_around(text, m) else "", text.strip())


def _ascii_around(text: str, m: re.Match[str]) -> bool:
    before, after = text[m.start() - 1 : m.start()], text[m.end() : m.end() + 1]
    return before.isascii() and before.isalnum() and after.isascii() and after.isalnum()


class EasyJapanese:
    """Rewrites Japanese for residents who read some Japanese. Thread-safe: the tagger is locked."""

    def __init__(self, settings: EasyJapaneseSettings, terms_path: Path | None = None) -> None:
        self.settings = settings
        self.terms = terms.load_terms(terms_path or terms.DEFAULT_PATH)
        self.rules = rules.load_rules()

    def rewrite(self, text: str) -> EasyText:
        # phrase rules first (specific ones win), then the productive patterns, then the rules
        # again for what those made (持っていただく必要があります → 持ってください)
        text = rules.apply(self.rules, numerals.to_digits(normalise(text)))
        text = self.terms.replace(rules.apply(self.rules, keigo.plain(text)))
        explained: set[str] = set()
        pending: list[str] = []
        out: list[EasySentence] = []
        for sentence in split.sentences(text):
            for short in split.split(_ended(sentence), self.settings.max_sentence_chars):
                out.append(phrases.build(short, self.terms, self.settings.reading_above_grade))
                for _, _, term in self.terms.kept_spans(short):
                    if term.action == "explain" and term.term_id not in explained:
                        explained.add(term.term_id)
                        pending.append(term.explanation())
                if short.endswith(("。", "！", "？")):  # not inside a sentence cut as a last resort
                    out.extend(self._explanations(pending))
                    pending.clear()
        out.extend(self._explanations(pending))
        return EasyText(tuple(out))

    def _explanations(self, texts: list[str]) -> list[EasySentence]:
        # explanations are short by review, but the length guarantee holds for any setting
        limit, above = self.settings.max_sentence_chars, self.settings.reading_above_grade
        return [phrases.build(short, self.terms, above) for text in texts for short in split.split(text, limit)]

    def text(self, text: str) -> str:
        return self.rewrite(text).display_text(self.settings.readings == "after", self.settings.spaces)


def _ended(sentence: str) -> str:
    return sentence if sentence[-1] in "。！？" else sentence + "。"
