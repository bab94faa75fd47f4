"""``madoguchi fleet report``: one self-contained HTML page with PNG charts from the collector's store.

The page is plain HTML with a little CSS and relative image links: copy the directory anywhere,
open ``index.html`` offline. Hours and days are in the admin machine's local time unless ``tz``.

Utterances, languages, sides, speech minutes and latency count only what the boxes understood;
speech in which ASR found no words (noise, babble, a voice it could not make out) is shown apart,
as "not understood" per box and reason, and never under the language it was guessed to be.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from pathlib import Path

import numpy as np

from madoguchi.fleet import charts
from madoguchi.fleet.collect import FleetStore, Record
from madoguchi.fleet.errors import FleetInputError

log = logging.getLogger(__name__)

UNKNOWN_LANG = "unknown"
TOP_LANGS = 9  # more languages than this are grouped as "other" in the hour chart
CHARTS = ("hours.png", "days.png", "boxes.png", "latency.png", "latency_boxes.png", "sides.png", "not_understood.png", "events.png")
NOT_UNDERSTOOD = "not understood"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SINCE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)


def parse_since(text: str) -> float:
    """Seconds in "30m", "12h", "7d" (also s and w); ``FleetInputError`` saying what is allowed otherwise."""
    match = _SINCE.fullmatch(text or "")
    if not match or float(match[1]) <= 0:
        raise FleetInputError(f"--since {text!r}: expected a positive number and a unit m, h or d (also s, w), e.g. 30m, 12h, 7d")
    return float(match[1]) * _UNITS[match[2].lower()]


@dataclass(frozen=True)
class BoxSummary:
    site: str
    box: str
    utterances: int  # understood
    not_understood: int  # utterances in which ASR found no words
    sessions: int
    languages: tuple[str, ...]
    speech_min: float
    staff: int
    resident: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    events: int
    errors: int

    @property
    def label(self) -> str:
        return f"{self.site}/{self.box}"


@dataclass(frozen=True)
class Summary:
    boxes: int
    utterances: int
    not_understood: int
    sessions: int
    languages: tuple[str, ...]
    speech_min: float
    per_box: tuple[BoxSummary, ...]


def _percentiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return float(p50), float(p95)


def summarize(records: Sequence[Record]) -> Summary:
    """Counts over all boxes and per box (sorted by site and box) of the given usage and event records."""
    by_box: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        by_box[(record.site, record.box)].append(record)
    rows = []
    for (site, box), mine in sorted(by_box.items()):
        utts = [r for r in mine if r.understood]
        p50, p95 = _percentiles([r.latency_ms for r in utts if r.latency_ms is not None])
        rows.append(
            BoxSummary(
                site,
                box,
                len(utts),
                sum(1 for r in mine if r.kind == "utterance" and not r.understood),
                sum(1 for r in mine if r.kind == "session" and r.payload.get("utterances", 1) > 0),  # noise alone is no conversation
                tuple(sorted({r.lang for r in utts if r.lang})),
                sum(r.duration_s or 0.0 for r in utts) / 60.0,
                sum(1 for r in utts if r.side == "staff"),
                sum(1 for r in utts if r.side == "resident"),
                p50,
                p95,
                sum(1 for r in mine if r.stream == "event"),
                sum(1 for r in mine if r.stream == "event" and r.kind == "error"),
            )
        )
    return Summary(
        len(rows),
        sum(r.utterances for r in rows),
        sum(r.not_understood for r in rows),
        sum(r.sessions for r in rows),
        tuple(sorted({lang for r in rows for lang in r.languages})),
        sum(r.speech_min for r in rows),
        tuple(rows),
    )


def _charts(out: Path, records: Sequence[Record], summary: Summary, start: datetime, end: datetime, tz: tzinfo | None) -> dict[str, Path]:
    made: dict[str, Path] = {}
    utts = [r for r in records if r.understood]
    rejected = [r for r in records if r.kind == "utterance" and not r.understood]
    events = [r for r in records if r.stream == "event"]
    boxes = [b.label for b in summary.per_box]
    if utts:
        langs = [lang for lang, _ in Counter(r.lang or UNKNOWN_LANG for r in utts).most_common()]
        shown = langs if len(langs) <= TOP_LANGS + 1 else langs[:TOP_LANGS]
        hours = {lang: [0] * 24 for lang in shown + (["other"] if len(shown) < len(langs) else [])}
        for r in utts:
            lang = r.lang or UNKNOWN_LANG
            hours[lang if lang in shown else "other"][datetime.fromtimestamp(r.ts, tz).hour] += 1
        made["hours"] = charts.stacked_bars(out / "hours.png", [f"{h:02d}" for h in range(24)], hours, "Understood utterances by hour of day and language", "utterances", "hour")
        days = [(start + timedelta(days=n)).date() for n in range((end.date() - start.date()).days + 1)]
        index = {d: n for n, d in enumerate(days)}
        per_site: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
        for r in utts:
            day = datetime.fromtimestamp(r.ts, tz).date()
            if day in index:
                per_site[r.site][index[day]] += 1
        made["days"] = charts.stacked_bars(out / "days.png", [d.strftime("%m-%d") for d in days], dict(sorted(per_site.items())), "Understood utterances per day and site", "utterances")
    if utts or rejected:
        modes = sorted({r.mode or "?" for r in utts})
        count = Counter((f"{r.site}/{r.box}", r.mode or "?") for r in utts)
        series = {m: [count[(b, m)] for b in boxes] for m in modes}
        if rejected:
            series[NOT_UNDERSTOOD] = [b.not_understood for b in summary.per_box]
        made["boxes"] = charts.stacked_hbars(out / "boxes.png", boxes, series, "Utterances per box and mode, and speech not understood", "utterances",
                                             colors={NOT_UNDERSTOOD: charts.GREY})
    if utts:
        made["sides"] = charts.stacked_hbars(
            out / "sides.png", boxes, {"staff": [b.staff for b in summary.per_box], "resident": [b.resident for b in summary.per_box]}, "Who spoke: staff and resident utterances per box", "utterances"
        )
    if rejected:
        reasons = [reason for reason, _ in Counter(r.rejected for r in rejected).most_common()]
        count = Counter((f"{r.site}/{r.box}", r.rejected) for r in rejected)
        made["not_understood"] = charts.stacked_hbars(out / "not_understood.png", boxes, {why: [count[(b, why)] for b in boxes] for why in reasons},
                                                      "Not understood: utterances with no words, per box and reason", "utterances")
    latencies = [r.latency_ms for r in utts if r.latency_ms is not None]
    if latencies:
        p50, p95 = _percentiles(latencies)
        made["latency"] = charts.latency_histogram(out / "latency.png", latencies, p50, p95)
        timed = [b for b in summary.per_box if b.latency_p50_ms is not None]
        made["latency_boxes"] = charts.latency_by_box(out / "latency_boxes.png", [b.label for b in timed], [b.latency_p50_ms for b in timed], [b.latency_p95_ms for b in timed])
    if events:
        kinds = sorted({r.kind for r in events})
        count = Counter((f"{r.site}/{r.box}", r.kind) for r in events)
        made["events"] = charts.stacked_hbars(out / "events.png", boxes, {k: [count[(b, k)] for b in boxes] for k in kinds}, "Events per box", "events")
    return made


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:62em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}
img{max-width:100%;height:auto;display:block;margin:.5em 0}.muted{color:#777}"""


