"""Telemetry payloads and sessions, built by pure functions: schemas hold, words stay home."""

from __future__ import annotations

import itertools

import numpy as np

from madoguchi.events import Utterance
from madoguchi.telemetry import health, messages
from madoguchi.telemetry.schemas import problems
from madoguchi.telemetry.topics import Topics, split_topic


def utterance(side: str = "staff", duration: float = 1.5) -> Utterance:
    return Utterance(0.0, duration, side, 270.0, 20.0, 0.9, False, duration + 0.3, "silence", -0.25, np.zeros(0, np.float32))


def envelope(record: dict, seq: int = 1) -> dict:
    return {"id": "0" * 32, "seq": seq, "ts": 1.0, **record}


def test_usage_carries_no_words_unless_shared() -> None:
    plain = messages.utterance_usage(utterance(), "a" * 32, lang="ja", target_lang="en", timings_ms={"vad_ms": 1.0}, text="住民票", translation="certificate")
    assert "text" not in plain and "translation" not in plain and not problems("usage", envelope(plain))
    shared = messages.utterance_usage(utterance(), "a" * 32, text="住民票", translation="certificate", share_transcripts=True)
    assert shared["text"] == "住民票" and not problems("usage", envelope(shared))


def test_sessions_end_after_an_idle_pause() -> None:
    ids = (f"{i:032x}" for i in itertools.count(1))
    tracker = messages.SessionTracker(idle_s=60.0, new_id=lambda: next(ids))
    first, ended = tracker.on_utterance(utterance("staff"), ts=100.0, lang="ja")
    assert ended is None
    same, ended = tracker.on_utterance(utterance("resident", 2.0), ts=130.0, lang="ja", mode="caption")
    assert same == first and ended is None
    second, ended = tracker.on_utterance(utterance("staff"), ts=300.0, lang="ja")
    assert second != first
    assert ended == {"kind": "session", "session": first, "started_ts": 98.5, "ended_ts": 130.0, "utterances": 2, "by_side": {"staff": 1, "resident": 1},
                     "languages": ["ja"], "speech_s": 3.5, "rejected": 0, "mode": "caption"}
    assert not problems("usage", envelope(ended))
    assert tracker.expire(330.0) is None and tracker.expire(400.0)["session"] == second
    assert tracker.close() is None


def test_a_rejected_utterance_is_counted_as_such_under_no_language_or_side() -> None:
    """The issue's Korean bar: 0.38 s identified as ko, no words; the fleet must not see a Korean resident."""
    fragment = utterance("resident", 0.38)
    record = messages.utterance_usage(fragment, "a" * 32, lang="ko", target_lang=None, side="resident", rejected="low_confidence",
                                      timings_ms={"asr_ms": 300.0}, text="", translation=None, share_transcripts=True)
    assert (record["rejected"], record["lang"], record["side"], record["target_lang"]) == ("low_confidence", None, None, None)
    assert "text" not in record and not problems("usage", envelope(record))
    # The schema holds every box to it: a rejected record with a language (or side, or words) is invalid.
    for key, value in (("lang", "ko"), ("side", "resident"), ("target_lang", "ja"), ("text", "x")):
        assert problems("usage", envelope({**record, key: value})), key
    understood = messages.utterance_usage(utterance("staff"), "a" * 32, lang="ja", target_lang="en", side="resident")
    assert understood["rejected"] is None and understood["side"] == "resident"  # the side shown (language ID corrected it), not the front end's
    assert problems("usage", envelope({**understood, "side": None}))
    # Records spooled before the field existed stay valid.
    legacy = {k: v for k, v in messages.utterance_usage(utterance(), "a" * 32, lang="ja", target_lang="en").items() if k != "rejected"}
    assert not problems("usage", envelope(legacy))
    assert not problems("usage", envelope({k: v for k, v in {**legacy, "lang": "ko", "target_lang": None}.items()}))


def test_sessions_count_rejected_utterances_apart() -> None:
    ids = (f"{i:032x}" for i in itertools.count(1))
    tracker = messages.SessionTracker(idle_s=60.0, new_id=lambda: next(ids))
    first, _ = tracker.on_utterance(utterance("staff"), ts=100.0, lang="ja")
    same, _ = tracker.on_utterance(utterance("resident", 0.4), ts=110.0, lang="ko", side="resident", rejected="no_speech")
    assert same == first  # it keeps the conversation going
    tracker.on_utterance(utterance("staff", 2.0), ts=120.0, lang="en", side="resident")  # language ID moved it to the resident
    ended = tracker.close()
    assert (ended["utterances"], ended["rejected"], ended["by_side"], ended["languages"], ended["speech_s"]) == (2, 1, {"staff": 1, "resident": 1}, ["en", "ja"], 3.5)
    assert ended["ended_ts"] == 120.0 and not problems("usage", envelope(ended))
    legacy = {k: v for k, v in ended.items() if k != "rejected"}
    assert not problems("usage", envelope(legacy))


def test_status_and_health_match_their_schemas() -> None:
    assert not problems("status", messages.status_online("0123456789ab", ["silero-vad-6.2"], 5.0))
    assert not problems("status", messages.status_offline("connection_lost"))
    reading = health.readings("/tmp", mic_level_dbfs=-62.04, audio_state="capturing", last_error=None,
                              spool={"pending": 0, "bytes": 0, "oldest_age_s": None, "dropped_total": 0, "dropped": {}}, ts=1.0)
    assert not problems("health", reading) and reading["mic_level_dbfs"] == -62.0 and reading["uptime_s"] > 0
    with_faces = health.readings("/tmp", mic_level_dbfs=None, audio_state="capturing", last_error="display_unavailable", ts=1.0, panels=1,
                                 spool={"pending": 0, "bytes": 0, "oldest_age_s": None, "dropped_total": 0, "dropped": {}},
                                 counter={"mode": "caption", "resident_lang": None, "muted": True, "swapped": False})
    assert not problems("health", with_faces)
    assert problems("health", {**with_faces, "counter": {**with_faces["counter"], "mode": "karaoke"}})
    placement = {"off_sector": True, "window_s": 300.0, "heard_s": 20.9, "off_sector_s": 9.3, "share": 0.445,
                 "directions": [{"azimuth_deg": 104.0, "seconds": 11.6, "side": "resident"}, {"azimuth_deg": 260.0, "seconds": 9.3, "side": None}]}
    with_placement = health.readings("/tmp", mic_level_dbfs=None, audio_state="capturing", last_error=None, ts=1.0, placement=placement,
                                     spool={"pending": 0, "bytes": 0, "oldest_age_s": None, "dropped_total": 0, "dropped": {}})
    assert not problems("health", with_placement) and with_placement["placement"]["off_sector"]
    assert problems("health", {**with_placement, "placement": {**placement, "share": 1.5}})


def test_event_schema_rejects_text_beyond_500_characters() -> None:
    assert not problems("event", envelope(messages.event("operator_call", "operator_call", "desk 3")))
    assert len(messages.event("error", "mic_lost", "x" * 900)["message"]) == 500


def test_topics() -> None:
    topics = Topics("city-hall", "desk-1")
    assert topics.commands == "madoguchi/v1/city-hall/desk-1/cmd/+"
    assert topics.command_name("madoguchi/v1/city-hall/desk-1/cmd/ping") == "ping"
    assert topics.command_name("madoguchi/v1/city-hall/desk-2/cmd/ping") is None
    assert topics.command_name("madoguchi/v1/city-hall/desk-1/cmd/a/b") is None
    assert split_topic(topics.usage) == ("city-hall", "desk-1", "usage")
