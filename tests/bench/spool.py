"""Telemetry spool benchmark: how fast usage records go in (durably) and out, and what they cost on disk.

    python -m tests.bench.spool [--n 5000] [--dir DIR]

Prints append rates with ``synchronous=FULL`` (as shipped) next to peers measured in the same run:
``synchronous=NORMAL`` (no fsync per commit in WAL: can lose the last commits on a power cut) and
a plain in-memory list (no durability at all, same JSON encoding); then the pending()+ack flush
rate without a network, the file size per 1,000 events and the reopen (quick_check) time.
Every figure is for this machine's CPU and disk (both printed): fsync dominates, and SD cards
fsync far slower than the virtual or SSD disks benchmarks usually run on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from madoguchi.telemetry.spool import Spool
from tests.bench.frontend import cpu_model

TOPIC = "madoguchi/v1/site/box/usage"


def disk_of(path: Path) -> str:
    """Device and filesystem of the mount holding ``path`` (longest matching mount point)."""
    best = ("?", "?", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mount, fstype = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) > len(best[2]):
                best = (dev, fstype, mount)
    except OSError:
        pass
    return f"{best[0]} ({best[1]}) at {best[2]}"


def utterance(i: int) -> dict[str, object]:
    """A realistic usage record (no transcript: the default share_transcripts = false)."""
    return {
        "kind": "utterance",
        "session": uuid.uuid4().hex,
        "side": "resident" if i % 2 else "staff",
        "lang": "vi",
        "target_lang": "ja",
        "mode": "interpret",
        "duration_s": 2.84,
        "side_confidence": 0.93,
        "timings_ms": {"asr": 412.0, "mt": 188.5, "tts": 240.1, "endpoint": 310.0},
    }


def rate(n: int, fn: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def fsync_rate(directory: Path, n: int = 300) -> float:
    """Raw 4 KiB write + fdatasync per second: the floor under every durable commit."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)

    def write(i: int) -> None:
        os.pwrite(fd, b"x" * 4096, 4096 * (i % 16))
        os.fdatasync(fd)

    try:
        return rate(n, write)
    finally:
        os.close(fd)
        path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="events per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the spool files (default: a temp dir)")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="spool-bench-", dir=args.dir))
    n = args.n
    try:
        full = Spool(base / "full.sqlite3", 10**12, 1e12)
        append_full = rate(n, lambda i: full.append(TOPIC, utterance(i)))
        stats = full.stats()
        live = sum(p.stat().st_size for p in base.glob("full.sqlite3*"))  # db + WAL while running
        start = time.perf_counter()
        flushed = 0
        while batch := full.pending(limit=100):  # what the publisher does once PUBACKs arrive
            for item in batch:
                full.ack(item.seq)
            flushed += len(batch)
        flush = flushed / (time.perf_counter() - start)
        full.close()

        normal = Spool(base / "normal.sqlite3", 10**12, 1e12)
        assert normal._conn is not None
        normal._conn.execute("PRAGMA synchronous=NORMAL")  # the peer only: never shipped
        append_normal = rate(n, lambda i: normal.append(TOPIC, utterance(i)))
        normal.close()  # checkpoints: one file left
        closed = (base / "normal.sqlite3").stat().st_size
        start = time.perf_counter()
        Spool(base / "normal.sqlite3", 10**12, 1e12).close()
        reopen_ms = 1000 * (time.perf_counter() - start)

        memory: list[tuple[int, str, str, bytes, float]] = []

        def to_memory(i: int) -> None:  # what append does, minus SQLite
            now, item_id = time.time(), uuid.uuid4().hex
            payload = json.dumps({**utterance(i), "ts": now, "id": item_id, "seq": i + 1}, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            memory.append((i + 1, item_id, TOPIC, payload, now))

        append_memory = rate(n, to_memory)
        sync_rate = fsync_rate(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    per_k = 1000 / n
    rows = [
        ("append, synchronous=FULL (shipped)", f"{append_full:,.0f} events/s", "one fsync per append: survives a power cut"),
        ("append, synchronous=NORMAL (peer)", f"{append_normal:,.0f} events/s", "survives kill -9, not a power cut"),
        ("append, in-memory list (peer)", f"{append_memory:,.0f} events/s", "same JSON encoding, survives nothing"),
        ("pending(100) + ack each, FULL", f"{flush:,.0f} events/s", "one fsync per ack; no network"),
        ("raw 4 KiB write + fdatasync", f"{sync_rate:,.0f} /s", "the disk's floor under every durable commit"),
        ("payload per 1,000 events", f"{stats.bytes * per_k / 1024:,.0f} KiB", "what max_bytes counts"),
        ("file per 1,000 events, running", f"{live * per_k / 1024:,.0f} KiB", "db + WAL (WAL checkpoints at ~4 MiB)"),
        ("file per 1,000 events, closed", f"{closed * per_k / 1024:,.0f} KiB", "after the checkpoint on close"),
        (f"reopen with quick_check, {n:,} events", f"{reopen_ms:,.0f} ms", "once per start"),
    ]
    print(f"Spool benchmark, {n:,} usage records of ~{stats.bytes // max(stats.pending, 1)} B each")
    print(f"CPU: {cpu_model()} ({os.cpu_count()} logical); Python {platform.python_version()}")
    print(f"Disk: {disk_of(base.parent)}. This is not an SD card: a Pi's SD card fsyncs far slower")
    print("(often tens to a few hundred per second, with pauses of 100 ms or more), so expect the FULL")
    print("and flush rates on the box to be a small fraction of these; usage arrives at < 1 event/s.\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>16}  note")
    print(f"{'-' * width}  {'-' * 16}  {'-' * 44}")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>16}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
