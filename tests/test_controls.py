"""Buttons and LEDs through gpiozero's MockFactory, and the config's GPIO cross-checks.

Presses are delivered synchronously in the thread that drives the mock pin; holds come from
gpiozero's hold thread, so the tests wait on a condition (with a generous timeout) rather than
sleeping. Timing assertions use lower bounds, which a loaded machine cannot break.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import threading
import time
import tomllib
from pathlib import Path

import pytest
from gpiozero import Button, Device, GPIOPinInUse
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory

from madoguchi.config import ControlsSettings, DisplaySettings, Settings, settings_from_layers
from madoguchi.controls import Controls, ControlsError
from madoguchi.controls.gpio import BUTTON_KEYS, lit_face
from madoguchi.counter import BUTTONS, CounterState
from madoguchi.errors import ConfigError, MadoguchiError
from madoguchi.pins import check_pins

PINMAP = Path(__file__).resolve().parents[1] / "hw" / "pinmap.toml"
# Presses: contacts well past bounce_s and nowhere near hold_s, so load cannot turn one into a hold.
PRESSING = ControlsSettings(bounce_s=0.01, hold_s=5.0)
HOLDING = ControlsSettings(bounce_s=0.01, hold_s=0.1)
TIMEOUT_S = 5.0


class Inputs:
    """The on_input callable: records (kind, button) and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self._changed = threading.Condition()

    def __call__(self, kind: str, button: str) -> None:
        with self._changed:
            self.items.append((kind, button))
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[tuple[str, str]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.items) >= count, TIMEOUT_S), self.items
            return list(self.items)


@pytest.fixture()
def factory():
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture()
def inputs() -> Inputs:
    return Inputs()


def tap(factory: MockFactory, pin: int, down_s: float = 0.03) -> None:
    factory.pin(pin).drive_low()  # buttons pull up: pressed reads low
    time.sleep(down_s)
    factory.pin(pin).drive_high()


