"""The admin fleet tools offline: store, status table, report, connection errors."""

from __future__ import annotations

import json
import logging
import re
import socket
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import trustme
from matplotlib.image import imread
from paho.mqtt.enums import MQTTProtocolVersion

from madoguchi.config import MqttSettings
from madoguchi.errors import MadoguchiError
from madoguchi.fleet import charts
from madoguchi.fleet.collect import UNRECORDED, CollectStats, FleetStore, _handle, latency_of, rejected_of
from madoguchi.fleet.connect import close, connect, throwaway_client_id
from madoguchi.fleet.errors import FleetConnectError, FleetInputError, FleetRefusedError, FleetTlsError
from madoguchi.fleet.report import build_report, parse_since, summarize
from madoguchi.fleet.status import BoxRow, apply_message, format_status
from tests.fleet_records import NOW, PNG_MAGIC, event, health, legacy_rejected, online, rejected, session_record, utterance

# --- store --------------------------------------------------------------------------------


def test_store_deduplicates_by_id_and_returns_seq_order(tmp_path: Path) -> None:
    first, second, third = (utterance(n, NOW + n) for n in (1, 2, 3))
    with FleetStore(tmp_path / "sub" / "fleet.sqlite3") as store:
        assert [store.add("s", "b", "usage", r) for r in (third, first, second)] == [True, True, True]
        assert store.add("s", "b", "usage", dict(first)) is False  # QoS 1 redelivery
        store.add("s", "a", "event", event(7, NOW))
        store.commit()
        assert store.count() == 4 and store.count("usage") == 3
    with FleetStore(tmp_path / "sub" / "fleet.sqlite3") as store:  # committed, and readable again
        got = store.records(stream="usage")
        assert [r.seq for r in got] == [1, 2, 3]
        assert got[0].payload == first and got[0].id == first["id"]
        assert [r.box for r in store.records()] == ["a", "b", "b", "b"]
        assert [r.seq for r in store.records(since_ts=NOW + 2)] == [2, 3]
    mode = sqlite3.connect(tmp_path / "sub" / "fleet.sqlite3").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_latency_prefers_latency_ms_else_sums_timings(tmp_path: Path) -> None:
    assert latency_of({"timings_ms": {"asr": 100, "mt": 50, "latency_ms": 400}}) == 400
    assert latency_of({"timings_ms": {"asr": 100, "mt": 50}}) == 150
    assert latency_of({"timings_ms": {}}) is None
    with FleetStore(tmp_path / "f.sqlite3") as store:
        store.add("s", "b", "usage", utterance(1, NOW, timings={"asr": 100.0, "latency_ms": 900.0}))
        store.add("s", "b", "usage", session_record(2, NOW))
        assert [r.latency_ms for r in store.records()] == [900.0, None]


def test_invalid_records_are_counted_and_logged_once_per_box(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stats = CollectStats()
    bad = dict(utterance(1, NOW), side="nobody")
    messages = [
        SimpleNamespace(topic="madoguchi/v1/s/b1/usage", payload=json.dumps(bad).encode()),
        SimpleNamespace(topic="madoguchi/v1/s/b1/usage", payload=b"{not json"),
        SimpleNamespace(topic="madoguchi/v1/s/b2/event", payload=json.dumps(event(1, NOW, code="Bad Code")).encode()),
        SimpleNamespace(topic="madoguchi/v1/s/b1/usage", payload=json.dumps(utterance(2, NOW)).encode()),
    ]
    with FleetStore(tmp_path / "f.sqlite3") as store, caplog.at_level(logging.WARNING, logger="madoguchi.fleet.collect"):
        for message in messages:
            _handle(store, message, stats)
        assert store.count() == 1
    assert (stats.received, stats.stored, stats.invalid) == (4, 1, 3)
    assert stats.invalid_by_box == {"s/b1": 2, "s/b2": 1}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and any("s/b1" in w for w in warnings) and any("s/b2" in w for w in warnings)


# --- parse_since --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), (" 1.5h ", 5400), ("2w", 14 * 86400), ("45s", 45), ("3D", 3 * 86400)])
def test_parse_since(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "0h", "7 days", "1h30m"])
def test_parse_since_rejects_bad_input_clearly(text: str) -> None:
    with pytest.raises(FleetInputError, match=r"e\.g\. 30m, 12h, 7d") as caught:
        parse_since(text)
    assert isinstance(caught.value, MadoguchiError) and isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)


# --- status table -------------------------------------------------------------------------


