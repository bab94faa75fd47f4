"""What ``madoguchi fleet status | collect | report`` run: each opens, works and closes in one call.

The CLI only parses arguments and calls these; every failure is a ``MadoguchiError`` (one line).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import TextIO

from madoguchi.config import MqttSettings
from madoguchi.fleet.collect import DRAIN_IDLE_S, CollectStats, FleetStore, collect, collector_client_id, default_db_path
from madoguchi.fleet.connect import close, connect, throwaway_client_id
from madoguchi.fleet.errors import FleetExtraMissingError, FleetInputError
from madoguchi.fleet.status import collect_status, format_status

log = logging.getLogger(__name__)


def run_status(mqtt: MqttSettings, out: TextIO, wait_s: float = 2.0, site: str | None = None) -> int:
    """Print the fleet table to ``out``; returns the number of boxes that are not online (0: all well)."""
    client = connect(mqtt, throwaway_client_id("status"), clean=True)
    try:
        rows = collect_status(client, wait_s, site=site)
    finally:
        close(client)
    print(format_status(rows, time.time()), file=out)
    return sum(1 for r in rows if r.state != "online")


def run_collect(mqtt: MqttSettings, db: Path | None = None, duration_s: float | None = None, drain: bool = False, site: str | None = None) -> CollectStats:
    """Collect into ``db`` (default ``default_db_path()``) for ``duration_s``, until drained, or until SIGTERM/Ctrl-C."""
    stop = threading.Event()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main else None  # systemd stop: finish the batch, disconnect
    try:
        with FleetStore(db or default_db_path()) as store:
            client = connect(mqtt, collector_client_id(mqtt), clean=False)
            try:
                stats = collect(client, store, duration_s, stop, drain_s=DRAIN_IDLE_S if drain else None, site=site)
            except KeyboardInterrupt:
                log.info("interrupted; everything acknowledged is stored in %s", store.path)
                raise
            finally:
                close(client)
            log.info("%s now holds %d records", store.path, store.count())
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    return stats


def require_report_tools() -> None:
    """The report draws with matplotlib, the ``admin`` extra (the boxes never need it, so the box's
    own install leaves it out): if it cannot be imported, say what to install, in one line."""
    try:
        from matplotlib.figure import Figure  # noqa: F401
    except ImportError as err:
        raise FleetExtraMissingError(
            f"fleet report draws its charts with matplotlib, which cannot be imported here ({err}): install the admin extra, "
            "`pip install 'madoguchi[admin]'` (in a clone: `.venv/bin/pip install -e '.[admin]'`)"
        ) from err


def run_report(since: str, out_dir: Path, db: Path | None = None) -> Path:
    """Write the HTML report for ``since`` ("7d", "12h", "30m") into ``out_dir``; returns index.html's path."""
    require_report_tools()
    from madoguchi.fleet.report import build_report, parse_since  # matplotlib: only the report needs it

    seconds = parse_since(since)
    path = db or default_db_path()
    if not Path(path).is_file():
        raise FleetInputError(f"no collector database at {path}: run `madoguchi fleet collect` first, or pass --db")
    with FleetStore(path) as store:
        return build_report(store, seconds, out_dir)
