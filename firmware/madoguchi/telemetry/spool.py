"""The durable, bounded queue of usage and event messages waiting for the broker's PUBACK.

SQLite in WAL mode with ``synchronous=FULL``: each append and each ack is one transaction whose WAL
frames are fsynced before the call returns, so a crash, ``kill -9`` or power cut loses nothing
acknowledged as appended (NORMAL in WAL fsyncs only at checkpoints: the last commits can go on a
power cut). Bounds (age, then payload bytes) are enforced inside the append's own transaction.
Threads share one connection behind a lock: SQLite has one writer anyway, so a connection per
thread would only add SQLITE_BUSY waits between the daemon's appends and the publisher's acks.
A corrupt file is moved aside, what is still readable is copied into a fresh spool, the rest counted.

A full filesystem (SQLITE_FULL: ENOSPC or a quota) is survived, not raised to the daemon: a full SD
card must not stop the counter's interpreting. Even a delete needs room (it appends to the WAL),
so while the disk is full an append is refused and counted (``disk_full`` in ``stats().dropped``),
an ack or a drop is remembered and written with the next write that fits, and the bounds wait.
Those counts and acks live in memory until then: a crash or power cut before it loses them (the
acked items are sent again; the fleet drops duplicates by id). Every case is logged as
``spool_full``, once a minute. An existing spool opens without writing (and with its WAL index in
memory when there is no room for the -shm file), so a box restarted on a full disk still opens it
and drains it to the broker. Only a spool that does not exist yet cannot be created on a full disk.
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
DISK_FULL = "disk_full"  # the stats().dropped reason of messages refused because the filesystem was full
# SQLite's default (1000 pages) let the WAL alone take 4 MB before its first checkpoint: an append
# writes about four pages (16 KB for a 300-byte usage record), so on a card with less room than
# that the spool filled the disk by itself, and a WAL whose checkpoint needs the database file to
# grow can never be reset: the spool was wedged until someone else freed space. 64 pages = 256 KB.
_WAL_AUTOCHECKPOINT_PAGES = 64


class SpoolError(MadoguchiError, OSError):
    """The spool cannot be created or written (not for corruption: that is recovered from)."""

    code = "spool_error"


class SpoolFullError(SpoolError):
    """The filesystem holding the spool has no room (SQLite's SQLITE_FULL). Raised only by the
    constructor (a spool that cannot be created); the other calls catch it, count what it cost and
    log it, because a full disk is a condition the box lives through, not a reason to stop."""

    code = "spool_full"


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


def _is_full(err: BaseException) -> bool:
    """No room on the filesystem: SQLITE_FULL, or the WAL index (-shm) that could not be sized."""
    code = (getattr(err, "sqlite_errorcode", 0) or 0) if isinstance(err, sqlite3.Error) else 0
    return code & 0xFF == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE


def _connect(path: Path, exclusive: bool = False) -> sqlite3.Connection:
    """``exclusive``: the WAL index in this process's memory instead of the -shm file (no other
    process can read the spool meanwhile): how a spool opens on a disk with no room for that file."""
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per public call.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        if exclusive:
            conn.execute("PRAGMA locking_mode=EXCLUSIVE")  # before the first access, or the -shm is used anyway
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode}): is the directory writable?")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA journal_size_limit=8388608")  # shrink the WAL back after a burst
        conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_AUTOCHECKPOINT_PAGES}")
        # A torn page would otherwise surface later, in the middle of the daemon's work.
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise _CorruptError(f"quick_check: {check}")
        # Only a new file gets the schema (which sets user_version 1): an existing spool opens without
        # a single write, so a box restarted on a full disk still opens it (and drains it to the broker).
        if conn.execute("PRAGMA user_version").fetchone()[0] != 1:
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
        self._full_logged = -_DROP_LOG_INTERVAL_S
        # What a full disk kept from being written, until the next write that fits writes it down:
        self._uncounted: dict[str, int] = {}  # reason -> drops and refusals not yet in the counters table
        self._unacked: dict[int, int] = {}  # seq -> payload bytes of items acked or dropped but not yet deleted
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise self._error(err) from err
        try:
            self._conn: sqlite3.Connection | None = _connect(self.path)
        except sqlite3.Error as err:
            if _is_full(err):
                self._conn = self._open_on_full_disk(err)
            elif not _is_corrupt(err):
                raise self._error(err) from err
            else:
                self._conn = self._recover(err)

    @classmethod
    def for_settings(cls, mqtt: MqttSettings, clock: Callable[[], float] = time.time) -> Spool:
        return cls(mqtt.spool_path, int(mqtt.spool_max_mb * 1024 * 1024), mqtt.spool_max_age_days * 86400.0, clock)

    def append(self, topic: str, message: Mapping[str, Any]) -> SpoolItem | None:
        """Store one message; durable (fsynced) when this returns. May drop the oldest to stay in bounds.

        None when the filesystem is full: the message is refused, counted as ``disk_full`` and
        logged, and the caller goes on (the usage lost is known, and interpreting continues).
        """
        now = self._clock()
        body = dict(message)
        body.setdefault("ts", now)
        item_id = uuid.uuid4().hex

        def run(conn: sqlite3.Connection) -> tuple[SpoolItem, dict[str, int]]:
            with self._transaction(conn):
                row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'items'").fetchone()
                seq = (row[0] if row else 0) + 1
                payload = json.dumps({**body, "id": item_id, "seq": seq}, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
                conn.execute(f"INSERT INTO items ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)", (seq, item_id, topic, payload, now))
                drops = self._enforce(conn, now)
            return SpoolItem(seq, item_id, topic, payload, now), drops

        try:
            item, drops = self._call(run)
        except SpoolFullError as err:
            with self._lock:
                self._uncounted[DISK_FULL] = self._uncounted.get(DISK_FULL, 0) + 1
                self._full(err, "refused a message")
            return None
        self._note(drops)
        return item

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[SpoolItem]:
        """Up to ``limit`` items with seq > ``after_seq``, oldest first (not those acked while the disk was full)."""
        sql = f"SELECT {_COLUMNS} FROM items WHERE seq > ? ORDER BY seq LIMIT ?"

        def run(conn: sqlite3.Connection) -> list[SpoolItem]:
            rows = conn.execute(sql, (after_seq, limit + len(self._unacked)))
            return [SpoolItem(s, i, t, bytes(p), c) for s, i, t, p, c in rows if s not in self._unacked][:limit]

        return self._call(run)

    def ack(self, seq: int) -> None:
        """The broker has the item: delete it (durably). Unknown or already acked seqs are fine.

        On a full disk the delete cannot be written: the item is left out of ``pending`` and
        ``stats`` from now on and deleted with the next write that fits.
        """

        def run(conn: sqlite3.Connection) -> None:
            with self._transaction(conn):
                conn.execute("DELETE FROM items WHERE seq = ?", (seq,))

        try:
            self._call(run)
        except SpoolFullError as err:
            self._delete_later(seq, err)

    def drop(self, seq: int, reason: str) -> None:
        """Give up on one item that can never be delivered (the broker refused it), counting why.
        On a full disk, as ``ack``: gone from ``pending`` and counted in ``stats`` now, written down once there is room."""

        def run(conn: sqlite3.Connection) -> None:
            with self._transaction(conn):
                if conn.execute("DELETE FROM items WHERE seq = ?", (seq,)).rowcount:
                    self._count(conn, {reason: 1})

        try:
            self._call(run)
        except SpoolFullError as err:
            self._delete_later(seq, err, reason)

    def stats(self) -> SpoolStats:
        def run(conn: sqlite3.Connection) -> SpoolStats:
            unacked = list(self._unacked)  # still in the table, already gone for the fleet
            conn.execute("BEGIN")  # one snapshot for all three reads
            try:
                pending, size = conn.execute("SELECT pending, bytes FROM totals").fetchone()
                oldest = conn.execute(f"SELECT MIN(created_ts) FROM items WHERE seq NOT IN ({','.join('?' * len(unacked))})", unacked).fetchone()[0]
                dropped = dict(conn.execute("SELECT reason, count FROM counters ORDER BY reason").fetchall())
            finally:
                conn.execute("COMMIT")
            for reason, n in self._uncounted.items():
                dropped[reason] = dropped.get(reason, 0) + n
            dropped = dict(sorted(dropped.items()))
            age = None if oldest is None else max(0.0, self._clock() - oldest)  # a clock stepped back: not negative
            return SpoolStats(pending - len(unacked), size - sum(self._unacked.values()), age, sum(dropped.values()), dropped)

        return self._call(run)

    def enforce_bounds(self) -> int:
        """Drop the items older than max_age_s, then the oldest beyond max_bytes; returns how many."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            with self._transaction(conn):
                return self._enforce(conn, self._clock())

        try:
            drops = self._call(run)
        except SpoolFullError as err:  # nothing new gets in meanwhile, so nothing grows
            with self._lock:
                self._full(err, "the bounds are enforced once there is room")
            return 0
        self._note(drops)
        return sum(drops.values())

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and (self._uncounted or self._unacked):
                try:  # the last chance to write down what a full disk kept in memory
                    self._call(self._settle)
                except SpoolError as err:  # closing goes on: said, with what it costs
                    log.error("%s: closing with %s not counted and %d acked items not deleted (%s): the counts are lost, those items go again",
                              err.code, self._uncounted, len(self._unacked), err, extra={"code": err.code})
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
        kind = SpoolFullError if _is_full(err) else SpoolError
        return kind(f"{what} {self.path} (set by [mqtt] spool_path): {err}".replace("\n", " "))

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction (``_write``) that first writes down what a full disk kept in memory:
        the uncounted drops and refusals, and the deletes of acked items. Forgotten once committed
        (under the lock, as every write is: nothing adds to them in between)."""
        with _write(conn):
            if self._unacked:
                conn.executemany("DELETE FROM items WHERE seq = ?", [(seq,) for seq in self._unacked])
            self._count(conn, self._uncounted)
            yield
        if self._uncounted or self._unacked:
            log.info("spool: room again; wrote down %s and %d acks kept while the disk was full", self._uncounted, len(self._unacked))
            self._uncounted.clear()
            self._unacked.clear()

    def _settle(self, conn: sqlite3.Connection) -> None:
        with self._transaction(conn):
            pass

    def _delete_later(self, seq: int, err: SpoolFullError, reason: str | None = None) -> None:
        """An ack (or a drop, counted under ``reason``) a full disk kept from being written: remembered."""
        with self._lock:
            row = self._call(lambda conn: conn.execute("SELECT length(payload) FROM items WHERE seq = ?", (seq,)).fetchone())  # a read needs no room
            if row is None or seq in self._unacked:
                return
            self._unacked[seq] = row[0]
            if reason is not None:
                self._uncounted[reason] = self._uncounted.get(reason, 0) + 1
            self._full(err, f"{len(self._unacked)} acked item(s) will be deleted once there is room")

    def _full(self, err: SpoolFullError, what: str) -> None:
        """Say the disk is full and what that cost, once a minute (it costs something on every append); the counts are in stats()."""
        if time.monotonic() - self._full_logged >= _DROP_LOG_INTERVAL_S:
            self._full_logged = time.monotonic()
            log.error("spool_full: %s; %s (%d refused so far; more is counted, not logged, for %.0f s)", err, what, self._uncounted.get(DISK_FULL, 0),
                      _DROP_LOG_INTERVAL_S, extra={"code": "spool_full"})

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

    def _open_on_full_disk(self, err: sqlite3.Error) -> sqlite3.Connection:
        """The service restarted on a full disk: a spool closed cleanly has no -shm file, and there is
        no room to create one. Opened with its WAL index in memory, the spool still starts, drains
        to the broker and counts what it refuses; the price is that no other process can read it
        (``madoguchi doctor`` says it is unreadable) until the service restarts with room."""
        try:
            conn = _connect(self.path, exclusive=True)
        except sqlite3.Error as again:  # a spool not created yet cannot be created on a full disk
            raise self._error(again) from err
        log.error("spool_full: no room for %s-shm (%s); opened with its index in memory, other processes cannot read the spool until a restart",
                  self.path, err, extra={"code": "spool_full"})
        return conn

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
            for seq, size in cur:  # oldest first, until enough bytes are freed
                last = seq
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
