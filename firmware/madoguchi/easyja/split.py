"""Short sentences: an utterance cut into sentences, and long ones cut at their clause joints.

Reasons and contrasts (ので、から、が、けど、し、) are always cut: one sentence, one thing. Chains
(て、 and the bare 連用形: 記入し、) are cut only when the sentence is longer than allowed. The part
before a cut gets a polite ending (呼びますので、→ 呼びます。必要なので、→ 必要です。); before a
request the chained verb becomes a request of its own (取って、待ってください → 取って ください。
待って ください。), otherwise a ます form; a copula chain ends in です (1通300円で、→ 1通300円です。).
What is still too long goes to shorten.fit, which always makes it fit.
"""

from __future__ import annotations

import logging
import re

from . import shorten
from .analyse import Token, tokenize
from .conjugate import polite_end

log = logging.getLogger(__name__)

_SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]*")
_STRONG = ("が", "けど", "けれど", "けれども", "ので", "から", "し")


def sentences(text: str) -> list[str]:
    return [s for s in (m.group(0).strip("、 ") for m in _SENTENCE.finditer(text)) if s.strip("。！？!?")]


def _joint(tokens: list[Token], comma: int) -> tuple[str, int] | None:
    """What joins the clause before ``tokens[comma]`` (a 、) to the next: ("strong"|"chain", first token of the joint)."""
    if comma == 0:
        return None
    prev = tokens[comma - 1]
    if prev.pos2 == "接続助詞" and prev.surface in _STRONG:
        return "strong", comma - 1
    if comma >= 2 and prev.surface == "で" and prev.pos1 == "助動詞" and tokens[comma - 2].surface == "の" and tokens[comma - 2].pos2 == "準体助詞":
        return "strong", comma - 2  # の + で: UniDic's ので
    if prev.pos2 == "接続助詞" and prev.surface in ("て", "で"):
        return "chain", comma - 1
    if prev.surface == "で" and (prev.pos1 == "助動詞" and prev.lemma == "だ" or _copula_de(tokens, comma)):
        return "chain", comma - 1  # a copula chain: 1通300円で、… → 1通300円です。…
    if prev.pos1 in ("動詞", "形容詞") and prev.cform.startswith("連用形"):
        return "chain", comma
    return None


def _copula_de(tokens: list[Token], comma: int) -> bool:
    """UniDic reads 300円で、 as the particle で; after a topic (Xは … Nで、) with no verb between,
    it is the copula's て-form: 住民税の証明書は1通300円で、… (the price of it)."""
    clause = tokens[:comma - 1]
    if len(clause) < 2 or clause[-1].pos1 != "名詞" or any(t.pos1 == "動詞" or t.surface == "、" for t in clause):
        return False
    return any(t.surface == "は" and t.pos1 == "助詞" for t in clause)


def _cut(tokens: list[Token], cuts: list[tuple[int, int, str]]) -> list[str]:
    """The sentence's pieces at the given (joint start, comma, kind) cuts."""
    ends = "".join(t.surface for t in tokens[-3:])
    request = "ください" in ends
    past = "ました" in ends
    out, start = [], 0
    for joint, comma, kind in cuts:
        # …て、 and 記入し、 alike end on the chained verb: it takes the request or the ます
        out.append(polite_end(tokens[start:joint], request=request and kind == "chain", past=past) + "。")
        start = comma + 1
    out.append("".join(t.surface for t in tokens[start:]))
    return [s for s in out if s.strip("。")]


def split(sentence: str, limit: int) -> list[str]:
    """One sentence as short sentences, each within ``limit`` characters where a joint allows."""
    tokens = tokenize(sentence)
    if not tokens:
        return []
    joints = [(j[1], i, j[0]) for i, t in enumerate(tokens) if t.surface == "、" and (j := _joint(tokens, i))]
    strong = [c for c in joints if c[2] == "strong"]
    pieces = _cut(tokens, strong) if strong else [sentence]
    out: list[str] = []
    for piece in pieces:
        if len(piece) <= limit:
            out.append(piece)
            continue
        sub = tokenize(piece)
        chains = [(j[1], i, j[0]) for i, t in enumerate(sub) if t.surface == "、" and (j := _joint(sub, i)) and j[0] == "chain"]
        parts = _cut(sub, chains) if chains else [piece]
        for part in parts:  # what no clause joint made short enough: topic, middle, last resort
            out.extend(shorten.fit(part, limit))
    return out