def test_apply_message_folds_status_and_health_and_notes_invalid_payloads() -> None:
    rows: dict = {}
    apply_message(rows, "madoguchi/v1/hall/b1/status", json.dumps(online("1.2.0")).encode())
    counter = {"mode": "easy_japanese", "resident_lang": "vi", "muted": False, "swapped": False}
    apply_message(rows, "madoguchi/v1/hall/b1/health", json.dumps({**health(temp=61.0, pending=3, dropped=1, last_error="mic_lost"), "counter": counter, "panels": 2}).encode())
    apply_message(rows, "madoguchi/v1/hall/b2/status", json.dumps({"state": "online"}).encode())  # lacks version etc.
    apply_message(rows, "madoguchi/v1/hall/b3/status", b"")  # a cleared retained message
    apply_message(rows, "elsewhere/x", b"{}")
    b1 = rows[("hall", "b1")]
    assert (b1.state, b1.version, b1.cpu_temp_c, b1.spool_pending, b1.spool_dropped, b1.last_error) == ("online", "1.2.0", 61.0, 3, 1, "mic_lost")
    assert b1.last_seen == NOW - 10
    assert (b1.mode, b1.muted, b1.panels) == ("easy_japanese", False, 2)
    assert rows[("hall", "b2")].state == "unknown" and rows[("hall", "b2")].problems
    assert set(rows) == {("hall", "b1"), ("hall", "b2")}


def test_format_status_puts_offline_first_and_shows_every_field() -> None:
    rows = [
        BoxRow("west", "b1", "online", version="0.3.0", status_ts=NOW - 40, health_ts=NOW - 5, cpu_temp_c=52.25, spool_pending=0, spool_dropped=0),
        BoxRow("east", "b9", "online", version="0.3.0", status_ts=NOW - 50, health_ts=NOW - 20, cpu_temp_c=70.0, last_error="mic_lost", spool_pending=12, spool_dropped=3,
               mode="caption", muted=True, panels=1),
        BoxRow("west", "b2", "offline", reason="connection_lost", version="0.2.9", status_ts=NOW - 7200, health_ts=NOW - 7300),
        BoxRow("east", "b1", "online", version="0.3.0", status_ts=NOW - 3 * 86400),
    ]
    text = format_status(rows, NOW)
    lines = text.splitlines()
    assert lines[0] == "4 boxes: 3 online, 1 offline"
    assert lines[1].split()[:3] == ["STATE", "SITE", "BOX"]
    body = [line.split() for line in lines[2:]]
    assert [(b[0], b[1], b[2]) for b in body] == [("OFFLINE", "west", "b2"), ("online?", "east", "b1"), ("online", "east", "b9"), ("online", "west", "b1")]
    offline = lines[2]
    assert "2h00m ago" in offline and "connection_lost" in offline and "0.2.9" in offline
    east_b9 = lines[4]
    assert "70.0C" in east_b9 and "mic_lost" in east_b9 and "12/3" in east_b9 and "20s ago" in east_b9
    assert "caption,muted" in east_b9 and "1/2 panels" in east_b9
    assert "52.2C" in lines[5] or "52.3C" in lines[5]
    assert "3d0h ago" in lines[3]
    assert datetime.fromtimestamp(NOW - 5).strftime("%m-%d %H:%M") in lines[5]
    assert format_status([], NOW).startswith("no box has published")


# --- report -------------------------------------------------------------------------------


def _fill(store: FleetStore) -> dict:
    """Three boxes on two sites over two days, plus one record outside the window; returns the expected summary."""
    day = 86400.0
    seq = {"a": 0, "b": 0, "c": 0}

    def add(site: str, box: str, stream: str, make, *args, **kwargs) -> None:
        seq[box] += 1
        store.add(site, box, stream, make(seq[box], *args, **kwargs))

    for n in range(10):
        add("hall", "a", "usage", utterance, NOW - 3600 * n, lang=["ja", "en", "vi"][n % 3], side="staff" if n % 2 else "resident", duration_s=3.0, timings={"latency_ms": 800.0 + 10 * n})
    for n in range(6):
        add("hall", "b", "usage", utterance, NOW - day - 600 * n, lang=["pt", None][n % 2], mode="caption", duration_s=6.0)
    add("hall", "b", "usage", session_record, NOW - day)
    add("annex", "c", "usage", utterance, NOW - 60, lang="zh", duration_s=12.0)
    add("annex", "c", "usage", session_record, NOW - 30)
    add("annex", "c", "event", event, NOW - 20)
    add("annex", "c", "event", event, NOW - 10, kind="operator_call", code="help")
    add("annex", "c", "usage", utterance, NOW - 30 * day, lang="ko")  # outside a 7-day window
    store.commit()
    return {"boxes": 3, "utterances": 17, "sessions": 2, "languages": ("en", "ja", "pt", "vi", "zh"), "speech_min": (30 + 36 + 12) / 60}


