"""The durable, bounded queue of usage and event messages waiting for the broker's PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: each append and each ack is one transaction whose WAL
frames are fsynced before the call returns, so a crash, ``kill -9`` or power cut loses nothing
acknowledged as appended (NORMAL in WAL fsyncs only at checkpoints: the last commits can go on a
power cut). Bounds (age, then payload bytes) are enforced inside the append's own transaction.
Threads share one connection behind a lock: SQLite has one writer anyway, so a connection per
thread would only add SQLITE_BUSY waits between the daemon's appends and the publisher's acks.
A corrupt file is moved aside, what is still readable is copied into a fresh spool, the rest counted.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from madoguchi.config import MqttSettings
from madoguchi.errors import MadoguchiError

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: a seq is never reused, even after deletes
    id TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, created_ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS items_created ON items (created_ts);  -- age bound and oldest_age_s without a scan
CREATE TABLE IF NOT EXISTS counters (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
-- Running totals kept by triggers: the size bound is checked on every append, COUNT/SUM would scan.
CREATE TABLE IF NOT EXISTS totals (one INTEGER PRIMARY KEY CHECK (one = 1), pending INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO totals VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS items_ins AFTER INSERT ON items BEGIN
    UPDATE totals SET pending = pending + 1, bytes = bytes + length(NEW.payload); END;
CREATE TRIGGER IF NOT EXISTS items_del AFTER DELETE ON items BEGIN
    UPDATE totals SET pending = pending - 1, bytes = bytes - length(OLD.payload); END;
PRAGMA user_version = 1;
"""
_COLUMNS = "seq, id, topic, payload, created_ts"
_TYPES: tuple[type | tuple[type, ...], ...] = (int, str, str, bytes, (int, float))  # of _COLUMNS: salvaged rows must have these
_DROP_LOG_INTERVAL_S = 60.0  # a full spool drops on every append: warn once a minute, not per message


class SpoolError(MadoguchiError, OSError):
    """The spool cannot be created or written (not for corruption: that is recovered from)."""

    code = "spool_error"


class _CorruptError(sqlite3.DatabaseError):
    sqlite_errorcode = sqlite3.SQLITE_CORRUPT


@dataclass(frozen=True)
class SpoolItem:
    seq: int  # per spool, strictly increasing, never reused
    id: str  # uuid4().hex: lets the fleet drop QoS 1 duplicates
    topic: str
    payload: bytes  # UTF-8 JSON with "id" and "seq" filled in: exactly what the broker receives
    created_ts: float


@dataclass(frozen=True)
class SpoolStats:
    pending: int
    bytes: int
    oldest_age_s: float | None
    dropped_total: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count: max_age, max_size, corrupt, corrupt_file

    def as_health(self) -> dict[str, Any]:
        """The ``spool`` object of health.schema.json."""
        return {"pending": self.pending, "bytes": self.bytes, "oldest_age_s": self.oldest_age_s, "dropped_total": self.dropped_total, "dropped": dict(self.dropped)}


def _is_corrupt(err: sqlite3.Error) -> bool:
    return (getattr(err, "sqlite_errorcode", 0) or 0) & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per public call.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode}): is the directory writable?")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=8388608")  # shrink the WAL back after a burst
        # A torn page would otherwise surface later, in the middle of the daemon's work.
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise _CorruptError(f"quick_check: {check}")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")  # take the write lock now: read-then-insert of seq stays atomic
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _salvage(path: Path) -> tuple[list[tuple[Any, ...]], dict[str, int], int | None, int | None]:
    """(rows, counters, rows the file said it held, seq high-water mark) still readable, each on its own."""
    rows: list[tuple[Any, ...]] = []
    counters: dict[str, int] = {}
    expected = max_seq = None
    with suppress(sqlite3.Error):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read-only: leave the evidence as it was
        with suppress(sqlite3.Error, TypeError, ValueError):
            counters = {str(r): int(n) for r, n in conn.execute("SELECT reason, count FROM counters")}
        with suppress(sqlite3.Error, TypeError, ValueError):
            expected = int(conn.execute("SELECT pending FROM totals").fetchone()[0])
        with suppress(sqlite3.Error, TypeError, ValueError):
            max_seq = int(conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()[0])
        last, step = 0, 1
        for _ in range(64):  # read in seq order; past a bad page, probe ever further ahead (bounded)
            try:
                for row in conn.execute(f"SELECT {_COLUMNS} FROM items WHERE seq > ? ORDER BY seq", (last,)):
                    rows.extend([row] if all(isinstance(v, t) for v, t in zip(row, _TYPES)) else [])
                    last, step = row[0], 1
                break
            except (sqlite3.Error, TypeError, OverflowError):
                last, step = last + step, step * 2
                if max_seq is not None and last >= max_seq:
                    break
        conn.close()
    return rows, counters, expected, max_seq