def _num(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(summary: Summary, made: dict[str, Path], events: Sequence[Record], rejected: Sequence[Record], start: datetime, end: datetime, since_s: float) -> str:
    esc = html.escape
    img = lambda key, alt: f'<img src="{made[key].name}" alt="{esc(alt)}">' if key in made else '<p class="muted">No data in this period.</p>'
    overview = _table(
        ["Boxes", "Utterances", "Not understood", "Sessions", "Languages", "Speech minutes"],
        [[str(summary.boxes), str(summary.utterances), str(summary.not_understood), str(summary.sessions), str(len(summary.languages)), _num(summary.speech_min, 1)]],
    )
    per_box = _table(
        ["Box", "Utterances", "Not understood", "Sessions", "Languages", "Speech min", "Staff", "Resident", "Latency p50 ms", "p95 ms", "Events", "Errors"],
        [
            [
                b.label,
                str(b.utterances),
                str(b.not_understood),
                str(b.sessions),
                " ".join(b.languages) or "–",
                _num(b.speech_min, 1),
                str(b.staff),
                str(b.resident),
                _num(b.latency_p50_ms),
                _num(b.latency_p95_ms),
                str(b.events),
                str(b.errors),
            ]
            for b in summary.per_box
        ],
    )
    codes = Counter((f"{r.site}/{r.box}", r.kind, r.code or "") for r in events)
    event_table = _table(["Box", "Kind", "Code", "Count"], [[b, k, c, str(n)] for (b, k, c), n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))[:30]]) if codes else ""
    reasons = Counter((f"{r.site}/{r.box}", r.rejected or "") for r in rejected)
    reason_table = _table(["Box", "Reason", "Count"], [[b, why, str(n)] for (b, why), n in sorted(reasons.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))]) if reasons else ""
    period = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} ({since_s / 86400:g} days)" if since_s >= 86400 else f"{start:%Y-%m-%d %H:%M} to {end:%H:%M}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Madoguchi fleet report</title>
