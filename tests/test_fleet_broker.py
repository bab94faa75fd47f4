"""The admin fleet tools against a real mosquitto: status from retained messages, collection that misses nothing."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from madoguchi.fleet.collect import FleetStore, collect
from madoguchi.fleet.connect import close, connect, inbox, throwaway_client_id
from madoguchi.fleet.errors import FleetInputError
from madoguchi.fleet.status import collect_status, format_status
from tests.fleet_records import event, health, online, utterance

# --- status and collection against mosquitto ---------------------------------------------


def _as_box(broker, tmp_path: Path, site: str, box: str):
    login = broker.add_box(site, box)
    return connect(broker.mqtt_settings(login, site, box, spool_path=tmp_path / f"{box}.spool"), throwaway_client_id(box))


def _publish(client, topic: str, payload: dict | bytes, retain: bool = False) -> None:
    info = client.publish(topic, payload if isinstance(payload, bytes) else json.dumps(payload), qos=1, retain=retain)
    info.wait_for_publish(5)
    assert info.is_published()


def _admin(broker, tmp_path: Path, client_id: str | None = None, clean: bool = True):
    settings = broker.mqtt_settings(broker.admin(), "admin", "admin", spool_path=tmp_path / "admin.spool")
    return connect(settings, client_id or throwaway_client_id("status"), clean=clean)


def test_status_shows_every_box_from_retained_messages(broker, tmp_path: Path) -> None:
    site = f"st-{uuid.uuid4().hex[:6]}"
    now = time.time()
    sent = {
        "b1": (online("0.4.0", now - 5), health(now - 2, temp=48.0, pending=0)),
        "b2": (online("0.4.1", now - 9), health(now - 3, temp=71.5, last_error="mic_lost", pending=7, dropped=2)),
        "b3": ({"state": "offline", "reason": "connection_lost"}, health(now - 600, temp=None)),
    }
    for box, (status, box_health) in sent.items():
        client = _as_box(broker, tmp_path, site, box)
        _publish(client, f"madoguchi/v1/{site}/{box}/status", status, retain=True)
        _publish(client, f"madoguchi/v1/{site}/{box}/health", box_health, retain=True)
        close(client)
    admin = _admin(broker, tmp_path)
    try:
        started = time.monotonic()
        rows = [r for r in collect_status(admin, wait_s=10.0) if r.site == site]
        assert time.monotonic() - started < 5.0  # returns once the retained burst is over, not after wait_s
    finally:
        close(admin)
    assert [(r.box, r.state, r.version, r.cpu_temp_c, r.last_error, r.spool_pending, r.spool_dropped) for r in rows] == [
        ("b1", "online", "0.4.0", 48.0, None, 0, 0),
        ("b2", "online", "0.4.1", 71.5, "mic_lost", 7, 2),
        ("b3", "offline", None, None, None, 0, 0),
    ]
    assert rows[0].last_seen == pytest.approx(now - 2) and rows[2].reason == "connection_lost"
    text = format_status(rows, now)
    assert text.splitlines()[2].startswith("OFFLINE") and f"{site}  b3" in text.splitlines()[2]
    for box in sent:  # tidy up the shared broker: an empty retained payload deletes the retained message
        client = _as_box(broker, tmp_path, site, box)
        _publish(client, f"madoguchi/v1/{site}/{box}/status", b"", retain=True)
        _publish(client, f"madoguchi/v1/{site}/{box}/health", b"", retain=True)
        close(client)


def test_collect_gets_what_was_published_while_away_once_and_in_order(broker, tmp_path: Path) -> None:
    site, collector_id = f"co-{uuid.uuid4().hex[:6]}", f"madoguchi-collector-test-{uuid.uuid4().hex[:8]}"
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        first = _admin(broker, tmp_path, collector_id, clean=False)  # first run: the broker learns the session
        collect(first, store, drain_s=0.3, site=site)
        close(first)

        box = _as_box(broker, tmp_path, site, "k1")  # while the collector is away
        records = [utterance(n, time.time() + n) for n in (1, 2, 3)]
        for record in (records[2], records[0], records[1], records[0]):  # out of order, and seq 1 twice (QoS 1 redelivery)
            _publish(box, f"madoguchi/v1/{site}/k1/usage", record)
        _publish(box, f"madoguchi/v1/{site}/k1/event", event(1, time.time()))
        _publish(box, f"madoguchi/v1/{site}/k1/usage", {"id": "nope"})
        close(box)

        again = _admin(broker, tmp_path, collector_id, clean=False)
        try:
            stats = collect(again, store, drain_s=1.0, site=site)
        finally:
            close(again)
        assert (stats.received, stats.stored, stats.duplicates, stats.invalid) == (6, 4, 1, 1)
        usage = store.records(stream="usage")
        assert [r.seq for r in usage] == [1, 2, 3] and [r.id for r in usage] == [r["id"] for r in records]
        assert usage[0].site == site and usage[0].box == "k1" and usage[0].latency_ms == 500.0
        assert store.count("event") == 1


def test_unacknowledged_messages_come_back_on_the_next_run(broker, tmp_path: Path) -> None:
    """A collector that dies between receiving and storing loses nothing: it acknowledges only after the commit."""
    site, collector_id = f"ack-{uuid.uuid4().hex[:6]}", f"madoguchi-collector-test-{uuid.uuid4().hex[:8]}"
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        setup = _admin(broker, tmp_path, collector_id, clean=False)
        collect(setup, store, drain_s=0.3, site=site)
        close(setup)
        box = _as_box(broker, tmp_path, site, "k1")
        records = [utterance(n, time.time()) for n in (1, 2)]
        for record in records:
            _publish(box, f"madoguchi/v1/{site}/k1/usage", record)
        close(box)

        crashed = _admin(broker, tmp_path, collector_id, clean=False)
        deadline = time.monotonic() + 5
        while inbox(crashed).qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert inbox(crashed).qsize() == 2  # received, never stored nor acknowledged
        close(crashed)

        again = _admin(broker, tmp_path, collector_id, clean=False)
        try:
            stats = collect(again, store, drain_s=1.0, site=site)
        finally:
            close(again)
        assert stats.stored == 2 and [r.id for r in store.records()] == [r["id"] for r in records]


def test_queued_messages_survive_a_broker_restart(broker, tmp_path: Path) -> None:
    site, collector_id = f"rs-{uuid.uuid4().hex[:6]}", f"madoguchi-collector-test-{uuid.uuid4().hex[:8]}"
    with FleetStore(tmp_path / "fleet.sqlite3") as store:
        setup = _admin(broker, tmp_path, collector_id, clean=False)
        collect(setup, store, drain_s=0.3, site=site)
        close(setup)
        box = _as_box(broker, tmp_path, site, "k1")
        _publish(box, f"madoguchi/v1/{site}/k1/usage", utterance(1, time.time()))
        close(box)
        broker.restart()
        again = _admin(broker, tmp_path, collector_id, clean=False)
        try:
            stats = collect(again, store, drain_s=1.0, site=site)
        finally:
            close(again)
        assert stats.stored == 1 and store.count() == 1


def test_the_cli_entry_points_end_to_end(broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from madoguchi.fleet import commands

    monkeypatch.setattr(commands, "DRAIN_IDLE_S", 0.5)
    site = f"cli-{uuid.uuid4().hex[:6]}"
    admin = broker.mqtt_settings(broker.admin(), "admin", "admin", spool_path=tmp_path / "admin.spool", username="admin")
    db = tmp_path / "fleet.sqlite3"
    with pytest.raises(FleetInputError, match="no collector database"):
        commands.run_report("7d", tmp_path / "report", db)
    commands.run_collect(admin, db, drain=True, site=site)  # the first run makes the session
    box = _as_box(broker, tmp_path, site, "k1")
    _publish(box, f"madoguchi/v1/{site}/k1/status", online("0.5.0", time.time()), retain=True)
    for n in (1, 2):
        _publish(box, f"madoguchi/v1/{site}/k1/usage", utterance(n, time.time() - 60, duration_s=30.0))
    close(box)
    stats = commands.run_collect(admin, db, drain=True, site=site)
    assert stats.stored == 2
    out = io.StringIO()
    assert commands.run_status(admin, out, site=site) == 0
    assert out.getvalue().startswith("1 box: 1 online, 0 offline") and "0.5.0" in out.getvalue()
    page = commands.run_report("1h", tmp_path / "report", db)
    assert re.search(r"<td>1</td><td>2</td><td>0</td><td>0</td><td>1</td><td>1.0</td>", page.read_text(encoding="utf-8"))  # boxes, utterances, not understood, sessions, languages, minutes
    with pytest.raises(FleetInputError, match="--since '1 week'"):
        commands.run_report("1 week", tmp_path / "report", db)
    box = _as_box(broker, tmp_path, site, "k1")
    _publish(box, f"madoguchi/v1/{site}/k1/status", b"", retain=True)
    close(box)