class Spool:
    def __init__(self, path: str | Path, max_bytes: int, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self._clock = clock
        self._lock = threading.RLock()
        self._drop_logged = -_DROP_LOG_INTERVAL_S
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise self._error(err) from err
        try:
            self._conn: sqlite3.Connection | None = _connect(self.path)
        except sqlite3.Error as err:
            if not _is_corrupt(err):
                raise self._error(err) from err
            self._conn = self._recover(err)

    @classmethod
    def for_settings(cls, mqtt: MqttSettings, clock: Callable[[], float] = time.time) -> Spool:
        return cls(mqtt.spool_path, int(mqtt.spool_max_mb * 1024 * 1024), mqtt.spool_max_age_days * 86400.0, clock)

    def append(self, topic: str, message: Mapping[str, Any]) -> SpoolItem:
        """Store one message; durable (fsynced) when this returns. May drop the oldest to stay in bounds."""
        now = self._clock()
        body = dict(message)
        body.setdefault("ts", now)
        item_id = uuid.uuid4().hex

        def run(conn: sqlite3.Connection) -> tuple[SpoolItem, dict[str, int]]:
            with _write(conn):
                row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
                seq = (row[0] if row else 0) + 1
                payload = json.dumps({**body, "id": item_id, "seq": seq}, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
                conn.execute(f"INSERT INTO items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (seq, item_id, topic, payload, now))
                drops = self._enforce(conn, now)
            return SpoolItem(seq, item_id, topic, payload, now), drops

        item, drops = self._call(run)
        self._note(drops)
        return item

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[SpoolItem]:
        """Up to ``limit`` items with seq > ``after_seq``, oldest first."""
        sql = f"SELECT {_COLUMNS} FROM items WHERE seq > ? ORDER BY seq LIMIT ?"
        return self._call(lambda conn: [SpoolItem(s, i, t, bytes(p), c) for s, i, t, p, c in conn.execute(sql, (after_seq, limit))])

    def ack(self, seq: int) -> None:
        """The broker has the item: delete it (durably). Unknown or already acked seqs are fine."""
        self._call(lambda conn: conn.execute("DELETE FROM items WHERE seq = ?", (seq,)))

    def drop(self, seq: int, reason: str) -> None:
        """Give up on one item that can never be delivered (the broker refused it), counting why."""

        def run(conn: sqlite3.Connection) -> None:
            with _write(conn):
                if conn.execute("DELETE FROM items WHERE seq = ?", (seq,)).rowcount:
                    self._count(conn, {reason: 1})

        self._call(run)

    def stats(self) -> SpoolStats:
        def run(conn: sqlite3.Connection) -> SpoolStats:
            conn.execute("BEGIN")  # one snapshot for all three reads
            try:
                pending, size = conn.execute("SELECT pending, bytes FROM totals").fetchone()
                oldest = conn.execute("SELECT MIN(created_ts) FROM items").fetchone()[0]
                dropped = dict(conn.execute("SELECT reason, count FROM counters ORDER BY reason").fetchall())
            finally:
                conn.execute("COMMIT")
            age = None if oldest is None else max(0.0, self._clock() - oldest)  # a clock stepped back: not negative
            return SpoolStats(pending, size, age, sum(dropped.values()), dropped)

        return self._call(run)

    def enforce_bounds(self) -> int:
        """Drop the items older than max_age_s, then the oldest beyond max_bytes; returns how many."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            with _write(conn):
                return self._enforce(conn, self._clock())

        drops = self._call(run)
        self._note(drops)
        return sum(drops.values())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with suppress(sqlite3.Error):  # leave one file behind, not file + WAL
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, err: BaseException, what: str = "cannot open the spool") -> SpoolError:
        return SpoolError(f"{what} {self.path} (set by [mqtt] spool_path): {err}".replace("\n", " "))

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run one operation under the lock; on corruption recover once and retry on the fresh spool."""
        with self._lock:
            if self._conn is None:
                raise SpoolError(f"the spool {self.path} is closed")
            try:
                return fn(self._conn)
            except sqlite3.Error as err:
                if not _is_corrupt(err):
                    raise self._error(err, "cannot use the spool") from err
                self._conn.close()
                self._conn = None
                self._conn = self._recover(err)
            try:
                return fn(self._conn)
            except sqlite3.Error as err:
                raise self._error(err, "cannot use the recovered spool") from err

    def _recover(self, err: sqlite3.Error) -> sqlite3.Connection:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside, n = self.path.with_name(f"{self.path.name}.corrupt-{stamp}"), 1
        while aside.exists():  # two recoveries in one second keep both files
            aside, n = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}"), n + 1
        try:  # the WAL and its index belong to that file: replaying them into a new one would be wrong
            for suffix in ("", "-wal", "-shm"):
                if Path(f"{self.path}{suffix}").exists():
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
        except OSError as move_err:
            raise self._error(move_err, "cannot move aside the corrupt spool") from err
        log.error("spool_corrupt: %s is unreadable (%s); moved to %s, starting a fresh spool", self.path, err, aside.name, extra={"code": "spool_corrupt"})
        rows, lost, expected, max_seq = _salvage(aside)
        if expected is None:  # how many rows were lost is unknown: count the file once
            lost["corrupt_file"] = lost.get("corrupt_file", 0) + 1
        elif expected > len(rows):
            lost["corrupt"] = lost.get("corrupt", 0) + expected - len(rows)
        # Seqs must not go back: continue after the old high-water mark, or after "now in ms" if unknown.
        floor = max([max_seq if max_seq is not None else int(time.time() * 1000)] + [r[0] for r in rows])
        try:
            conn = _connect(self.path)
            with _write(conn):
                conn.executemany(f"INSERT INTO items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)
                conn.execute("INSERT OR REPLACE INTO sqlite_sequence (name, seq) VALUES ('items', ?)", (floor,))
                self._count(conn, lost)
        except sqlite3.Error as new_err:
            raise self._error(new_err, "cannot create a fresh spool") from err
        log.warning("spool: recovered %d of %s items from %s", len(rows), expected if expected is not None else "an unknown number of", aside.name)
        return conn

    def _enforce(self, conn: sqlite3.Connection, now: float) -> dict[str, int]:
        drops: dict[str, int] = {}
        aged = conn.execute("DELETE FROM items WHERE created_ts < ?", (now - self.max_age_s,)).rowcount
        if aged > 0:
            drops["max_age"] = aged
        excess = conn.execute("SELECT bytes FROM totals").fetchone()[0] - self.max_bytes
        if excess > 0:
            last, cur = 0, conn.execute("SELECT seq, length(payload) FROM items ORDER BY seq")
            for last, size in cur:  # oldest first, until enough bytes are freed
                excess -= size
                if excess <= 0:
                    break
            cur.close()
            drops["max_size"] = conn.execute("DELETE FROM items WHERE seq <= ?", (last,)).rowcount
        self._count(conn, drops)
        return drops

    @staticmethod
    def _count(conn: sqlite3.Connection, drops: Mapping[str, int]) -> None:
        conn.executemany(
            "INSERT INTO counters (reason, count) VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
            [(reason, n) for reason, n in drops.items() if n > 0],
        )

    def _note(self, drops: Mapping[str, int]) -> None:
        if drops and time.monotonic() - self._drop_logged >= _DROP_LOG_INTERVAL_S:
            self._drop_logged = time.monotonic()
            log.warning("spool_dropped: over its bounds, dropped the oldest %s (more drops are counted, not logged, for %.0f s)", drops, _DROP_LOG_INTERVAL_S, extra={"code": "spool_dropped"})
