"""Synthetic fleet messages (valid by their schemas) for the fleet tests."""

from __future__ import annotations

import uuid

from madoguchi.telemetry.schemas import problems

NOW = 1_750_000_000.0  # a fixed "now" for everything time-based
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def utterance(seq: int, ts: float, *, lang: str | None = "ja", side: str | None = "staff", mode: str = "interpret", duration_s: float = 2.0, timings: dict | None = None,
              session: str = "a" * 32, target_lang: str | None = "en", **more: object) -> dict:
    """An utterance usage record; ``more`` adds fields (``rejected``: as boxes send a rejected one, pass lang/side/target_lang None)."""
    record = {
        "id": uuid.uuid4().hex,
        "seq": seq,
        "ts": ts,
        "kind": "utterance",
        "session": session,
        "side": side,
        "lang": lang,
        "target_lang": target_lang,
        "mode": mode,
        "duration_s": duration_s,
        "side_confidence": 0.9,
        "timings_ms": {"asr": 300.0, "mt": 200.0} if timings is None else timings,
        **more,
    }
    assert not problems("usage", record), problems("usage", record)
    return record


def rejected(seq: int, ts: float, reason: str = "no_speech", **kwargs: object) -> dict:
    """A rejected utterance as boxes send it now: why, and no language, side or target."""
    return utterance(seq, ts, lang=None, side=None, target_lang=None, rejected=reason, **kwargs)


def legacy_rejected(seq: int, ts: float, lang: str = "ko", side: str = "resident", **kwargs: object) -> dict:
    """A rejected utterance from a box older than the ``rejected`` field: its guessed language, no target."""
    return utterance(seq, ts, lang=lang, side=side, target_lang=None, **kwargs)


def session_record(seq: int, ts: float, utterances: int = 2, **more: object) -> dict:
    record = {
        "id": uuid.uuid4().hex,
        "seq": seq,
        "ts": ts,
        "kind": "session",
        "session": "b" * 32,
        "started_ts": ts - 60,
        "ended_ts": ts,
        "utterances": utterances,
        "by_side": {"staff": 1, "resident": 1},
        "languages": ["ja"],
        "speech_s": 4.0,
        "mode": "interpret",
        **more,
    }
    assert not problems("usage", record), problems("usage", record)
    return record


def event(seq: int, ts: float, kind: str = "error", code: str = "mic_lost") -> dict:
    return {"id": uuid.uuid4().hex, "seq": seq, "ts": ts, "kind": kind, "code": code, "message": "x"}


def online(version: str = "0.3.0", ts: float = NOW - 30) -> dict:
    return {"state": "online", "version": version, "models": ["m"], "config_hash": "0123456789ab", "ts": ts}


def health(ts: float = NOW - 10, temp: float | None = 55.5, last_error: str | None = None, pending: int = 0, dropped: int = 0) -> dict:
    return {
        "ts": ts,
        "uptime_s": 100.0,
        "cpu_temp_c": temp,
        "last_error": last_error,
        "spool": {"pending": pending, "bytes": 10 * pending, "oldest_age_s": None, "dropped_total": dropped, "dropped": {}},
    }
