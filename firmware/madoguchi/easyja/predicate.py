"""The final predicate said twice, to cut a long sentence with no clause joint in it.

朝8時までに、集積所へ 出して ください → 朝8時までに 出して ください。 集積所へ 出して ください。
A particle phrase (に, で, へ, から, まで, を) moved into a sentence of its own must belong to the
final predicate, so the cut is made only where no other verb could take it: after a 、 (where
the speaker paused), or where every verb after the cut only ends a relative clause.
"""

from __future__ import annotations

from .analyse import Token
from .phrases import starts_phrase

_CASES = ("に", "で", "へ", "から", "まで", "を")


def _text(tokens: list[Token]) -> str:
    return "".join(t.surface for t in tokens)


def _attached(rest: list[Token]) -> bool:
    """Whether a particle phrase moved before ``rest`` can only belong to its final predicate:
    every other verb in it ends a relative clause (決められた 集積所, 入る 手続き)."""
    for i, tok in enumerate(rest[:-1]):
        if tok.pos1 in ("動詞", "形容詞"):
            j = i + 1
            while j < len(rest) and rest[j].pos1 == "助動詞":
                j += 1
            last = rest[j - 1]
            if j >= len(rest) or rest[j].pos1 != "名詞" or not last.cform.startswith(("連体形", "終止形")):
                return False
    return True


def shared_predicate(tokens: list[Token], limit: int) -> list[str] | None:
    """The final predicate said twice: 朝8時までに、集積所へ 出してください → 朝8時までに 出して
    ください。 集積所へ 出して ください。 Cut after a particle phrase (に, で, へ, から, まで, を)."""
    pred = len(tokens) - 1
    while pred > 0 and not (tokens[pred - 1].pos1 in ("助詞", "補助記号") and tokens[pred - 1].pos2 != "接続助詞"):
        pred -= 1
    if pred <= 1:
        return None
    predicate = _text(tokens[pred:])
    best: tuple[tuple[bool, int], list[str]] | None = None
    for cut in range(1, pred):
        before = tokens[cut - 1] if tokens[cut - 1].surface != "、" else tokens[cut - 2]
        if before.pos2 not in ("格助詞", "副助詞") or before.surface not in _CASES or not starts_phrase(tokens[cut - 1], tokens[cut]):
            continue
        comma = tokens[cut - 1].surface == "、"
        if (tokens[cut].pos1 in ("動詞", "形容詞") or not comma) and not _attached(tokens[cut:pred]):
            continue  # …で|受け取って: the phrase may belong to another verb
        if any(t.surface == "が" and t.pos2 == "格助詞" for t in tokens[:cut]) and not any(t.pos1 == "動詞" for t in tokens[:cut]):
            continue  # 子どもが …に: a subject without its verb
        parts = [_text(tokens[:cut]).rstrip("、") + predicate, _text(tokens[cut:])]
        rank = (not comma, max(map(len, parts)))  # a 、 is where the speaker paused: prefer it
        if rank[1] <= limit and (best is None or rank < best[0]):
            best = (rank, parts)
    return best[1] if best else None