def wait_until(predicate, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- buttons ------------------------------------------------------------------------------


@pytest.mark.parametrize("button", BUTTONS)
def test_each_button_reports_a_press_on_release(factory, inputs, button: str) -> None:
    pin = getattr(PRESSING, BUTTON_KEYS[button])
    with Controls(PRESSING, inputs, pin_factory=factory):
        factory.pin(pin).drive_low()
        assert inputs.items == []  # nothing yet: it might become a hold
        time.sleep(0.03)
        factory.pin(pin).drive_high()
        assert inputs.items == [("press", button)]


@pytest.mark.parametrize("button", BUTTONS)
def test_each_button_reports_a_hold_while_down_and_no_press_on_release(factory, inputs, button: str) -> None:
    pin = getattr(HOLDING, BUTTON_KEYS[button])
    with Controls(HOLDING, inputs, pin_factory=factory):
        factory.pin(pin).drive_low()
        assert inputs.wait_for(1) == [("hold", button)]  # reported while still held down
        factory.pin(pin).drive_high()
        assert inputs.items == [("hold", button)]  # the release of a hold is not a press


def test_a_hold_fires_once_however_long_the_button_stays_down(factory, inputs) -> None:
    with Controls(HOLDING, inputs, pin_factory=factory):
        factory.pin(5).drive_low()
        inputs.wait_for(1)
        time.sleep(0.35)  # over three more hold_s
        factory.pin(5).drive_high()
        assert inputs.items == [("hold", "language")]


def test_presses_and_holds_in_a_row(factory, inputs) -> None:
    with Controls(HOLDING, inputs, pin_factory=factory):
        tap(factory, 5, 0.02)
        factory.pin(5).drive_low()
        inputs.wait_for(2)
        factory.pin(5).drive_high()
        tap(factory, 5, 0.02)
        tap(factory, 6, 0.02)
    # A tap shorter than hold_s (0.1) can only become a hold on a machine stalled for longer,
    # so only the order of buttons is asserted strictly.
    assert [b for _, b in inputs.items] == ["language", "language", "language", "swap"]
    assert inputs.items[1] == ("hold", "language")


def test_contact_bounce_makes_one_press(factory, inputs) -> None:
    # bounce_s is large so that no scheduler stall inside a burst of edges passes for a press.
    settings = ControlsSettings(bounce_s=0.2, hold_s=5.0)
    with Controls(settings, inputs, pin_factory=factory):
        pin = factory.pin(13)
        for _ in range(8):  # the contacts chatter as they close ...
            pin.drive_low()
            pin.drive_high()
        pin.drive_low()
        time.sleep(0.3)  # ... then stay closed ...
        pin.drive_high()
        for _ in range(8):  # ... and chatter again as they open
            pin.drive_low()
            pin.drive_high()
        assert inputs.items == [("press", "mode")]


def test_bounce_time_and_hold_time_reach_gpiozero(factory, inputs) -> None:
    settings = ControlsSettings(bounce_s=0.05, hold_s=1.5)
    with Controls(settings, inputs, pin_factory=factory):
        assert factory.pin(5).bounce == 0.05  # what lgpio debounces with on the box
        assert factory.pin(5).pull == "up"


def test_a_failing_handler_does_not_stop_later_input(factory, caplog) -> None:
    calls = []

    def on_input(kind: str, button: str) -> None:
        calls.append(button)
        if len(calls) == 1:
            raise RuntimeError("bug in the service")

    with Controls(PRESSING, on_input, pin_factory=factory), caplog.at_level(logging.ERROR):
        tap(factory, 16)
        tap(factory, 17)
    assert calls == ["mute", "operator"]
    assert "bug in the service" in caplog.text


# --- side LEDs ----------------------------------------------------------------------------


def lit(factory: MockFactory) -> tuple[bool, bool]:
    """(staff face LED, resident face LED) as the pins stand."""
    return bool(factory.pin(4).state), bool(factory.pin(27).state)


def test_side_led_follows_the_speaking_side(factory, inputs) -> None:
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        assert lit(factory) == (False, False)
        controls.show("staff", CounterState(), True)
        assert lit(factory) == (True, False)
        controls.show("resident", CounterState(), True)
        assert lit(factory) == (False, True)
        controls.show(None, CounterState(), True)
        assert lit(factory) == (False, False)


def test_swapped_lights_the_face_where_the_speaker_now_sits(factory, inputs) -> None:
    swapped = CounterState(swapped=True)
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        controls.show("resident", swapped, True)
        assert lit(factory) == (True, False)  # the resident sits at the face wired as staff's
        controls.show("staff", swapped, True)
        assert lit(factory) == (False, True)
        controls.show(None, swapped, True)
        assert lit(factory) == (False, False)
    assert [lit_face(s, True) for s in ("staff", "resident", None)] == ["resident", "staff", None]


# --- status LED ---------------------------------------------------------------------------


def periods(states, value: bool) -> list[float]:
    """How long the pin stayed at ``value`` each time, from MockPin's history of (delta, state)."""
    return [after.timestamp for before, after in zip(states, states[1:]) if bool(before.state) == value]


def test_status_steady_on_when_listening_and_healthy(factory, inputs) -> None:
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        status = factory.pin(12)
        status.clear_states()
        controls.show(None, CounterState(), True)
        time.sleep(0.25)  # longer than an error blink period: a blink would show here
        assert [bool(s.state) for s in status.states] == [False, True]


def test_status_fast_blink_when_not_healthy(factory, inputs) -> None:
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        status = factory.pin(12)
        status.clear_states()
        controls.show(None, CounterState(muted=True), False)  # an error outranks mute
        wait_until(lambda: len(status.states) >= 8)
        history = list(status.states)
        on, off = periods(history, True), periods(history, False)[1:]  # [0] is the time before show()
        assert min(on + off) >= 0.08  # 0.1 s each, never shorter
        assert statistics.median(on) < 0.5 and statistics.median(off) < 0.5  # clearly fast


def test_status_slow_blink_when_muted_and_repeated_show_does_not_restart_it(factory, inputs) -> None:
    muted = CounterState(muted=True)
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        status = factory.pin(12)
        status.clear_states()
        # The service calls show() on every change; the blink must keep its rhythm through that.
        while len(status.states) < 3:
            controls.show("staff", muted, True)
            time.sleep(0.05)
        first_on = periods(list(status.states), True)[0]
        assert first_on >= 0.9  # 1 s on (and a restarted blink would never get there)


def test_status_goes_from_blink_back_to_steady(factory, inputs) -> None:
    with Controls(PRESSING, inputs, pin_factory=factory) as controls:
        status = factory.pin(12)
        controls.show(None, CounterState(), False)
        wait_until(lambda: not status.state)  # blinking
        controls.show(None, CounterState(), True)
        assert status.state
        status.clear_states()
        time.sleep(0.25)
        assert [bool(s.state) for s in status.states] == [True]  # steady: no more changes


def test_close_switches_every_led_off_and_frees_the_pins(factory, inputs) -> None:
    controls = Controls(PRESSING, inputs, pin_factory=factory)
    controls.show("staff", CounterState(muted=True), True)
    assert factory.pin(4).state and factory.pin(12).state
    controls.close()
    assert not factory.pin(4).state and not factory.pin(12).state
    controls.close()  # twice is fine
    controls.show("staff", CounterState(), True)  # after close: ignored, nothing relit
    assert not factory.pin(4).state and not factory.pin(12).state
    assert controls.pins == {}
    tap(factory, 5)
    assert inputs.items == []  # no input after close
    with Controls(PRESSING, inputs, pin_factory=factory):  # every pin was released
        pass


# --- fitted or not ------------------------------------------------------------------------


def test_unfitted_pins_are_skipped(factory, inputs) -> None:
    settings = dataclasses.replace(PRESSING, language_pin=-1, resident_led_pin=-1, status_led_pin=-1)
    with Controls(settings, inputs, pin_factory=factory) as controls:
        assert set(controls.pins) == {"swap", "mode", "mute", "operator", "staff"}
        assert controls.pins["swap"] == 6
        controls.show("resident", CounterState(muted=True), False)  # no LED for it: no error
        controls.show("staff", CounterState(), True)
        assert factory.pin(4).state
        tap(factory, 6)
        assert inputs.items == [("press", "swap")]
        Button(5, pin_factory=factory).close()  # GPIO 5 was never claimed


def test_disabled_controls_open_nothing(factory, inputs) -> None:
    with Controls(ControlsSettings(enabled=False), inputs, pin_factory=factory) as controls:
        assert controls.pins == {}
        controls.show("staff", CounterState(), True)
        with Button(5, pin_factory=factory), Button(4, pin_factory=factory):
            pass


def test_default_pins_are_the_pinmap() -> None:
    pinmap = tomllib.loads(PINMAP.read_text(encoding="utf-8"))
    buttons, leds, panels = pinmap["buttons"], pinmap["leds"], pinmap["panels"]
    c, d = ControlsSettings(), DisplaySettings()
    assert (c.language_pin, c.swap_pin, c.mode_pin, c.mute_pin, c.operator_pin) == (
        buttons["language"], buttons["swap_sides"], buttons["caption_mode"], buttons["privacy_mute"], buttons["operator_call"])
    assert (c.staff_led_pin, c.resident_led_pin, c.status_led_pin) == (leds["staff_side"], leds["resident_side"], leds["status"])
    assert c.bounce_s == pinmap["electrical"]["button_bounce_ms"] / 1000
    assert (d.staff_dc_pin, d.staff_rst_pin, d.resident_dc_pin, d.resident_rst_pin) == (
        panels["staff"]["dc"], panels["staff"]["rst"], panels["resident"]["dc"], panels["resident"]["rst"])
    assert (d.spi_port, d.staff_spi_device, d.resident_spi_device) == (
        panels["staff"]["spi_port"], panels["staff"]["spi_device"], panels["resident"]["spi_device"])
    assert panels["resident"]["spi_port"] == d.spi_port


# --- failures -----------------------------------------------------------------------------


def test_a_pin_in_use_is_one_clear_error_and_nothing_stays_claimed(factory, inputs) -> None:
    taken = Button(13, pin_factory=factory)  # someone else holds the mode button's pin
    with pytest.raises(ControlsError) as caught:
        Controls(PRESSING, inputs, pin_factory=factory)
    err = caught.value
    assert isinstance(err, MadoguchiError) and isinstance(err, RuntimeError)
    assert err.code == "controls_gpio" and (err.key, err.pin) == ("mode_pin", 13)
    assert isinstance(err.__cause__, GPIOPinInUse)
    assert "[controls] mode_pin = 13" in str(err) and "already in use" in str(err) and "-1 when not fitted" in str(err)
    taken.close()
    with Controls(PRESSING, inputs, pin_factory=factory):  # the pins opened before the failure were released
        pass


def test_two_keys_on_one_pin_is_the_same_error(factory, inputs) -> None:
    with pytest.raises(ControlsError) as caught:
        Controls(dataclasses.replace(PRESSING, status_led_pin=4), inputs, pin_factory=factory)
    assert (caught.value.key, caught.value.pin) == ("status_led_pin", 4)


def test_no_pin_factory_is_one_clear_error(monkeypatch, inputs) -> None:
    monkeypatch.setattr(Device, "pin_factory", None)  # as on a fresh process: gpiozero picks one
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no_such_factory")
    with pytest.raises(ControlsError) as caught:
        Controls(PRESSING, inputs)
    assert caught.value.key is None and isinstance(caught.value.__cause__, BadPinFactory)
    assert "lgpio" in str(caught.value) and "enabled = false" in str(caught.value)


def test_a_factory_that_fails_is_one_clear_error(inputs) -> None:
    class Broken(MockFactory):
        def pin(self, name, pin_class=None, **kwargs):
            raise OSError("GPIO busy")

    with pytest.raises(ControlsError) as caught:
        Controls(PRESSING, inputs, pin_factory=Broken())
    assert caught.value.key == "language_pin" and "already in use" in str(caught.value)


# --- config cross-checks (check_pins) -----------------------------------------------------


def settings(**tables) -> Settings:
    return Settings(**{name: cls(**values) for name, (cls, values) in tables.items()})


def test_defaults_have_no_pin_problems() -> None:
    assert check_pins(Settings()) == []


def test_a_pin_used_twice_names_both_keys() -> None:
    (problem,) = check_pins(settings(controls=(ControlsSettings, {"swap_pin": 5})))
    table, key, message = problem
    assert (table, key) == ("controls", "swap_pin")
    assert "GPIO 5 is also [controls] language_pin" in message and "allowed:" in message and "-1 when not fitted" in message


def test_a_button_on_a_panel_pin() -> None:
    (problem,) = check_pins(settings(controls=(ControlsSettings, {"operator_pin": 24})))
    assert problem[:2] == ("controls", "operator_pin") and "[display] staff_dc_pin" in problem[2]


def test_a_pin_on_spi0_says_which_line_and_suggests_a_free_one() -> None:
    (problem,) = check_pins(settings(controls=(ControlsSettings, {"mute_pin": 10})))
    table, key, message = problem
    assert (table, key) == ("controls", "mute_pin")
    assert message.startswith("GPIO 10 is SPI0 MOSI, used by the panels")
    assert "allowed: a GPIO off SPI0 (7-11)" in message and "e.g. 16" in message  # 16 was freed by the move


def test_panel_pins_are_checked_against_spi_and_each_other() -> None:
    problems = check_pins(settings(display=(DisplaySettings, {"staff_rst_pin": 8, "resident_dc_pin": 24})))
    assert [(t, k) for t, k, _ in problems] == [("display", "staff_rst_pin"), ("display", "resident_dc_pin")]
    assert "SPI0 CE0" in problems[0][2] and "-1 when not fitted" not in problems[0][2]
    assert "[display] staff_dc_pin" in problems[1][2]


def test_spi1_has_its_own_pins() -> None:
    problems = check_pins(settings(display=(DisplaySettings, {"spi_port": 1})))
    assert [(k, m.split(",")[0]) for _, k, m in problems] == [
        ("mute_pin", "GPIO 16 is SPI1 CE2"), ("operator_pin", "GPIO 17 is SPI1 CE1")]
    assert "SPI1 (16-21)" in problems[0][2]
    assert check_pins(settings(display=(DisplaySettings, {"spi_port": 1}), controls=(ControlsSettings, {"mute_pin": 10, "operator_pin": 9}))) == []


def test_other_spi_ports_are_not_checked_and_say_so(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="madoguchi.pins"):
        assert check_pins(settings(display=(DisplaySettings, {"spi_port": 3}), controls=(ControlsSettings, {"mute_pin": 10}))) == []
    assert "spi_port = 3" in caplog.text and "not checked" in caplog.text


@pytest.mark.parametrize("driver", ["dummy", "none"])
def test_no_panels_means_no_spi_and_no_panel_pins(driver: str) -> None:
    assert check_pins(settings(display=(DisplaySettings, {"driver": driver}), controls=(ControlsSettings, {"mute_pin": 10, "swap_pin": 24}))) == []


def test_disabled_controls_are_not_checked() -> None:
    assert check_pins(settings(controls=(ControlsSettings, {"enabled": False, "mute_pin": 10, "swap_pin": 5}))) == []


def test_not_fitted_is_never_a_conflict() -> None:
    assert check_pins(settings(controls=(ControlsSettings, {"language_pin": -1, "swap_pin": -1, "status_led_pin": -1}))) == []


def test_the_config_loader_reports_pin_problems() -> None:
    # Passes once settings_from_layers runs check_pins with its other cross-checks.
    layers = [("site.toml", {"controls": {"mute_pin": 10, "swap_pin": 5}})]
    with pytest.raises(ConfigError) as caught:
        settings_from_layers(layers)
    found = [str(p) for p in caught.value.problems]
    assert any(m.startswith("site.toml: [controls] mute_pin: GPIO 10 is SPI0 MOSI") for m in found), found
    assert any(m.startswith("site.toml: [controls] swap_pin: GPIO 5 is also [controls] language_pin") for m in found), found
