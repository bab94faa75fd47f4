"""``madoguchi replay`` and ``madoguchi demo``: the session runner driven by a recording.

The same runner as ``madoguchi run`` (app/runner.py), so mute, swap and every stage behave as live;
``--stages frontend`` stops after side detection (no models). Prints one line per utterance:
who spoke, in which language, what was said, and what the other side reads, with per-stage
timings; the latency table and any placement hint go to ``summary`` (stderr).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TextIO

from madoguchi.app.parts import build_interpreter, build_wake, recording_source
from madoguchi.app.runner import Runner, Sink, Stop
from madoguchi.app.sinks import FrameRecorder, PlacementWatch, Printer, TelemetrySink
from madoguchi.config import Settings

TELEMETRY_DRAIN_S = 10.0  # at the end of a recording: what does not go by then stays spooled for next time


def run_replay(settings: Settings, recording: Path, out: TextIO, as_json: bool, realtime: bool = False, layers: list | None = None,
               stages: Stop | str = Stop.ALL, model_root: Path | None = None, summary: TextIO | None = sys.stderr, frames_dir: Path | None = None) -> int:
    """Print one line per finished utterance (and report it as usage when ``[mqtt] host`` is set,
    ``layers`` being the config files); returns how many there were.

    ``frames_dir``: also write every frame both faces would have shown (display/frames.py).
    """
    stop_after = Stop(stages)
    source = recording_source(settings, recording, realtime)
    with source:  # a bad recording is reported before any model loads
        duration_s = source.duration_s
    # Sinks close in reverse order: the latency table, then the placement hint, then the frames.
    sinks: list[Sink] = []
    if settings.mqtt.enabled:
        sinks.append(TelemetrySink(settings, layers or [], drain_s=TELEMETRY_DRAIN_S))
    if frames_dir is not None:
        sinks.append(FrameRecorder(settings, frames_dir, end_s=duration_s, summary=summary))
    sinks += [PlacementWatch(settings, live=False, summary=summary), Printer(out, as_json, summary)]
    wake = build_wake(settings, model_root)
    interpreter = build_interpreter(settings, model_root) if stop_after is Stop.ALL else None
    try:
        return asyncio.run(Runner(settings, source, sinks, interpreter=interpreter, paced=realtime, wake=wake.process if wake is not None else None).run())
    finally:
        if interpreter is not None:
            interpreter.close()
