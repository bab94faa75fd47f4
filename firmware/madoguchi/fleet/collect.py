"""``madoguchi fleet collect``: usage and events from every box into one SQLite file on the admin machine.

The collector uses a persistent session under a fixed client id (``collector_client_id``), so
the broker keeps its subscriptions and queues QoS 1 messages while it is away; a message is
acknowledged only after it is committed, so a crash makes the broker resend it rather than lose
it. QoS 1 may deliver twice: records are unique by their ``id``.

An utterance in which the box's ASR found no words is stored as ``rejected`` (why), with no
language and no side. Records from boxes older than that field say so another way (see
``rejected_of``); a database made before the column existed gains it, filled in, when opened.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import paho.mqtt.client as mqtt_client

from madoguchi.config import MqttSettings
from madoguchi.fleet.connect import ack, for_site, inbox, session_client_id, subscribe
from madoguchi.telemetry.schemas import problems
from madoguchi.telemetry.topics import FLEET_EVENT, FLEET_USAGE, split_topic

log = logging.getLogger(__name__)

DRAIN_IDLE_S = 5.0  # --drain: stop once nothing has arrived for this long
_BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,          -- the record's own id: QoS 1 duplicates collapse here
    site TEXT NOT NULL,
    box TEXT NOT NULL,
    stream TEXT NOT NULL,         -- usage | event (the topic leaf)
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,           -- utterance | session | operator_call | error | recovered
    lang TEXT, side TEXT, mode TEXT, session TEXT, code TEXT,
    duration_s REAL,
    latency_ms REAL,              -- timings_ms.latency_ms, else the sum of the timings
    rejected TEXT,                -- utterances: why ASR found no words (then lang and side are NULL); NULL: understood
    received_ts REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_box_seq ON records (site, box, seq);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
"""
_COLUMNS = ("id", "site", "box", "stream", "seq", "ts", "kind", "lang", "side", "mode", "session", "code", "duration_s", "latency_ms", "rejected", "received_ts", "payload")
UNRECORDED = "unrecorded"  # a rejected utterance from a box that did not yet say why


def default_db_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "madoguchi" / "fleet.sqlite3"


def collector_client_id(mqtt: MqttSettings) -> str:
    """The fixed client id of the collector's persistent session (one collector per admin login)."""
    return session_client_id("collector", mqtt)


def latency_of(payload: dict[str, Any]) -> float | None:
    """End-to-end latency of an utterance: timings_ms.latency_ms, else the sum of its timings."""
    timings = payload.get("timings_ms") or {}
    if "latency_ms" in timings:
        return float(timings["latency_ms"])
    return float(sum(timings.values())) if timings else None


def rejected_of(payload: dict[str, Any]) -> str | None:
    """Why an utterance was not understood (None: understood, or not an utterance).

    Boxes say it in ``rejected``. Records made before that field existed still tell: every
    understood utterance has had a target language since the first release (its translation's,
    or its own in caption mode), while a rejected one kept the language guessed for it and none.
    """
    if payload.get("kind") != "utterance":
        return None
    if "rejected" in payload:
        return payload["rejected"]
    return UNRECORDED if payload.get("lang") is not None and payload.get("target_lang") is None else None


@dataclass(frozen=True)
class Record:
    id: str
    site: str
    box: str
    stream: str
    seq: int
    ts: float
    kind: str
    lang: str | None
    side: str | None
    mode: str | None
    session: str | None
    code: str | None
    duration_s: float | None
    latency_ms: float | None
    rejected: str | None  # utterances: why ASR found no words (lang and side are then None)
    received_ts: float
    payload: dict[str, Any]

    @property
    def understood(self) -> bool:
        """An utterance the box found words in (what languages and sides are counted from)."""
        return self.kind == "utterance" and self.rejected is None