def test_report_from_synthetic_usage(tmp_path: Path) -> None:
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        expected = _fill(store)
        page = build_report(store, parse_since("7d"), tmp_path / "out", now=NOW)
        summary = summarize(store.records(since_ts=NOW - 7 * 86400, until_ts=NOW))
    assert page == tmp_path / "out" / "index.html"
    assert (summary.boxes, summary.utterances, summary.sessions, summary.languages) == (expected["boxes"], expected["utterances"], expected["sessions"], expected["languages"])
    assert summary.speech_min == pytest.approx(expected["speech_min"])
    a = summary.per_box[[b.label for b in summary.per_box].index("hall/a")]
    assert (a.staff, a.resident, a.latency_p50_ms) == (5, 5, pytest.approx(845.0))
    assert summary.per_box[0].label == "annex/c" and summary.per_box[0].errors == 1 and summary.per_box[0].events == 2

    text = page.read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', text)
    assert set(images) == {"hours.png", "days.png", "boxes.png", "latency.png", "latency_boxes.png", "sides.png", "events.png"}
    for name in images:
        data = (page.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        height, width, _ = imread(page.parent / name).shape
        assert width >= 400 and height >= 150
    assert "<script" not in text and "http" not in text.split("</style>")[1].split("Generated")[0]
    overview = re.search(r"<h2>Summary</h2><table>.*?<tbody><tr>(.*?)</tr>", text).group(1)
    assert re.findall(r"<td>([^<]*)</td>", overview) == ["3", "17", "0", "2", "5", "1.3"]
    assert "<td>hall/a</td><td>10</td><td>0</td><td>0</td><td>en ja vi</td><td>0.5</td><td>5</td><td>5</td><td>845</td>" in text
    assert "mic_lost" in text and "ko" not in re.sub(r"<style>.*?</style>", "", text, flags=re.DOTALL).split("Languages:")[1].split("</p>")[0]


def test_report_with_no_data_says_so_and_drops_old_charts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "hours.png").write_bytes(b"old")
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        page = build_report(store, 3600, out, now=NOW)
    text = page.read_text(encoding="utf-8")
    assert "<img" not in text and "No data in this period." in text
    assert not list(out.glob("*.png"))


# --- connecting -----------------------------------------------------------------------------


def _fake_broker(answers: list[bytes]) -> tuple[int, list[int], threading.Thread]:
    """A TCP server answering the n-th CONNECT with answers[n]; records each CONNECT's protocol level."""
    server = socket.create_server(("127.0.0.1", 0))
    levels: list[int] = []

    def serve() -> None:
        with server:
            for answer in answers:
                conn, _ = server.accept()
                with conn:
                    data = conn.recv(4096)
                    levels.append(data[8])  # fixed header(2) + "\0\4MQTT"(6) -> protocol level
                    conn.sendall(answer)
                    if answer.endswith(b"\x00\x00"):  # accepted: wait for the client to hang up
                        conn.settimeout(5)
                        while conn.recv(4096):
                            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], levels, thread


def test_connect_falls_back_to_mqtt_311_when_the_broker_refuses_5() -> None:
    port, levels, thread = _fake_broker([b"\x20\x02\x00\x01", b"\x20\x02\x00\x00"])  # "unacceptable protocol version", then accepted
    client = connect(MqttSettings(host="127.0.0.1", port=port, tls=False), "fallback-test")
    close(client)
    thread.join(5)
    assert levels == [5, 4]


def test_connect_errors_name_the_broker_and_the_cause(tmp_path: Path) -> None:
    with pytest.raises(FleetInputError, match="host is empty"):
        connect(MqttSettings(), "x")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening
        with pytest.raises(FleetConnectError, match=f"127.0.0.1:{port}: nothing is listening") as caught:
            connect(MqttSettings(host="127.0.0.1", port=port, tls=False), "x")
    assert caught.value.code == "broker_unreachable" and isinstance(caught.value, MadoguchiError)
    with pytest.raises(FleetInputError, match="password_file .*missing"):
        connect(MqttSettings(host="127.0.0.1", port=port, username="u", password_file=str(tmp_path / "missing")), "x")


