"""Payloads the box publishes, built from pipeline events: pure functions, no I/O.

Usage records carry counts, languages, durations and timings. The words themselves (``text``,
``translation``) are added only when the site has set ``[mqtt] share_transcripts = true``.

They say what happened: an utterance in which ASR found no words (``rejected``: no_speech,
hallucination, repetition, low_confidence, empty) is counted as rejected, with why, and under no
language and no side: the language identified on noise, and the side it corrected, were guesses.
Records spooled before ``rejected`` existed lack the key; the fleet side reads those too
(``fleet/collect.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from madoguchi import __version__
from madoguchi.events import Utterance

MODES = ("interpret", "caption", "easy_japanese")


def status_online(config_hash: str, models: list[str], ts: float) -> dict[str, Any]:
    return {"state": "online", "version": __version__, "models": models, "config_hash": config_hash, "ts": round(ts, 3)}


def status_offline(reason: str, ts: float | None = None) -> dict[str, Any]:
    """``reason`` is shutdown (said by the box) or connection_lost (the will, said by the broker)."""
    message: dict[str, Any] = {"state": "offline", "reason": reason}
    if ts is not None:
        message["ts"] = round(ts, 3)
    return message


def utterance_usage(utterance: Utterance, session: str, *, mode: str = "interpret", lang: str | None = None, target_lang: str | None = None,
                    timings_ms: dict[str, float] | None = None, text: str | None = None, translation: str | None = None, share_transcripts: bool = False,
                    side: str | None = None, rejected: str | None = None) -> dict[str, Any]:
    """One utterance's usage record (without id/seq/ts: the spool assigns those).

    ``side``: the side the counter was shown (corrected by language ID), default the front end's.
    ``rejected``: why ASR found no words; such a record carries no language, side or words.
    """
    understood = rejected is None
    record: dict[str, Any] = {
        "kind": "utterance",
        "session": session,
        "side": (side or utterance.side) if understood else None,
        "lang": lang if understood else None,
        "target_lang": target_lang if understood else None,
        "rejected": rejected,
        "mode": mode,
        "duration_s": round(utterance.duration_s, 3),
        "side_confidence": utterance.side_confidence,
        # The endpointer's share of the latency is known for every utterance; later stages add theirs.
        "timings_ms": {k: round(v, 1) for k, v in {"endpoint_ms": (utterance.decided_at_s - utterance.end_s) * 1000, **(timings_ms or {})}.items()},
    }
    if share_transcripts and understood:  # the one place words may enter telemetry, and only when asked to
        if text is not None:
            record["text"] = text
        if translation is not None:
            record["translation"] = translation
    return record


def event(kind: str, code: str, message: str = "") -> dict[str, Any]:
    return {"kind": kind, "code": code, "message": message[:500]}


@dataclass
class Session:
    """A conversation at the counter: utterances with no pause longer than the idle limit."""

    id: str
    started_ts: float
    last_ts: float
    mode: str = "interpret"
    utterances: int = 0
    speech_s: float = 0.0
    by_side: dict[str, int] = field(default_factory=lambda: {"staff": 0, "resident": 0})
    languages: set[str] = field(default_factory=set)
    rejected: int = 0  # utterances in which ASR found no words: not in the counts above

    def add(self, utterance: Utterance, ts: float, lang: str | None, side: str | None = None, rejected: str | None = None) -> None:
        self.last_ts = ts
        if rejected is not None:
            self.rejected += 1
            return
        self.utterances += 1
        self.speech_s += utterance.duration_s
        self.by_side[side or utterance.side] += 1
        if lang:
            self.languages.add(lang)

    def record(self) -> dict[str, Any]:
        return {
            "kind": "session",
            "session": self.id,
            "started_ts": round(self.started_ts, 3),
            "ended_ts": round(self.last_ts, 3),
            "utterances": self.utterances,
            "by_side": dict(self.by_side),
            "languages": sorted(self.languages),
            "speech_s": round(self.speech_s, 3),
            "rejected": self.rejected,
            "mode": self.mode,
        }


class SessionTracker:
    """Groups utterances into sessions; a pause over ``idle_s`` ends one. Time comes in, never read."""

    def __init__(self, idle_s: float, new_id: Callable[[], str]) -> None:
        self._idle_s = idle_s
        self._new_id = new_id
        self.current: Session | None = None

    def on_utterance(self, utterance: Utterance, ts: float, lang: str | None = None, mode: str = "interpret", *,
                     side: str | None = None, rejected: str | None = None) -> tuple[str, dict[str, Any] | None]:
        """The session this utterance belongs to, and the record of a session it ended, if any.

        A session's ``mode`` is the last one used in it: a clerk who switches to captions for a
        deaf resident does so at the start of the conversation. A rejected utterance keeps the
        session going but is counted apart (``rejected``), never as an utterance, side or language."""
        ended = self.expire(ts)
        if self.current is None:
            self.current = Session(self._new_id(), started_ts=ts - utterance.duration_s, last_ts=ts)
        self.current.add(utterance, ts, lang, side, rejected)
        self.current.mode = mode
        return self.current.id, ended

    def expire(self, now: float) -> dict[str, Any] | None:
        """End the current session if it has been idle too long (call it now and then)."""
        if self.current is not None and now - self.current.last_ts > self._idle_s:
            ended, self.current = self.current.record(), None
            return ended
        return None

    def close(self) -> dict[str, Any] | None:
        """End the current session now (shutdown)."""
        ended, self.current = (self.current.record() if self.current else None), None
        return ended
