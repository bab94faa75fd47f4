"""The length guarantee: a sentence that no clause joint made short enough is cut until it fits.

Tried in order, each part going round again until every part is within the limit:
1. a topic or purpose at the front (…は、…には、…については、…の方は、…ときは、, or a noun + は
   with no 、) becomes its own
   sentence, "X の 話です。" / "X 人への 話です。" / "X ときの 話です。", and the rest goes on alone
   (児童手当の申し込みは、… → 児童手当の申し込みの 話です。 …);
2. the clause joint nearest the middle (a verb before 、, a て-form before a new verb, a reason
   without its 、) ends the first part politely, as the sentence ends (… ください / … ます);
3. a particle phrase before the final predicate gets that predicate too (…までに 出して ください。
   …へ 出して ください。), when no other verb could have taken it;
4. last resort, so the limit always holds: a cut between two phrases nearest the middle, the first
   part left without a period (it reads on into the next line). Logged: a rule should catch it.
"""

from __future__ import annotations

import logging
import re

from .analyse import Token, tokenize
from .conjugate import polite_end
from .phrases import starts_phrase
from .predicate import shared_predicate

log = logging.getLogger(__name__)

# the topic before the first 、 and the sentence it becomes; first match wins
_TOPICS = (
    (re.compile(r"(.+?)(?:について|につきまして|に関して|に関しまして)は?$"), r"\1の話です。"),
    (re.compile(r"(.+?)(?:場合|とき|時|際)(?:に)?は$"), r"\1ときの話です。"),
    (re.compile(r"(.+?)(人|方|皆さん)は$"), r"\1\2への話です。"),
    (re.compile(r"(.+?)(?:には|では|は)$"), r"\1の話です。"),
)
_HELPERS = ("非自立可能",)
_REASONS = ("ので", "から", "が", "けど", "けれど", "けれども")  # 書いて ください, 持って いる: a helper verb belongs to the て-form


def _text(tokens: list[Token]) -> str:
    return "".join(t.surface for t in tokens)


def _topic(tokens: list[Token]) -> tuple[str, list[Token]] | None:
    """The front topic as a sentence and the tokens after it, or None: the words before the first
    、 when they end in a topic (…には、), else the words before a plain noun + は (ごみは 朝…)."""
    comma = next((i for i, t in enumerate(tokens) if t.surface == "、"), None)
    found = _topic_at(tokens, comma) if comma is not None else None
    if found is None:
        wa = next((i for i, t in enumerate(tokens) if t.surface == "は" and t.pos2 == "係助詞"), None)
        if wa is not None and wa >= 1 and tokens[wa - 1].pos1 in ("名詞", "接尾辞") and (comma is None or wa < comma):
            sentence = _text(tokens[:wa]) + "の話です。"
            found = (sentence, tokens[wa + 1 :]) if len(tokens) - wa > 3 else None
    return found


def _topic_at(tokens: list[Token], comma: int) -> tuple[str, list[Token]] | None:
    if comma < 2 or comma == len(tokens) - 1:
        return None
    before = tokens[comma - 2]  # what は, には … follow: a noun or a word that makes one
    if before.surface == "の" and before.pos2 == "準体助詞":
        return None  # 出すのは、… is not a topic of that kind
    chunk = _text(tokens[:comma])
    for pattern, sentence in _TOPICS:
        if pattern.fullmatch(chunk):
            return pattern.sub(sentence, chunk, count=1), tokens[comma + 1 :]
    return None


def _joints(tokens: list[Token]) -> list[tuple[int, int, bool, str]]:
    """(end of the first clause, start of the rest, whether a chain that a request continues, what
    the rest begins with) at every verb joint: 取って|あの, 書き、|出して, 止まりますので|気をつけて,
    受け取ってから、|それから ここへ."""
    out = []
    for i, tok in enumerate(tokens[:-2]):
        nxt = tokens[i + 1]
        skip = 2 if nxt.surface == "、" else 1
        if tok.surface == "から" and i > 0 and tokens[i - 1].surface in ("て", "で"):
            out.append((i - 1, i + skip, True, "それから、"))  # the order must survive the cut
        elif tok.surface in ("て", "で") and tok.pos2 == "接続助詞":
            if skip == 2 or not (nxt.pos1 == "動詞" and nxt.pos2 in _HELPERS) and nxt.pos1 not in ("助詞", "助動詞", "補助記号"):
                out.append((i, i + skip, True, ""))
        elif tok.pos2 == "接続助詞" and tok.surface in _REASONS:
            out.append((i, i + skip, False, ""))  # ので without its 、: the clause ends politely as it is
        elif tok.pos2 == "準体助詞" and nxt.surface == "で" and nxt.pos1 == "助動詞":
            out.append((i, i + (3 if tokens[i + 2].surface == "、" else 2), False, ""))  # の|で: UniDic's ので
        elif tok.pos1 in ("動詞", "形容詞", "助動詞") and skip == 2:
            out.append((i + 1, i + 2, True, ""))  # the clause keeps its last verb; the 、 goes
    return out


def _middle(tokens: list[Token], sentence: str) -> list[str] | None:
    ends = _text(tokens[-3:])
    best: list[str] | None = None
    for end, start, chain, prefix in _joints(tokens):
        clause = tokens[:end]
        if not clause or not tokens[start:]:
            continue
        first = polite_end(clause, request=chain and "ください" in ends, past="ました" in ends) + "。"
        rest = prefix + _text(tokens[start:])
        if len(first) >= len(sentence) or not rest.strip("。"):
            continue
        if best is None or max(map(len, (first, rest))) < max(map(len, best)):
            best = [first, rest]
    return best


def _phrases(tokens: list[Token], limit: int) -> list[str] | None:
    """Last resort: between two phrases (文節, as the panel shows them), after a 、 if one leaves
    the first part within the limit, else nearest the middle."""
    starts = [i for i in range(1, len(tokens)) if starts_phrase(tokens[i - 1], tokens[i])]
    if not starts:
        return None
    half = sum(len(t.surface) for t in tokens) / 2
    commas = [i for i in starts if tokens[i - 1].surface == "、" and len(_text(tokens[:i])) <= limit]
    cut = min(commas or starts, key=lambda i: abs(len(_text(tokens[:i])) - half))
    return [_text(tokens[:cut]), _text(tokens[cut:])]


def fit(sentence: str, limit: int, depth: int = 0) -> list[str]:
    """``sentence`` as sentences of at most ``limit`` characters each."""
    if len(sentence) <= limit or depth > 20:  # every cut shortens both parts; the bound is a guard
        return [sentence]
    tokens = tokenize(sentence)
    topic = _topic(tokens)
    if topic is not None:
        parts = [topic[0], _text(topic[1])]
    else:
        parts = _middle(tokens, sentence) or shared_predicate(tokens, limit) or _phrases(tokens, limit) or [sentence]
        if parts == [sentence]:
            log.warning("easy Japanese: no phrase boundary to cut %d characters: %s", len(sentence), sentence)
            return parts
        if len(parts[0]) and not parts[0].endswith("。"):
            log.info("easy Japanese: last-resort cut between phrases: %s | %s", *parts)
    return [short for part in parts for short in fit(part, limit, depth + 1)]
