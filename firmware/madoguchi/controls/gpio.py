"""The clerk's buttons and the box's LEDs, through gpiozero.

:class:`Controls` turns button edges into ``on_input(kind, button)`` calls, ``kind`` being
``"press"`` or ``"hold"`` and ``button`` one of :data:`~madoguchi.counter.BUTTONS`;
what they mean is :mod:`~madoguchi.counter`'s business. :meth:`Controls.show` drives the
LEDs from what the service knows (who speaks, the counter state, health).

Press or hold, never both. A press is reported when the button is *released*, and only if it was
not held; a hold is reported as soon as the button has been down for ``hold_s`` (so the clerk
sees the language list open while still holding), and its release is then swallowed. A lock per
button decides the race between gpiozero's hold thread and the release edge, so exactly one of
the two is reported for each push.

Debounce. ``bounce_s`` is handed to gpiozero (lgpio filters edges that are not stable that long),
and on top of that a push shorter than ``bounce_s`` is not a press. The second rule is what the
first means on lgpio, and it makes every pin factory behave alike: gpiozero's ``MockPin`` and
some other factories ignore ``bounce_time``.

Threads. ``on_input`` is called from gpiozero's threads (the pin's edge callback for presses,
the hold thread for holds); it must be quick and thread-safe, e.g.
``lambda kind, button: loop.call_soon_threadsafe(handle, kind, button)``.

Hardware is reached only through ``pin_factory`` (None = gpiozero's default, chosen by
``GPIOZERO_PIN_FACTORY``; ``lgpio`` on a Pi 5). Tests pass ``gpiozero.pins.mock.MockFactory()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gpiozero import LED, Button, GPIOPinInUse
from gpiozero.exc import BadPinFactory

from madoguchi.config import ControlsSettings
from madoguchi.controls.errors import ControlsError
from madoguchi.counter import BUTTONS, CounterState
from madoguchi.events import Side

log = logging.getLogger(__name__)

InputCallback = Callable[[str, str], None]

BUTTON_KEYS = {"language": "language_pin", "swap": "swap_pin", "mode": "mode_pin", "mute": "mute_pin", "operator": "operator_pin"}
LED_KEYS = {"staff": "staff_led_pin", "resident": "resident_led_pin", "status": "status_led_pin"}

# Status LED patterns as (on_s, off_s); None = steady. Muted is slow and calm (the box is fine,
# just not listening); an error is fast, to be noticed from across the office.
STATUS_PATTERNS: dict[str, tuple[float, float] | None] = {
    "listening": None,
    "muted": (1.0, 1.0),
    "error": (0.1, 0.1),
}
_OTHER_SIDE: dict[str, Side] = {"staff": "resident", "resident": "staff"}


def status_pattern(state: CounterState, healthy: bool) -> str:
    """Which status pattern applies: an error outranks mute, which outranks listening."""
    if not healthy:
        return "error"
    return "muted" if state.muted else "listening"


def lit_face(speaking: Side | None, swapped: bool) -> Side | None:
    """The face whose side LED shows that ``speaking`` speaks (None: no LED).

    A *side* is a role (the clerk is staff, the visitor resident); a *face* is a physical side of
    the box, with its panel and its LED, wired as "staff" or "resident" (hw/pinmap.toml). Swapping
    does not move faces: it says the box was turned round, so each person now sits at the other
    face. The LED to light is the one in front of the person speaking, so while swapped the
    resident's speech lights the LED wired as the staff face's, and the other way round.
    """
    if speaking is None:
        return None
    return _OTHER_SIDE[speaking] if swapped else speaking


@dataclass
class _Push:
    """One button's current push: when it went down, and whether it was already reported."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    down_at: float | None = None  # time.monotonic() of the press edge; None while up
    reported: bool = False  # a hold was reported for this push (or it ended)