class FleetStore:
    """The collector's SQLite file (WAL: the report can read while the collector writes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_rejected_column()

    def _add_rejected_column(self) -> None:
        """A database made before ``rejected`` existed: add the column and fill it from the stored payloads."""
        if "rejected" in {row[1] for row in self._db.execute("PRAGMA table_info(records)")}:
            return
        with self._db:  # one transaction: a crash leaves the old table, and the next open does it again
            self._db.execute("ALTER TABLE records ADD COLUMN rejected TEXT")
            rows = self._db.execute("SELECT id, payload FROM records WHERE kind = 'utterance'").fetchall()
            found = [(reason, key) for key, payload in rows if (reason := rejected_of(json.loads(payload))) is not None]
            self._db.executemany("UPDATE records SET rejected = ?, lang = NULL, side = NULL WHERE id = ?", found)
        log.info("%s: added the rejected column (%d of %d utterances were not understood)", self.path, len(found), len(rows))

    def add(self, site: str, box: str, stream: str, payload: dict[str, Any], received_ts: float | None = None) -> bool:
        """Store one (valid) usage or event record; False if its id is already stored. Call ``commit`` after."""
        rejected = rejected_of(payload)
        row = (
            payload["id"],
            site,
            box,
            stream,
            payload["seq"],
            payload["ts"],
            payload["kind"],
            None if rejected else payload.get("lang"),  # a language guessed for noise is no language
            None if rejected else payload.get("side"),
            payload.get("mode"),
            payload.get("session"),
            payload.get("code"),
            payload.get("duration_s"),
            latency_of(payload) if payload["kind"] == "utterance" else None,
            rejected,
            time.time() if received_ts is None else received_ts,
            json.dumps(payload, separators=(",", ":"), sort_keys=True),
        )
        cursor = self._db.execute(f"INSERT OR IGNORE INTO records ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", row)
        return cursor.rowcount == 1

    def commit(self) -> None:
        self._db.commit()

    def records(self, since_ts: float | None = None, until_ts: float | None = None, stream: str | None = None) -> list[Record]:
        """Stored records, by site, box and then seq (the order each box made them)."""
        where, args = ["1"], []
        for clause, value in (("ts >= ?", since_ts), ("ts <= ?", until_ts), ("stream = ?", stream)):
            if value is not None:
                where.append(clause)
                args.append(value)
        rows = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM records WHERE {' AND '.join(where)} ORDER BY site, box, seq, id", args)
        return [Record(*row[:-1], payload=json.loads(row[-1])) for row in rows]

    def count(self, stream: str | None = None) -> int:
        if stream is None:
            return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM records WHERE stream = ?", (stream,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CollectStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_by_box: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        text = f"{self.received} messages: {self.stored} new, {self.duplicates} duplicates, {self.invalid} invalid"
        if self.invalid_by_box:
            text += " (" + ", ".join(f"{box}: {n}" for box, n in sorted(self.invalid_by_box.items())) + ")"
        return text


def _handle(store: FleetStore, message: mqtt_client.MQTTMessage, stats: CollectStats) -> None:
    stats.received += 1
    parts = split_topic(message.topic)
    if parts is None or parts[2] not in ("usage", "event"):
        log.debug("ignoring %s", message.topic)
        return
    site, box, stream = parts
    try:
        payload = json.loads(message.payload)
        wrong = problems(stream, payload)
    except (UnicodeDecodeError, ValueError) as err:
        wrong = [f"not JSON: {err}"]
    if wrong:
        stats.invalid += 1
        stats.invalid_by_box[f"{site}/{box}"] += 1
        first = stats.invalid_by_box[f"{site}/{box}"] == 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "%s/%s: skipping invalid %s record%s: %s",
            site,
            box,
            stream,
            " (further ones are logged at debug level)" if first else "",
            "; ".join(wrong[:3]),
        )
        return
    if store.add(site, box, stream, payload):
        stats.stored += 1
    else:
        stats.duplicates += 1


def collect(
    client: mqtt_client.Client,
    store: FleetStore,
    duration_s: float | None = None,
    stop: threading.Event | None = None,
    *,
    drain_s: float | None = None,
    site: str | None = None,
) -> CollectStats:
    """Store usage and events until ``duration_s`` has passed, ``stop`` is set, or (``drain_s``) nothing arrived for that long.

    ``client`` should come from ``connect(mqtt, collector_client_id(mqtt), clean=False)`` so the
    broker queues for it between runs. With none of the three limits it runs until interrupted.
    ``site`` limits it to one site (for a per-site admin login).
    """
    messages = inbox(client)
    stats = CollectStats()
    filters = [for_site(f, site) for f in (FLEET_USAGE, FLEET_EVENT)]
    previous_on_connect = client.on_connect

    def resubscribe(c: mqtt_client.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if previous_on_connect:
            previous_on_connect(c, u, flags, reason, props)
        if not reason.is_failure and not flags.session_present:
            c.subscribe([(f, 1) for f in filters])  # the broker lost our session (restart without persistence)

    client.on_connect = resubscribe
    subscribe(client, filters)
    start = last = time.monotonic()
    try:
        while not (stop and stop.is_set()):
            now = time.monotonic()
            limits = [start + duration_s - now] if duration_s is not None else []
            limits += [last + drain_s - now] if drain_s is not None else []
            if limits and min(limits) <= 0:
                break
            try:
                batch = [messages.get(timeout=min([0.2, *limits]))]
            except queue.Empty:
                continue
            while len(batch) < _BATCH and not messages.empty():
                batch.append(messages.get_nowait())
            for message in batch:
                _handle(store, message, stats)
            store.commit()
            for message in batch:
                ack(client, message)  # only now: an unacknowledged message is resent on the next session
            last = time.monotonic()
    finally:
        client.on_connect = previous_on_connect
    log.info("collected %s", stats)
    return stats
