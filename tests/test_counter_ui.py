"""The service's faces and buttons together: gpiozero's MockFactory pins, luma's dummy panels."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from madoguchi.app.capture import as_counter_sees
from madoguchi.config import ControlsSettings, DisplaySettings, Settings
from madoguchi.counter import CounterState
from madoguchi.counter_ui import CounterUI
from madoguchi.events import SpeechSoFar, SpeechStarted, Utterance

SETTINGS = dataclasses.replace(Settings(), display=DisplaySettings(driver="dummy"), controls=ControlsSettings(bounce_s=0.01, hold_s=0.3))
PINS = SETTINGS.controls


def utterance(side: str) -> Utterance:
    return Utterance(1.0, 2.0, side, 90.0, 0.0, 0.9, False, 2.3, "silence", 0.8, np.zeros(16, np.float32))


def test_mute_drops_speech_before_anything_hears_it_and_swap_exchanges_the_sides() -> None:
    staff = utterance("staff")
    assert as_counter_sees(staff, CounterState()) is staff
    assert as_counter_sees(staff, CounterState(muted=True)) is None
    assert as_counter_sees(SpeechStarted(1.0), CounterState(muted=True)) is None
    assert as_counter_sees(staff, CounterState(swapped=True)).side == "resident"
    caption_audio = SpeechSoFar(1.0, 2.0, "resident", np.zeros(4, np.float32))
    assert as_counter_sees(caption_audio, CounterState(swapped=True)).side == "staff"


class Box:
    """A CounterUI on an event loop, with a hand on its buttons."""

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self.factory = MockFactory()
        self.states: list[CounterState] = []
        self.calls = 0
        self.problems: list[tuple[str, str]] = []
        self.now = 100.0
        self.counter = CounterState(mode=settings.display.mode)
        self.ui = CounterUI(settings, counter=lambda: self.counter, on_counter=self._set_counter, on_operator_call=self._called,
                            on_problem=lambda c, m: self.problems.append((c, m)), pin_factory=self.factory, clock=lambda: self.now)

    def _set_counter(self, counter: CounterState) -> None:  # as the runner does: keep it, tell the faces
        self.counter = counter
        self.states.append(counter)
        self.ui.show_counter(counter)

    def _called(self) -> None:
        self.calls += 1

    async def push(self, pin: int, seconds: float = 0.05) -> None:
        before = len(self.states)
        self.factory.pin(pin).drive_low()
        await asyncio.sleep(seconds)
        self.factory.pin(pin).drive_high()
        for _ in range(200):  # the callback hops threads onto the loop
            if len(self.states) > before:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"GPIO {pin}: no state change")


def run(coro) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def test_buttons_drive_the_counter_the_faces_and_the_fleet() -> None:
    box = Box()

    async def scenario() -> None:
        box.ui.open(asyncio.get_running_loop())
        assert box.problems == []
        await box.push(PINS.language_pin)
        assert box.states[-1].resident_lang == SETTINGS.languages.residents[0]
        assert box.ui.faces.views(box.now)["staff"].status.other_lang == SETTINGS.languages.residents[0]
        await box.push(PINS.mode_pin)
        assert box.ui.faces.views(box.now)["resident"].status.mode == "caption"
        await box.push(PINS.operator_pin)
        assert box.calls == 1 and box.ui.faces.views(box.now)["staff"].status.operator_call
        await box.push(PINS.language_pin, seconds=0.5)  # held: the list opens on the resident's face
        assert box.ui.faces.views(box.now)["resident"].screen == "list"
        await box.push(PINS.mute_pin)
        assert box.states[-1].muted and all(v.dim for v in box.ui.faces.views(box.now).values())

    try:
        run(scenario())
    finally:
        box.ui.close()


def test_side_leds_follow_the_speaker_and_swap_moves_the_faces() -> None:
    box = Box()

    async def scenario() -> None:
        box.ui.open(asyncio.get_running_loop())
        staff_led, resident_led = box.factory.pin(PINS.staff_led_pin), box.factory.pin(PINS.resident_led_pin)
        box.ui.heard(SpeechSoFar(1.0, 2.0, "resident", np.zeros(4, np.float32)))
        box.ui._refresh()
        assert (staff_led.state, resident_led.state) == (False, True)
        await box.push(PINS.swap_pin)
        box.ui._refresh()
        assert (staff_led.state, resident_led.state) == (True, False)  # the resident now sits at the staff-wired face
        faces = box.ui.faces
        assert faces.panel_for("resident") is faces.panels["staff"]
        faces.push(box.now)
        greeting = faces.views(box.now)["resident"]
        assert greeting.screen == "idle"
        assert faces.panels["staff"].device.image is not None

    try:
        run(scenario())
    finally:
        box.ui.close()


@pytest.mark.filterwarnings("ignore::gpiozero.PinFactoryFallback")  # gpiozero tries each factory in turn: none works here
def test_missing_panels_and_gpio_are_reported_and_the_box_goes_on() -> None:
    """No SPI and no GPIO chip on this machine: both become errors with their codes, not a crash."""
    settings = dataclasses.replace(Settings(), display=DisplaySettings(driver="ssd1322"))
    box = Box(settings)
    box.ui._pin_factory = None  # gpiozero's default factory: none works on a machine without GPIO

    async def scenario() -> None:
        box.ui.open(asyncio.get_running_loop())
        box.ui.heard(SpeechStarted(1.0))
        box.ui.faces.push(box.now)  # no panels: nothing to send, nothing raised

    run(scenario())
    codes = [code for code, _ in box.problems]
    assert codes == ["display_unavailable", "controls_gpio"], box.problems
    assert box.ui.faces.panels == {} and box.ui.controls is None
    box.ui.close()


def test_the_faces_keep_redrawing_while_the_service_runs() -> None:
    box = Box()

    async def scenario() -> None:
        box.ui.open(asyncio.get_running_loop())
        task = asyncio.create_task(box.ui.run())
        deadline = time.monotonic() + 10
        while box.ui.faces.panels["resident"].frames_sent == 0 and time.monotonic() < deadline:  # noqa: ASYNC110  # the frame counter is the thing tested
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(scenario())
    finally:
        box.ui.close()
    assert box.ui.faces.panels["resident"].frames_sent >= 1


def test_a_language_list_left_open_closes_by_itself() -> None:
    box = Box()
    box.ui.picker_timeout_s = 0.3

    async def scenario() -> None:
        box.ui.open(asyncio.get_running_loop())
        await box.push(PINS.language_pin, seconds=0.5)  # held: the list opens
        assert box.states[-1].picker == 0
        await box.push(PINS.language_pin)  # moves down: the timeout starts again
        await asyncio.sleep(0.6)
        assert box.states[-1].picker is None and box.states[-1].resident_lang is None  # nothing was chosen
        assert box.ui.faces.views(box.now)["resident"].screen == "idle"

    try:
        run(scenario())
    finally:
        box.ui.close()


def test_a_muted_box_runs_no_speech_through_the_front_end() -> None:
    """Capture reads the array but hands nothing on while muted; unmuted, the same audio gives utterances."""
    from pathlib import Path

    from madoguchi.app.capture import Capture, Heard
    from madoguchi.app.parts import build_frontend, recording_source
    from madoguchi.config import load_settings

    demo = Path(__file__).resolve().parents[1] / "firmware" / "madoguchi" / "data" / "demo"
    settings = load_settings(demo / "counter-demo.toml", system_layers=False)

    def heard(counter: CounterState) -> list:
        posted: list = []
        capture = Capture(recording_source(settings, demo / "counter-demo.flac"), build_frontend(settings), posted.append, paced=True)
        capture.counter = counter
        capture.run()
        assert posted[-1] is None
        return [item.event for item in posted if isinstance(item, Heard)]

    assert heard(CounterState(muted=True)) == []
    assert sum(isinstance(e, Utterance) for e in heard(CounterState())) >= 10


def test_the_front_end_says_who_is_speaking_before_the_turn_ends() -> None:
    """The side LEDs and the faces' "who is speaking" come from SpeakerHeard, 0.4 s into a turn."""
    from pathlib import Path

    from madoguchi.app.parts import frontend_events
    from madoguchi.config import load_settings
    from madoguchi.events import SpeakerHeard

    demo = Path(__file__).resolve().parents[1] / "firmware" / "madoguchi" / "data" / "demo"
    settings = load_settings(demo / "counter-demo.toml", system_layers=False)
    hints: dict[float, SpeakerHeard] = {}
    utterances = []
    for event in frontend_events(settings, demo / "counter-demo.flac"):
        if isinstance(event, SpeakerHeard):
            hints[event.start_s] = event
        elif isinstance(event, Utterance):
            utterances.append(event)
    assert len(utterances) >= 10
    for utterance in utterances:
        # One per utterance, before it ends; it starts where the endpointer opened the utterance,
        # which the talker's first loud frame may follow by a little murmur (frontend/trim.py).
        hint = max((h for h in hints.values() if h.start_s <= utterance.start_s), key=lambda h: h.start_s)
        assert utterance.start_s - hint.start_s < 0.5
        assert hint.side == utterance.side and hint.start_s + 0.4 <= hint.at_s < utterance.decided_at_s
