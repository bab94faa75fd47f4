"""Run the real front end over a simulated scene: shared by the bar tests and the benchmark."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import soundfile

from madoguchi.app.parts import frontend_events
from madoguchi.config import Settings, load_settings
from madoguchi.events import SpeechPaused, Utterance, UtteranceRejected
from madoguchi.timing import StageTimer
from tests.sim.counter import Scene


@dataclass(frozen=True)
class SceneRun:
    scene: Scene
    settings: Settings
    utterances: tuple[Utterance, ...]
    rejected: tuple[UtteranceRejected, ...]
    cpu_s: dict[str, float]  # per stage
    audio_s: float
    settled: tuple[SpeechPaused, ...] = ()  # pauses whose words were final before the utterance closed

    def hypotheses(self) -> list[dict[str, object]]:
        return [u.summary() for u in self.utterances]


def run_scene(scene: Scene, **overrides: dict[str, object]) -> SceneRun:
    """Replay ``scene`` through the front end; ``overrides`` replaces settings per table."""
    settings = load_settings(scene.config_path, system_layers=False)
    for table, values in overrides.items():
        settings = dataclasses.replace(settings, **{table: dataclasses.replace(getattr(settings, table), **values)})
    timer = StageTimer()
    utterances: list[Utterance] = []
    rejected: list[UtteranceRejected] = []
    settled: list[SpeechPaused] = []
    with timer.stage("total"):
        for event in frontend_events(settings, scene.wav_path, timer):
            if isinstance(event, Utterance):
                utterances.append(event)
            elif isinstance(event, UtteranceRejected):
                rejected.append(event)
            elif isinstance(event, SpeechPaused) and event.settled:
                settled.append(event)
    return SceneRun(scene, settings, tuple(utterances), tuple(rejected), dict(timer.seconds), soundfile.info(str(scene.wav_path)).duration, tuple(settled))