<style>{_CSS}</style></head><body>
<h1>Madoguchi fleet report</h1>
<p>{esc(period)}. Languages: {esc(", ".join(summary.languages) or "none")}.</p>
<h2>Summary</h2>{overview}{per_box}
<p class="muted">Utterances, languages, speech minutes, sides and latency count what the boxes understood. Not understood: speech in which
the box's speech recognition found no words (noise, babble, a voice it could not make out), counted apart and under no language.</p>
<h2>Utterances by hour of day</h2>{img("hours", "utterances by hour of day and language")}
<h2>Utterances per day</h2>{img("days", "utterances per day and site")}
<h2>Utterances per box</h2>{img("boxes", "utterances per box")}
<h2>Latency</h2>{img("latency", "latency histogram")}{img("latency_boxes", "latency p50 and p95 per box") if "latency_boxes" in made else ""}
<h2>Staff and resident</h2>{img("sides", "side split per box")}
<h2>Not understood</h2>{img("not_understood", "speech not understood per box and reason")}{reason_table}
<h2>Events and errors</h2>{img("events", "events per box")}{event_table}
<p class="muted">Generated {end.astimezone():%Y-%m-%d %H:%M %Z} by madoguchi fleet report.</p>
</body></html>
"""


def build_report(store: FleetStore, since_s: float, out_dir: str | Path, now: float | None = None, tz: tzinfo | None = None) -> Path:
    """Write ``out_dir/index.html`` and its PNGs for the records of the last ``since_s`` seconds; returns the HTML's path."""
    now = time.time() if now is None else now
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in CHARTS:  # a chart with no data this time must not show last run's picture
        (out / name).unlink(missing_ok=True)
    records = store.records(since_ts=now - since_s, until_ts=now)
    start, end = datetime.fromtimestamp(now - since_s, tz), datetime.fromtimestamp(now, tz)
    summary = summarize(records)
    made = _charts(out, records, summary, start, end, tz)
    page = out / "index.html"
    rejected = [r for r in records if r.kind == "utterance" and not r.understood]
    page.write_text(_html(summary, made, [r for r in records if r.stream == "event"], rejected, start, end, since_s), encoding="utf-8")
    log.info("report of %d records (%d boxes) in %s", len(records), summary.boxes, page)
    return page
