"""Morphemes of a text, copied out of the shared tagger (madoguchi.mt.reading) into plain values."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from madoguchi.mt import reading

from .errors import EasyJapaneseError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Token:
    surface: str
    pos1: str  # UniDic part of speech: 名詞, 動詞, 助詞 …
    pos2: str  # its subclass: 普通名詞, 非自立可能, 接続助詞 …
    pos3: str  # finer still: 助数詞 (counters) …
    ctype: str  # conjugation type (五段-カ行 …) or *
    cform: str  # conjugated form (連用形-イ音便 …) or *
    lemma: str
    kana: str  # reading as written (テンニュウ, not テンニュー), katakana; "" if unknown

    @property
    def pos(self) -> str:
        return f"{self.pos1}-{self.pos2}"


def _field(feature: object, name: str) -> str:
    value = getattr(feature, name, None)
    return value if isinstance(value, str) else ""


def tokenize(text: str) -> list[Token]:
    """The tagger's best analysis of ``text``; raises EasyJapaneseError when there is no tagger."""
    with reading.tagger() as tagger:
        if tagger is None:
            raise EasyJapaneseError("easy Japanese needs fugashi and unidic-lite (pip install fugashi unidic-lite)")
        out = []
        for node in tagger.parseToNodeList(text):
            if not node.surface:
                continue
            f = node.feature
            out.append(Token(node.surface, _field(f, "pos1"), _field(f, "pos2"), _field(f, "pos3"), _field(f, "cType"), _field(f, "cForm"), _field(f, "lemma") or node.surface, _field(f, "kana")))
        return out


def hiragana(kana: str) -> str:
    return "".join(chr(ord(ch) - 0x60) if "\u30a1" <= ch <= "\u30f6" else ch for ch in kana)


def locate(text: str, tokens: list[Token]) -> list[int] | None:
    """Where each token starts in ``text`` (the tagger drops whitespace); None if it rewrote a character."""
    starts, pos = [], 0
    for tok in tokens:
        pos = text.find(tok.surface, pos)
        if pos < 0:
            return None
        starts.append(pos)
        pos += len(tok.surface)
    return starts


# Given the tokens, where each starts in the text, and an index: how many tokens from there to
# replace and with what (None: keep them as written), or None to look at the next token.
Finder = Callable[[list[Token], list[int], int], "tuple[int, str | None] | None"]


def rewrite(text: str, find: Finder) -> str:
    """Tag ``text`` and splice ``find``'s replacements into it; what it does not replace, spaces
    included, stays as written. Unchanged if the tagger rewrote a character (nothing to splice into)."""
    tokens = tokenize(text)
    starts = locate(text, tokens)
    if starts is None:
        return text
    out, done, i = [], 0, 0
    while i < len(tokens):
        found = find(tokens, starts, i)
        if found is None:
            i += 1
            continue
        count, new = found
        if new is not None:
            end = starts[i + count - 1] + len(tokens[i + count - 1].surface)
            log.debug("easy Japanese: %s -> %s", text[starts[i] : end], new)
            out.append(text[done : starts[i]] + new)
            done = end
        i += count
    return "".join(out) + text[done:]
