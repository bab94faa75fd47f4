"""The parts a run is made of, built from the settings: the front end, a recording's source, the interpreter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from madoguchi.audio.wav import WavSource
from madoguchi.config import Settings
from madoguchi.events import FrontendEvent
from madoguchi.frontend.pipeline import Frontend
from madoguchi.frontend.vad import SileroVad
from madoguchi.timing import StageTimer

if TYPE_CHECKING:
    from madoguchi.frontend.wake import WakePhraseDetector
    from madoguchi.interpreter.stage import Interpreter
    from madoguchi.mt.glossary import Glossary


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


def build_interpreter(settings: Settings, model_root: Path | None = None) -> Interpreter:
    """Load ASR and MT once (errors name the missing model and the command that fixes it)."""
    from madoguchi.asr.base import open_recognizer
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
    recognizer.set_vocabulary(staff_prompts(settings, translation.glossary))
    return Interpreter(settings, recognizer, translation)


def staff_prompts(settings: Settings, glossary: Glossary | None) -> dict[str, str]:
    """Whisper's prompt per language: the glossary's terms for the clerk's speech only (residents'
    languages decoded worse with one, asr/vocabulary.py); {} with ``[asr] vocabulary_prompt = false``."""
    from madoguchi.asr.vocabulary import vocabulary_prompt

    if not settings.asr.vocabulary_prompt or glossary is None:
        return {}
    staff = settings.languages.staff
    return {staff: vocabulary_prompt(glossary.vocabulary(staff), staff, settings.asr.vocabulary_terms)}


def build_wake(settings: Settings, model_root: Path | None = None) -> WakePhraseDetector | None:
    """Privacy mode's wake-phrase detector (``[session] start = "wake_phrase"``), else None; a missing
    model is an error naming the command that fetches it."""
    if settings.session.start != "wake_phrase":
        return None
    from madoguchi.frontend.wake import WakePhraseDetector
    from madoguchi.models.store import store_root

    root = model_root or store_root(settings.paths.state_dir)
    return WakePhraseDetector(root / settings.session.wake_model, settings.session.wake_threshold or None)
