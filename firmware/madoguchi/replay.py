"""``madoguchi replay``: the live pipeline driven by a recording instead of a microphone.

``--stages frontend`` stops after side detection (no models). The whole pipeline runs the same
tasks as ``madoguchi run`` (interpreter/pipeline.py) and prints one line per utterance: who spoke,
in which language, what was said, and what the other side reads, with per-stage timings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from madoguchi.audio.wav import WavSource
from madoguchi.config import Settings
from madoguchi.display.frames import Moment, moment_of, write_frames
from madoguchi.events import Caption, FrontendEvent, Interpretation, Utterance
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.placement import Placement, PlacementTracker
from madoguchi.frontend.vad import SileroVad
from madoguchi.interpreter.latency import LatencyTable
from madoguchi.timing import StageTimer

if TYPE_CHECKING:
    from madoguchi.interpreter.stage import Interpreter
    from madoguchi.telemetry.service import Telemetry

log = logging.getLogger(__name__)


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


def interpretation_record(result: Interpretation) -> dict[str, object]:
    """The brief's fields (start_s … translation, per-stage timings in ms) plus how it was decided."""
    utterance, translation = result.utterance, result.translation
    record = utterance.summary()
    record["side"] = result.side
    record.update(
        lang=result.lang,
        lang_probability=None if result.lang_probability is None else round(result.lang_probability, 3),
        text=result.text,
        target_lang=translation.target_lang if translation else None,
        translation=translation.text if translation else None,
        translation_method=translation.method if translation else None,
        needs_review=translation.needs_review if translation else False,
        rejected=result.rejected,
        mode=result.mode,
    )
    record.update(result.timings_ms)
    return record


def usage_details(record: dict[str, object], timings_ms: dict[str, float]) -> dict[str, object]:
    """What telemetry's record_utterance adds to the utterance, from the record just printed
    (``interpretation_record``): the fleet counts what the counter was shown, the side corrected by
    language ID and ``rejected`` included (telemetry keeps a rejected one's guessed language out; words
    only leave if the site shares them)."""
    return {"side": record["side"], "lang": record["lang"], "target_lang": record["target_lang"], "rejected": record["rejected"],
            "timings_ms": timings_ms, "mode": record["mode"], "text": record["text"] or None, "translation": record["translation"]}


def placement_hint(settings: Settings, placement: Placement) -> str:
    """The message for sides that do not match the room: what was heard where, and the command that fixes it."""
    fleet = str(settings.paths.fleet_config)
    local = [name for name in settings.sources if name != fleet]
    config = local[-1] if local else "/etc/madoguchi/madoguchi.toml"
    return (f"madoguchi: speech is being ignored: {placement.describe(settings.sides)}\n"
            f"  the [sides] do not match where people speak; have each side talk in turn at the box while this learns their directions:\n"
            f"  madoguchi calibrate --config {config} --live 8 --write {config}")


def caption_record(caption: Caption) -> dict[str, object]:
    return {"partial": True, "start_s": caption.start_s, "at_s": caption.at_s, "side": caption.side, "lang": caption.lang, "text": caption.text}


def format_interpretation(record: dict[str, object]) -> str:
    head = f"[{record['start_s']:6.2f}-{record['end_s']:6.2f}] {record['side']:<8} {record['lang']:<3}"
    if record["rejected"]:
        return f"{head} (not words: {record['rejected']})"
    lines = [f"{head} {record['text']}"]
    if record["translation"] is not None:
        notes = [str(record["translation_method"])] + (["needs native review"] if record["needs_review"] else [])
        lines.append(f"{'':>25}-> {record['target_lang']:<3}{record['translation']}  ({', '.join(notes)})")
    elif record["target_lang"]:
        lines.append(f"{'':>25}-> {record['target_lang']:<3}(no phrase matched and no translation model for this pair: see `madoguchi models list`)")
    return "\n".join(lines)


def build_interpreter(settings: Settings, model_root: Path | None = None) -> Interpreter:
    """Load ASR and MT once (errors name the missing model and the command that fixes it)."""
    from madoguchi.asr.base import open_recognizer
    from madoguchi.asr.vocabulary import vocabulary_prompt
    from madoguchi.interpreter.stage import Interpreter
    from madoguchi.interpreter.translation import TranslationStage

    from madoguchi.models.store import store_root

    model_root = model_root or store_root(settings.paths.state_dir)
    recognizer = open_recognizer(settings.asr, model_root=model_root)
    try:
        translation = TranslationStage.from_settings(settings, model_root)
    except BaseException:
        recognizer.close()
        raise
    if settings.asr.vocabulary_prompt and translation.glossary is not None:
        staff = settings.languages.staff  # residents' languages decoded worse with a prompt (vocabulary.py)
        recognizer.set_vocabulary({staff: vocabulary_prompt(translation.glossary.vocabulary(staff), staff)})
    return Interpreter(settings, recognizer, translation)


