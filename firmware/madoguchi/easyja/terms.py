"""Municipal terms for easy Japanese, from data/easyja/terms.json (a native reviewer checks each).

Each term is either replaced by an everyday word (印鑑 → はんこ), kept as it is (在留カード: the
resident must know the name), or kept and explained in one short extra sentence after the first
sentence that uses it (転入届 → "転入届は 引っ越して 来た ときに 出す 紙です。"). Variants are
rewritten to the term first (住民票の写し → 住民票). A reading given here wins over the tagger's
(番号札 is ばんごうふだ; UniDic reads 札 サツ).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .datafile import load, text
from .errors import EasyJapaneseError

FORMAT = "madoguchi-easyja-terms/1"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "easyja" / "terms.json"
ACTIONS = ("replace", "keep", "explain")
REVIEWS = ("needed", "done")
_HIRAGANA = re.compile(r"[\u3041-\u3096ー]+")
_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30faー]+")


@dataclass(frozen=True)
class Term:
    term_id: str
    ja: str
    variants: tuple[str, ...]
    action: str  # one of ACTIONS
    easy: str | None  # the replacement (replace)
    reading: str | None  # hiragana reading of ja (keep, explain)
    explain: str | None  # what it is, as the predicate of "<ja>は …です。" (explain)

    @property
    def shown(self) -> str:
        """What the resident sees in place of the term."""
        return self.easy if self.action == "replace" and self.easy else self.ja

    def explanation(self) -> str:
        return f"{self.ja}は{self.explain}です。"


class Terms:
    """The glossary: one longest-first pass rewrites every term and variant to what is shown."""

    def __init__(self, terms: tuple[Term, ...]) -> None:
        self.terms = terms
        self._by_form: dict[str, Term] = {}
        for term in terms:
            for form in (term.ja, *term.variants):
                self._by_form[form] = term
        forms = sorted(self._by_form, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, forms)))
        # kept words: matched again after splitting, to show them as one word with their reading
        self.kept = {t.ja: t for t in terms if t.action != "replace"}
        # a kana replacement is one word too: the tagger splits はんこと into は|ん|こと
        units = {t.easy: t for t in terms if t.action == "replace" and t.easy and _KANA.fullmatch(t.easy)}
        self._units = {**units, **self.kept}
        kept = sorted(self._units, key=len, reverse=True)
        self._kept_pattern = re.compile("|".join(map(re.escape, kept))) if kept else None

    def replace(self, text_in: str) -> str:
        return self._pattern.sub(lambda m: self._by_form[m.group(0)].shown, text_in)

    def kept_spans(self, sentence: str) -> list[tuple[int, int, Term]]:
        if self._kept_pattern is None:
            return []
        return [(m.start(), m.end(), self._units[m.group(0)]) for m in self._kept_pattern.finditer(sentence)]


def load_terms(path: Path = DEFAULT_PATH) -> Terms:
    _, entries = load(path, FORMAT, "entries")
    terms: list[Term] = []
    seen: dict[str, str] = {}
    for number, entry in enumerate(entries):
        where = f"entries[{number}] ({entry.get('term_id', '?')})"
        term_id = text(path, where, entry, "term_id")
        ja = text(path, where, entry, "ja", allowed="the Japanese term")
        action = entry.get("action")
        if action not in ACTIONS:
            raise EasyJapaneseError(f"{path}: {where}: \"action\" must be one of {', '.join(ACTIONS)}, not {action!r}")
        if entry.get("review") not in REVIEWS:
            raise EasyJapaneseError(f"{path}: {where}: \"review\" must be one of {', '.join(REVIEWS)} (a native reviewer checks every term)")
        text(path, where, entry, "reason", allowed="a short reason for replacing, keeping or explaining")
        variants = entry.get("variants", [])
        if not isinstance(variants, list) or not all(isinstance(v, str) and v for v in variants):
            raise EasyJapaneseError(f"{path}: {where}: \"variants\" must be a list of non-empty strings")
        easy = text(path, where, entry, "easy", required=action == "replace", allowed="the everyday word that replaces the term")
        explain = text(path, where, entry, "explain", required=action == "explain", allowed="a short explanation (the predicate of '<term>は …です。')")
        reading = text(path, where, entry, "reading", required=False, allowed="the term's reading in hiragana")
        if reading is not None and not _HIRAGANA.fullmatch(reading):
            raise EasyJapaneseError(f"{path}: {where}: \"reading\" must be hiragana only (ー allowed), not {reading!r}")
        for form in (ja, *variants):
            if form in seen:
                raise EasyJapaneseError(f"{path}: {where}: {form!r} is already an entry or variant of {seen[form]}; each form may appear once")
            seen[form] = term_id
        terms.append(Term(term_id, ja, tuple(variants), action, easy, reading, explain))
    return Terms(tuple(terms))