class Controls:
    """Buttons and LEDs of one box; close it (or use ``with``) to release every pin.

    Pins set to -1 are not fitted and are skipped: no device, no input, no LED. With
    ``settings.enabled`` false nothing is opened at all and :meth:`show` does nothing.
    """

    def __init__(self, settings: ControlsSettings, on_input: InputCallback, *, pin_factory: Any = None) -> None:
        self.settings = settings
        self._on_input = on_input
        self._buttons: dict[str, Button] = {}
        self._leds: dict[str, LED] = {}
        self._pushes = {name: _Push() for name in BUTTONS}
        self._lock = threading.Lock()  # show() and close() may come from different threads
        self._status: str | None = None  # the pattern now on the status LED
        self._closed = False
        if not settings.enabled:
            log.info("controls disabled in config: no buttons or LEDs")
            return
        for name, key in BUTTON_KEYS.items():
            pin = getattr(settings, key)
            if pin >= 0:
                button = self._open(key, pin, lambda pin=pin: Button(
                    pin, pull_up=True, bounce_time=settings.bounce_s or None,
                    hold_time=settings.hold_s, pin_factory=pin_factory))
                button.when_pressed = partial(self._pressed, name)
                button.when_held = partial(self._held, name)
                button.when_released = partial(self._released, name)
                self._buttons[name] = button
        for name, key in LED_KEYS.items():
            pin = getattr(settings, key)
            if pin >= 0:
                self._leds[name] = self._open(key, pin, lambda pin=pin: LED(pin, pin_factory=pin_factory))
        log.info("controls on GPIO: %s", ", ".join(f"{name}={pin}" for name, pin in self.pins.items()) or "none fitted")

    def _open(self, key: str, pin: int, make: Callable[[], Any]) -> Any:
        """Create one device; any failure closes what was opened and becomes a ControlsError.

        ``make`` is called at once, so the loop variables its lambda reads are still current.
        """
        try:
            return make()
        except Exception as err:  # gpiozero, lgpio and the factory raise many kinds: one for callers
            self.close()
            if isinstance(err, BadPinFactory):
                raise ControlsError(
                    f"no GPIO pin factory could be loaded ({err}); allowed: on a Pi 5, lgpio (python3-lgpio and GPIOZERO_PIN_FACTORY=lgpio), "
                    "or [controls] enabled = false on a box without buttons") from err
            if isinstance(err, GPIOPinInUse) or "busy" in str(err).lower():
                why = f"GPIO {pin} is already in use ({err})"
            else:
                why = f"cannot open GPIO {pin}: {type(err).__name__}: {err}"
            raise ControlsError(f"[controls] {key} = {pin}: {why}; allowed: a GPIO no other device or program uses, or -1 when not fitted", key=key, pin=pin) from err

    @property
    def pins(self) -> dict[str, int]:
        """The fitted devices by name (buttons, then the LEDs staff, resident, status) and their GPIO."""
        if self._closed:
            return {}
        keys = {**BUTTON_KEYS, **LED_KEYS}
        return {name: getattr(self.settings, keys[name]) for name in {**self._buttons, **self._leds}}

    # --- buttons: called from gpiozero's threads -----------------------------------------

    def _pressed(self, name: str) -> None:
        push = self._pushes[name]
        with push.lock:
            push.down_at = time.monotonic()
            push.reported = False

    def _held(self, name: str) -> None:
        push = self._pushes[name]
        with push.lock:
            if push.down_at is None or push.reported:
                return  # the release won the race: it was a press
            push.reported = True
        self._emit("hold", name)

    def _released(self, name: str) -> None:
        push = self._pushes[name]
        with push.lock:
            down_at, reported = push.down_at, push.reported
            push.down_at, push.reported = None, True
        if down_at is None or reported:
            return  # the end of a hold (or of a push that began before we were listening)
        if time.monotonic() - down_at < self.settings.bounce_s:
            log.debug("button %s: %.0f ms contact ignored as bounce", name, (time.monotonic() - down_at) * 1000)
            return
        self._emit("press", name)

    def _emit(self, kind: str, name: str) -> None:
        log.debug("button %s: %s", name, kind)
        try:
            self._on_input(kind, name)
        except Exception:  # a bug in the handler must not kill gpiozero's thread (and later input)
            log.exception("on_input(%r, %r) failed", kind, name)

    # --- LEDs -----------------------------------------------------------------------------

    def show(self, speaking: Side | None, state: CounterState, healthy: bool) -> None:
        """Drive the LEDs; cheap to call on every change (a running blink is not restarted).

        - Side LEDs: the LED on the face where the speaking person sits is on, the other off;
          both off when nobody speaks. See :func:`lit_face` for what swapped does.
        - Status LED: steady on while listening and healthy; slow blink (1 s on, 1 s off) when
          muted; fast blink (0.1 s on, 0.1 s off) when not healthy, whatever else; off once closed.
        """
        with self._lock:
            if self._closed:
                return
            face = lit_face(speaking, state.swapped)
            for side in ("staff", "resident"):
                led = self._leds.get(side)
                if led is not None and led.is_lit != (face == side):
                    led.value = face == side
            pattern = status_pattern(state, healthy)
            led = self._leds.get("status")
            if led is not None and pattern != self._status:
                timing = STATUS_PATTERNS[pattern]
                if timing is None:
                    led.on()
                else:
                    led.blink(on_time=timing[0], off_time=timing[1], background=True)
                log.debug("status LED: %s", pattern)
            self._status = pattern

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Switch the LEDs off and release every pin. Safe to call twice."""
        with self._lock:
            self._closed = True
            # Each Button's hold thread polls every 0.1 s and close() joins it; telling them all
            # to stop first (as gpiozero's own shutdown does) makes closing five buttons one wait.
            for button in self._buttons.values():
                thread = getattr(button, "_hold_thread", None)
                if thread is not None:
                    thread.stopping.set()
            for button in self._buttons.values():  # inputs first: no callback after this
                button.close()
            for led in self._leds.values():
                if not led.closed:
                    led.off()  # stops a blink too; closing alone could leave the line high
                led.close()
            self._status = None

    def __enter__(self) -> Controls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ", ".join(f"{n}=GPIO{p}" for n, p in self.pins.items())
        return f"<Controls {state}>"
