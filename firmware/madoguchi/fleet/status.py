"""``madoguchi fleet status``: every box at once, from the retained status and health messages.

Both topics are retained, so a fresh subscriber receives the last status and health of every
box right after subscribing; nothing has to be polled and boxes that are down still show up
(their will set them offline).
"""

from __future__ import annotations

import json
import logging
import queue
import time
from dataclasses import dataclass, field, replace
from datetime import datetime

import paho.mqtt.client as mqtt_client

from madoguchi.fleet.connect import ack, for_site, inbox, subscribe
from madoguchi.telemetry.schemas import problems
from madoguchi.telemetry.topics import FLEET_HEALTH, FLEET_STATUS, split_topic

log = logging.getLogger(__name__)

QUIET_S = 0.3  # after the SUBACKs, stop once nothing more arrives for this long
STALE_S = 15 * 60  # an online box silent this long is shown as "online?"


@dataclass(frozen=True)
class BoxRow:
    """What the retained messages say about one box; None where a box has not said."""

    site: str
    box: str
    state: str = "unknown"  # online | offline | unknown (no valid status seen)
    reason: str | None = None  # why offline: shutdown | connection_lost
    version: str | None = None
    config_hash: str | None = None
    status_ts: float | None = None
    health_ts: float | None = None
    uptime_s: float | None = None
    cpu_temp_c: float | None = None
    last_error: str | None = None
    spool_pending: int | None = None
    spool_dropped: int | None = None
    mode: str | None = None  # interpret | caption | easy_japanese, as the clerk's button left it
    muted: bool = False
    panels: int | None = None  # OLED panels working, of 2
    off_sector: str | None = None  # health's placement verdict: most speech from outside both sides, and from where
    problems: tuple[str, ...] = field(default=())  # payloads that broke their schema

    @property
    def last_seen(self) -> float | None:
        stamps = [t for t in (self.status_ts, self.health_ts) if t is not None]
        return max(stamps) if stamps else None


def apply_message(rows: dict[tuple[str, str], BoxRow], topic: str, payload: bytes) -> None:
    """Fold one status or health message into ``rows`` (keyed by (site, box)); other topics are ignored."""
    parts = split_topic(topic)
    if parts is None or parts[2] not in ("status", "health") or not payload:
        return  # an empty retained payload is a deleted retained message
    site, box, leaf = parts
    row = rows.get((site, box), BoxRow(site, box))
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as err:
        wrong = [f"not JSON: {err}"]
    else:
        wrong = problems(leaf, data)
    if wrong:
        log.warning("%s/%s: invalid %s payload: %s", site, box, leaf, "; ".join(wrong[:3]))
        rows[(site, box)] = replace(row, problems=(*row.problems, f"{leaf}: {wrong[0]}"))
        return
    if leaf == "status":
        row = replace(
            row,
            state=data["state"],
            reason=data.get("reason"),
            version=data.get("version", row.version),
            config_hash=data.get("config_hash", row.config_hash),
            status_ts=data.get("ts", row.status_ts),
        )
    else:
        spool = data["spool"]
        row = replace(
            row,
            health_ts=data["ts"],
            uptime_s=data["uptime_s"],
            cpu_temp_c=data.get("cpu_temp_c"),
            last_error=data.get("last_error"),
            spool_pending=spool["pending"],
            spool_dropped=spool["dropped_total"],
            mode=(data.get("counter") or {}).get("mode"),
            muted=bool((data.get("counter") or {}).get("muted")),
            panels=data.get("panels"),
            off_sector=_off_sector(data.get("placement")),
        )
    rows[(site, box)] = row


def _off_sector(placement: dict | None) -> str | None:
    """'45 % from 261 deg' when the box says most speech came from outside both sides' sectors, else None."""
    if not placement or not placement.get("off_sector"):
        return None
    outside = [d for d in placement.get("directions", []) if d.get("side") is None]
    where = f" from {outside[0]['azimuth_deg']:.0f} deg" if outside else ""
    return f"{100 * placement['share']:.0f} %{where}"


def collect_status(client: mqtt_client.Client, wait_s: float = 2.0, *, site: str | None = None) -> list[BoxRow]:
    """Subscribe to every box's status and health and return one row per box, sorted by site and box.

    Waits for the SUBACK, then returns once the retained messages stop arriving (``QUIET_S``
    without one) or after ``wait_s`` in all. ``site`` limits it to one site (for a per-site admin login).
    """
    messages = inbox(client)
    deadline = time.monotonic() + wait_s
    subscribe(client, [for_site(f, site) for f in (FLEET_STATUS, FLEET_HEALTH)], timeout_s=wait_s)
    rows: dict[tuple[str, str], BoxRow] = {}
    quiet_until = time.monotonic() + QUIET_S
    while (now := time.monotonic()) < min(deadline, quiet_until):
        try:
            message = messages.get(timeout=min(deadline, quiet_until) - now)
        except queue.Empty:
            break
        apply_message(rows, message.topic, message.payload)
        ack(client, message)
        quiet_until = time.monotonic() + QUIET_S
    return sorted(rows.values(), key=lambda r: (r.site, r.box))


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m ago"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:.0f}h ago"


def _state(row: BoxRow, now: float) -> str:
    if row.state == "offline":
        return "OFFLINE"
    if row.state == "online" and row.last_seen is not None and now - row.last_seen > STALE_S:
        return "online?"
    return row.state


def _cells(row: BoxRow, now: float) -> list[str]:
    seen = row.last_seen
    last = "-" if seen is None else f"{datetime.fromtimestamp(seen).strftime('%m-%d %H:%M')} ({_age(now - seen)})"
    temp = "-" if row.cpu_temp_c is None else f"{row.cpu_temp_c:.1f}C"
    spool = "-" if row.spool_pending is None else f"{row.spool_pending}/{row.spool_dropped}"
    notes = []
    if row.state == "offline":
        notes.append(row.reason or "offline")
    elif _state(row, now) == "online?":
        notes.append(f"no news for {_age(now - seen)[:-4]}" if seen is not None else "stale")
    if row.panels is not None and row.panels < 2:
        notes.append(f"{row.panels}/2 panels")
    if row.off_sector:
        notes.append(f"speech outside the sides ({row.off_sector}): check [sides], madoguchi calibrate")
    notes += [f"invalid {p}" for p in row.problems]
    mode = "-" if row.mode is None else row.mode.replace("easy_japanese", "easy-ja") + (",muted" if row.muted else "")
    return [_state(row, now), row.site, row.box, last, row.version or "-", temp, mode, row.last_error or "-", spool, "; ".join(notes)]


def format_status(rows: list[BoxRow], now: float) -> str:
    """A plain-text table: boxes that need attention (offline, stale, unknown) first, then by site and box."""
    if not rows:
        return f"no box has published a status yet (nothing retained under {FLEET_STATUS})"
    attention = {"OFFLINE": 0, "online?": 1, "unknown": 2}
    ordered = sorted(rows, key=lambda r: (attention.get(_state(r, now), 3), r.site, r.box))
    header = ["STATE", "SITE", "BOX", "LAST SEEN", "VERSION", "TEMP", "MODE", "LAST ERROR", "SPOOL PEND/DROP", "NOTE"]
    table = [header] + [_cells(r, now) for r in ordered]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    counts = {s: sum(1 for r in rows if r.state == s) for s in ("online", "offline", "unknown")}
    summary = f"{len(rows)} box{'es' if len(rows) != 1 else ''}: {counts['online']} online, {counts['offline']} offline" + (f", {counts['unknown']} unknown" if counts["unknown"] else "")
    return "\n".join([summary, *lines])