def test_connect_errors_against_the_real_broker(broker, tmp_path: Path) -> None:
    admin = broker.admin()
    where = f"{broker.host}:{broker.port}"
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-the-password\n", encoding="utf-8")
    settings = broker.mqtt_settings(admin, "x", "y", spool_path=tmp_path / "unused", password_file=wrong)
    with pytest.raises(FleetRefusedError, match=f"{re.escape(where)} refused the connection as user 'admin': ") as refused:
        connect(settings, throwaway_client_id("test"))
    assert refused.value.code == "broker_refused"
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(FleetTlsError, match=f"{re.escape(where)}: TLS failure: server certificate not accepted \\(self-signed") as tls:
        connect(broker.mqtt_settings(admin, "x", "y", spool_path=tmp_path / "unused", ca_file=other_ca), throwaway_client_id("test"))
    assert tls.value.code == "broker_tls" and isinstance(tls.value, ConnectionError)
    with pytest.raises(FleetConnectError, match=f"{re.escape(where)}: closed the connection without answering"):
        connect(broker.mqtt_settings(admin, "x", "y", spool_path=tmp_path / "unused", tls=False), throwaway_client_id("test"))
    client = connect(broker.mqtt_settings(admin, "x", "y", spool_path=tmp_path / "unused", protocol="3.1.1"), throwaway_client_id("test"))
    assert client.protocol == MQTTProtocolVersion.MQTTv311
    close(client)


# --- speech that was not understood ---------------------------------------------------------


def test_rejected_utterances_are_stored_apart_with_no_language_or_side(tmp_path: Path) -> None:
    now_style = rejected(2, NOW, "low_confidence")
    old_style = legacy_rejected(3, NOW, lang="ko")  # a box older than the field: the guessed language, no target
    frontend_only = utterance(4, NOW, lang=None, target_lang=None)  # `--stages frontend`: never transcribed, not rejected
    assert (rejected_of(now_style), rejected_of(old_style), rejected_of(frontend_only), rejected_of(utterance(1, NOW))) == ("low_confidence", UNRECORDED, None, None)
    assert rejected_of(session_record(5, NOW)) is None
    with FleetStore(tmp_path / "f.sqlite3") as store:
        for record in (utterance(1, NOW), now_style, old_style, frontend_only):
            store.add("s", "b", "usage", record)
        store.commit()
        got = {r.seq: r for r in store.records()}
    assert (got[1].rejected, got[1].lang, got[1].side, got[1].understood) == (None, "ja", "staff", True)
    assert (got[2].rejected, got[2].lang, got[2].side, got[2].understood) == ("low_confidence", None, None, False)
    assert (got[3].rejected, got[3].lang, got[3].side) == (UNRECORDED, None, None)
    assert got[3].payload["lang"] == "ko"  # the payload stays as the box sent it
    assert got[4].understood and got[4].lang is None


