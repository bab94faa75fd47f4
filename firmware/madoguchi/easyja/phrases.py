"""One sentence as phrases (文節) of words with kana readings: 分かち書き and furigana after kanji.

A phrase is a content word with what leans on it: particles, auxiliaries, suffixes, punctuation,
the する of a サ変 noun (確認して). Helper verbs after て start their own phrase, as in school
Japanese for learners (書いて ください). Kanji nouns in a row are one word with one reading
(国民健康保険); a kept glossary term is always one word, read as the terms file says.
"""

from __future__ import annotations

import re
from dataclasses import replace

from .analyse import Token, hiragana, tokenize
from .grades import is_kanji, needs_reading
from .model import EasySentence, Segment
from .terms import Terms

_LEANING = ("助詞", "助動詞", "接尾辞", "補助記号")
_TERM = "用語"  # pos2 of a merged glossary term
_TIME_UNITS = frozenset("年月日時分秒")
_RUNS = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf々〆]+|[^\u4e00-\u9fff\u3400-\u4dbf々〆]+")


def _merge_terms(tokens: list[Token], sentence: str, terms: Terms) -> list[Token]:
    spans = terms.kept_spans(sentence)
    if not spans:
        return tokens
    out: list[Token] = []
    pos = 0
    starts = []
    for tok in tokens:  # MeCab drops nothing but whitespace; find each surface from where we are
        pos = sentence.find(tok.surface, pos)
        if pos < 0:  # the tagger rewrote a character: leave the words as they are
            return tokens
        starts.append(pos)
        pos += len(tok.surface)
    i = 0
    while i < len(tokens):
        span = next(((s, e, t) for s, e, t in spans if starts[i] < e and starts[i] + len(tokens[i].surface) > s), None)
        if span is None:
            out.append(tokens[i])
            i += 1
            continue
        s, e, term = span
        j = i
        while j < len(tokens) and starts[j] < e:
            j += 1
        group = tokens[i:j]
        surface = "".join(t.surface for t in group)
        end = starts[j - 1] + len(group[-1].surface)
        overrun = sentence[e:end] if end > e and starts[i] >= s else ""
        if overrun:  # は|ん|こと: the last word runs past the term; read the rest on its own
            surface = surface[: len(surface) - len(overrun)]
        kana = term.reading if term.reading and surface == term.ja else "".join(t.kana for t in (tokenize(surface) if overrun else group))
        out.append(Token(surface, "名詞", _TERM, "*", "*", "*", surface, kana))
        out.extend(tokenize(overrun) if overrun else [])
        i = j
    return out


def _numeral(tok: Token) -> bool:
    return tok.pos2 == "数詞" or tok.surface.isdecimal()


def starts_phrase(prev: Token, tok: Token) -> bool:
    if tok.pos1 in _LEANING or prev.pos1 == "接頭辞" or tok.surface == "半" and prev.lemma in _TIME_UNITS:
        return False  # 8時半 is one time
    if tok.pos1 == "動詞" and tok.lemma == "為る" and (prev.pos1 == "名詞" or prev.pos1 == "動詞" and prev.cform.startswith("連用形-一般")):
        return False  # 確認 + して, お願い + します
    if tok.pos1 == "名詞" and tok.pos2 != "数詞" and prev.pos1 in ("名詞", "接尾辞"):
        # compounds (転入届, 14日以内, 300円), but a count ends its phrase (何通 必要です)
        return prev.pos3.startswith("助数詞") and tok.pos3 != "副詞可能"
    if _numeral(tok) and (prev.pos1 == "名詞" or prev.lemma in _TIME_UNITS):
        return False  # 午後5時15分, 4月1日: a time or date stays one phrase (but 1通 300円)
    return True


def _compound(tok: Token) -> bool:
    """Part of a kanji noun compound read as one word."""
    if tok.pos2 in (_TERM, "数詞") or tok.pos3 == "助数詞" or not any(is_kanji(ch) for ch in tok.surface):
        return False  # a counter is read with its number, not with the noun after it (14日 以内)
    return tok.pos1 in ("名詞", "接頭辞", "接尾辞")


def _segments(surface: str, kana: str, above: int) -> list[Segment]:
    """A word as segments, each kanji run with its own reading: 申(もう)し込(こ)み, 書(か)いて."""
    reading = hiragana(kana)
    if not needs_reading(surface, above) or not reading:
        return [Segment(surface, None)]
    runs = [m.group(0) for m in _RUNS.finditer(surface)]
    # kana runs must be found in the reading as written; kanji runs take what lies between
    pattern = "".join("(.+?)" if is_kanji(run[0]) else f"({re.escape(hiragana(run))})" for run in runs)
    match = re.fullmatch(pattern, reading)
    if match is None:  # irregular spelling (kana the reading does not show): read the whole word
        return [Segment(surface, reading)]
    return [Segment(run, part if is_kanji(run[0]) else None) for run, part in zip(runs, match.groups())]


def _words(phrase: list[Token]) -> list[Token]:
    """Kanji noun compounds joined into one token (住民 + 票 → 住民票)."""
    out: list[Token] = []
    for tok in phrase:
        kanji_count = out and tok.pos3.startswith("助数詞") and out[-1].pos2 == "数詞" and any(is_kanji(ch) for ch in out[-1].surface)
        if out and (_compound(tok) and _compound(out[-1]) or kanji_count):  # 一度 is read as one word; 2階 reads 階
            last = out.pop()
            tok = replace(last, surface=last.surface + tok.surface, kana=last.kana + tok.kana)
        out.append(tok)
    return out


def build(sentence: str, terms: Terms, above: int) -> EasySentence:
    tokens = _merge_terms(tokenize(sentence), sentence, terms)
    phrases: list[list[Token]] = []
    for tok in tokens:
        if phrases and not starts_phrase(phrases[-1][-1], tok):
            phrases[-1].append(tok)
        else:
            phrases.append([tok])
    return EasySentence(tuple(tuple(seg for word in _words(p) for seg in _segments(word.surface, word.kana, above)) for p in phrases))
