"""Sentence splitting before translation, and joining after.

MT models are trained on single sentences; a long utterance translated in one piece loses or
repeats clauses. Splitting happens on sentence-final punctuation only (Whisper punctuates):
CJK and full-width marks end a sentence anywhere, ``. ! ?``, the Devanagari danda and the
Myanmar section mark only before a space (so ``3.5`` and ``v1.2`` stay whole). Thai has no
sentence punctuation and stays whole; overly long pieces are cut by token count in the engine.
"""

from __future__ import annotations

import re

_END = re.compile(r"[。！？．!?]+[」』）)\"'’”]*\s*|[.।॥။]+[\"'’”)]*\s+")
_CLAUSE = re.compile(r"[、，]\s*|,\s+")  # Whisper writes "Hello, I need …" and "こんにちは、ご用件を…" as one sentence
_CLAUSE_GLUE = {"ja": "、", "zh": "，"}
NO_SPACE_BETWEEN_SENTENCES = frozenset({"ja", "zh"})


def split_sentences(text: str) -> list[str]:
    """Non-empty sentences, each keeping its final punctuation."""
    parts, start = [], 0
    for match in _END.finditer(text):
        parts.append(text[start:match.end()].strip())
        start = match.end()
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def join_sentences(sentences: list[str], lang: str) -> str:
    """Japanese and Chinese sentences follow each other without a space; other languages with one."""
    glue = "" if lang in NO_SPACE_BETWEEN_SENTENCES else " "
    return glue.join(s for s in (s.strip() for s in sentences) if s)


def split_clauses(sentence: str) -> list[str]:
    """A sentence's comma-separated clauses ("Hello, I need to register my new address.")."""
    return [c.strip() for c in _CLAUSE.split(sentence) if c.strip()]


def join_clauses(clauses: list[str], lang: str) -> str:
    """Clauses back into one sentence, each clause's own final stop dropped but the last one's."""
    glue = _CLAUSE_GLUE.get(lang, ", ")
    trimmed = [c.rstrip("。.") for c in clauses[:-1]] + clauses[-1:]
    # Inside a sentence a clause starts small ("Hello, how can I …"), but "I" and names keep their capital.
    trimmed[1:] = [c[0].lower() + c[1:] if len(c) > 1 and c[0].isupper() and c[1].islower() else c for c in trimmed[1:]]
    return glue.join(trimmed)