def test_a_database_from_before_the_rejected_column_is_upgraded_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    columns = ("id", "site", "box", "stream", "seq", "ts", "kind", "lang", "side", "mode", "session", "code", "duration_s", "latency_ms", "received_ts", "payload")
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE records (id TEXT PRIMARY KEY, site TEXT NOT NULL, box TEXT NOT NULL, stream TEXT NOT NULL, seq INTEGER NOT NULL,
        ts REAL NOT NULL, kind TEXT NOT NULL, lang TEXT, side TEXT, mode TEXT, session TEXT, code TEXT, duration_s REAL, latency_ms REAL,
        received_ts REAL NOT NULL, payload TEXT NOT NULL);""")
    for record in (utterance(1, NOW, lang="es"), legacy_rejected(2, NOW, lang="ko"), session_record(3, NOW)):
        row = {**{c: record.get(c) for c in columns}, "site": "s", "box": "b", "stream": "usage", "received_ts": NOW, "payload": json.dumps(record)}
        db.execute(f"INSERT INTO records ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", [row[c] for c in columns])
    db.commit()
    db.close()
    with FleetStore(path) as store:
        got = {r.seq: r for r in store.records()}
        assert (got[1].rejected, got[1].lang) == (None, "es")
        assert (got[2].rejected, got[2].lang, got[2].side) == (UNRECORDED, None, None)
        assert got[3].rejected is None
        store.add("s", "b", "usage", rejected(4, NOW))  # and new records go in as usual
        store.commit()
        assert store.count() == 4
    with FleetStore(path) as store:  # opening it again changes nothing
        assert [r.rejected for r in store.records()] == [None, UNRECORDED, None, "no_speech"]


def test_the_report_counts_languages_from_understood_speech_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue: a 0.38 s fragment identified as Korean, rejected, was a Korean bar in the language plot."""
    drawn: dict[str, dict] = {}
    for name in ("stacked_bars", "stacked_hbars"):
        real = getattr(charts, name)

        def spy(path, labels, series, *args, _real=real, **kwargs):
            drawn[Path(path).name] = {"labels": list(labels), "series": {k: list(v) for k, v in series.items()}}
            return _real(path, labels, series, *args, **kwargs)

        monkeypatch.setattr(charts, name, spy)
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        seq = iter(range(1, 100))
        for n in range(4):
            store.add("hall", "es-desk", "usage", utterance(next(seq), NOW - 600 * n, lang=["ja", "es"][n % 2], side=["staff", "resident"][n % 2], timings={"latency_ms": 900.0}))
        store.add("hall", "es-desk", "usage", rejected(next(seq), NOW - 100, "low_confidence", timings={"latency_ms": 5000.0}))
        store.add("hall", "es-desk", "usage", legacy_rejected(next(seq), NOW - 90, lang="ko", duration_s=0.38))
        store.add("hall", "en-desk", "usage", utterance(next(seq), NOW - 80, lang="en", side="resident"))
        store.add("hall", "en-desk", "usage", rejected(next(seq), NOW - 70, "hallucination"))
        store.add("hall", "en-desk", "usage", rejected(next(seq), NOW - 60, "no_speech"))
        store.add("hall", "idle", "usage", rejected(next(seq), NOW - 50, "no_speech"))  # noise at an empty counter
        store.add("hall", "idle", "usage", session_record(next(seq), NOW - 40, utterances=0, rejected=1))
        store.commit()
        page = build_report(store, parse_since("1d"), tmp_path / "out", now=NOW)
        summary = summarize(store.records(since_ts=NOW - 86400, until_ts=NOW))
    assert summary.languages == ("en", "es", "ja") and (summary.utterances, summary.not_understood, summary.sessions) == (5, 5, 0)
    es = next(b for b in summary.per_box if b.box == "es-desk")
    assert (es.utterances, es.not_understood, es.staff, es.resident, es.latency_p95_ms) == (4, 2, 2, 2, pytest.approx(900.0))
    hours = drawn["hours.png"]["series"]
    assert set(hours) == {"ja", "es", "en"} and sum(map(sum, hours.values())) == 5  # no Korean bar, no "unknown" bar
    assert sum(drawn["days.png"]["series"]["hall"]) == 5
    assert drawn["sides.png"]["series"] == {"staff": [0, 2, 0], "resident": [1, 2, 0]}  # boxes sorted: en-desk, es-desk, idle
    assert drawn["boxes.png"]["series"]["not understood"] == [2, 2, 1]
    assert drawn["not_understood.png"]["series"] == {"no_speech": [1, 0, 1], "low_confidence": [0, 1, 0], "hallucination": [1, 0, 0], UNRECORDED: [0, 1, 0]}
    text = page.read_text(encoding="utf-8")
    assert '<img src="not_understood.png"' in text and (page.parent / "not_understood.png").read_bytes().startswith(PNG_MAGIC)
    assert "<td>hall/es-desk</td><td>4</td><td>2</td>" in text and "<td>hall/es-desk</td><td>low_confidence</td><td>1</td>" in text
    assert "ko" not in text.split("Languages:")[1].split("</p>")[0]


def test_fleet_status_notes_a_box_whose_speech_comes_from_outside_its_sides() -> None:
    rows: dict = {}
    placement = {"off_sector": True, "window_s": 300.0, "heard_s": 20.9, "off_sector_s": 9.3, "share": 0.45,
                 "directions": [{"azimuth_deg": 104.0, "seconds": 11.6, "side": "resident"}, {"azimuth_deg": 260.4, "seconds": 9.3, "side": None}]}
    apply_message(rows, "madoguchi/v1/hall/b1/status", json.dumps(online()).encode())
    apply_message(rows, "madoguchi/v1/hall/b1/health", json.dumps({**health(), "placement": placement}).encode())
    apply_message(rows, "madoguchi/v1/hall/b2/health", json.dumps({**health(), "placement": {**placement, "off_sector": False}}).encode())
    assert rows[("hall", "b1")].off_sector == "45 % from 260 deg" and rows[("hall", "b2")].off_sector is None
    text = format_status(list(rows.values()), NOW)
    assert "speech outside the sides (45 % from 260 deg): check [sides], madoguchi calibrate" in text
    assert text.count("speech outside the sides") == 1

