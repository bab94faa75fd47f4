"""``madoguchi replay``: the live pipeline driven by a recording instead of a microphone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from madoguchi.audio.wav import WavSource
from madoguchi.config import Settings
from madoguchi.events import FrontendEvent, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.vad import SileroVad
from madoguchi.timing import StageTimer

if TYPE_CHECKING:
    from madoguchi.telemetry.service import Telemetry

log = logging.getLogger(__name__)

STAGES = ("frontend",)
TELEMETRY_DRAIN_S = 10.0


def build_frontend(settings: Settings, timer: StageTimer | None = None) -> Frontend:
    return Frontend(settings, SileroVad(), timer)


def recording_source(settings: Settings, recording: Path, realtime: bool = False) -> WavSource:
    return WavSource(recording, settings.array.n_mics, settings.audio.channel_map, settings.audio.block_ms, realtime)


def frontend_events(settings: Settings, recording: Path, timer: StageTimer | None = None, realtime: bool = False) -> Iterator[FrontendEvent]:
    """Stream a recording block by block through the front end, exactly as live capture would."""
    frontend = build_frontend(settings, timer)
    source = recording_source(settings, recording, realtime)
    with source:
        for block in source.blocks():
            yield from frontend.process(block)
    yield from frontend.flush()


def utterance_record(utterance: Utterance) -> dict[str, object]:
    record = utterance.summary()
    record["elevation_deg"] = utterance.elevation_deg
    # Audio time from the end of speech to the endpointer's decision (the hangover's cost).
    record["endpoint_ms"] = round((utterance.decided_at_s - utterance.end_s) * 1000)
    return record


def format_utterance(record: dict[str, object]) -> str:
    return f"[{record['start_s']:7.2f} - {record['end_s']:7.2f}] {record['side']:<8} azimuth {record['azimuth_deg']:5.1f} deg  confidence {record['side_confidence']:.2f}"


def run_replay(settings: Settings, recording: Path, out: TextIO, as_json: bool, realtime: bool = False, telemetry: Telemetry | None = None) -> int:
    """Print one line per finished utterance (and report it as usage); returns how many there were."""
    count = 0
    try:
        for event in frontend_events(settings, recording, realtime=realtime):
            if not isinstance(event, Utterance):
                log.debug("%s", event)
                continue
            record = utterance_record(event)
            out.write((json.dumps(record, ensure_ascii=False) if as_json else format_utterance(record)) + "\n")
            out.flush()
            if telemetry is not None:
                telemetry.record_utterance(event)
            count += 1
    finally:
        if telemetry is not None:
            telemetry.stop(drain_s=TELEMETRY_DRAIN_S)  # what does not go now stays spooled for next time
    return count