async def interpret_recording(settings: Settings, recording: Path, interpreter: Interpreter, on_output: Callable[[Interpretation | Caption], None], realtime: bool = False,
                              on_heard: Callable[[FrontendEvent], None] | None = None) -> None:
    """Replay through the same capture thread and stage tasks as the service (``on_heard``: every front-end event)."""
    from madoguchi.interpreter.pipeline import Capture, Heard, Item, Stages

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Item] = asyncio.Queue()
    capture = Capture(recording_source(settings, recording, realtime), build_frontend(settings), lambda item: loop.call_soon_threadsafe(queue.put_nowait, item), paced=realtime)

    async def deliver(output: Interpretation | Caption) -> None:
        on_output(output)

    stages = Stages(interpreter, deliver, capture, captions=realtime and settings.asr.partials)
    stages.start()
    worker = loop.run_in_executor(None, capture.run)
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Heard):
                if on_heard is not None:
                    on_heard(item.event)
                if stages.takes(item.event):
                    stages.submit(item)
                else:
                    log.debug("%s", item.event)
    finally:
        capture.stop()
        await worker
        await stages.finish()


def run_replay(settings: Settings, recording: Path, out: TextIO, as_json: bool, realtime: bool = False, telemetry: Telemetry | None = None,
               stages: str = "all", model_root: Path | None = None, summary: TextIO | None = sys.stderr, frames_dir: Path | None = None) -> int:
    """Print one line per finished utterance (and report it as usage); returns how many there were.

    ``frames_dir``: also write every frame both faces would have shown (display/frames.py).
    """
    placement = PlacementTracker.for_settings(settings)
    if stages == "frontend":
        count = _replay_frontend(settings, recording, out, as_json, realtime, telemetry, placement)
        _say_placement(settings, placement.verdict(), summary)
        return count
    source = recording_source(settings, recording)
    with source:  # a bad recording is reported before any model loads
        duration_s = source.duration_s
    interpreter = build_interpreter(settings, model_root)
    latencies = LatencyTable()
    count = 0
    moments: list[Moment] = []

    def on_heard(event: FrontendEvent) -> None:
        placement.heard(event)
        if frames_dir is not None:
            moments.append(moment_of(event))

    def on_output(output: Interpretation | Caption) -> None:
        nonlocal count
        if frames_dir is not None:
            moments.append(moment_of(output))
        if isinstance(output, Caption):
            if as_json:
                out.write(json.dumps(caption_record(output), ensure_ascii=False) + "\n")
                out.flush()
            return
        record = interpretation_record(output)
        out.write((json.dumps(record, ensure_ascii=False) if as_json else format_interpretation(record)) + "\n")
        out.flush()
        latencies.add(output.timings_ms)
        count += 1
        if telemetry is not None:
            telemetry.record_utterance(output.utterance, **usage_details(record, output.timings_ms))

    try:
        asyncio.run(interpret_recording(settings, recording, interpreter, on_output, realtime, on_heard))
    finally:
        interpreter.close()
        if telemetry is not None:
            telemetry.stop(drain_s=TELEMETRY_DRAIN_S)  # what does not go now stays spooled for next time
    if summary is not None and count:
        summary.write(latencies.format() + "\n")
    _say_placement(settings, placement.verdict(), summary)
    if frames_dir is not None:
        written = write_frames(settings, moments, frames_dir, end_s=duration_s)
        if summary is not None:
            summary.write(f"faces: {written.pairs} frame pairs in {written.directory}, contact sheet {written.contact_sheet}\n")
    return count


def _say_placement(settings: Settings, placement: Placement, summary: TextIO | None) -> None:
    """Once per run, when most of the speech came from where neither side is (``frontend/placement.py``)."""
    if placement.off_sector and summary is not None:
        summary.write(placement_hint(settings, placement) + "\n")
        summary.flush()


def _replay_frontend(settings: Settings, recording: Path, out: TextIO, as_json: bool, realtime: bool, telemetry: Telemetry | None, placement: PlacementTracker) -> int:
    count = 0
    try:
        for event in frontend_events(settings, recording, realtime=realtime):
            placement.heard(event)
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
