"""The counter's user interface in the service: the two faces and the buttons and LEDs.

Both are optional hardware. A panel or a GPIO chip that cannot be opened is logged and reported
as an error (``display_unavailable``, ``controls_unavailable``) and the box goes on interpreting:
a counter with no screen still counts, and one with no buttons is hands-free anyway.

Button presses arrive on gpiozero's threads and hop onto the event loop, where the pure state
machine (counter.py) makes the next ``CounterState`` from the runner's; the runner hands it to
whoever needs it (the capture thread: mute and swap; the interpreter: mode and language; these
faces, through ``show_counter``). The counter's state is kept in one place: the runner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from madoguchi import counter as counter_machine
from madoguchi.config import Settings
from madoguchi.counter import CounterState
from madoguchi.display.view import Broker
from madoguchi.events import Caption, FrontendEvent, Interpretation

if TYPE_CHECKING:
    from madoguchi.controls.gpio import Controls
    from madoguchi.display.faces import Faces

log = logging.getLogger(__name__)

PICKER_TIMEOUT_S = 20.0  # an open language list with no button pressed for this long closes


class CounterUI:
    """Faces and controls for ``madoguchi run``; every method runs on the event loop."""

    def __init__(self, settings: Settings, *, counter: Callable[[], CounterState], on_counter: Callable[[CounterState], None], on_operator_call: Callable[[], None],
                 on_problem: Callable[[str, str], None], pin_factory: object | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._counter = counter  # the runner's state, read when a button needs it
        self._on_counter = on_counter
        self._on_operator_call = on_operator_call
        self._on_problem = on_problem
        self._pin_factory = pin_factory
        self._clock = clock
        self.faces: Faces | None = None
        self.controls: Controls | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inputs = 0  # button inputs so far: a list closes only if none came since it opened
        self.picker_timeout_s = PICKER_TIMEOUT_S
        self.mic_level: Callable[[], float] = lambda: 0.0
        self.broker: Callable[[], Broker] = lambda: "off"

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        from madoguchi.display.devices import open_panels
        from madoguchi.display.errors import DisplayError
        from madoguchi.display.faces import Faces, site_fonts

        panels, fonts = {}, None
        try:
            panels = open_panels(self.settings.display)
            if panels:  # fonts and shaping are checked now, so a missing font is reported, not logged per frame
                fonts = site_fonts(self.settings)
        except DisplayError as err:
            for panel in panels.values():
                panel.close()
            panels = {}
            log.error("no faces: %s", err)
            self._on_problem(err.code, str(err))
        self.faces = Faces(self.settings, panels, fonts)
        self.faces.set_counter(self.counter)
        if self.settings.controls.enabled:
            from madoguchi.controls.errors import ControlsError
            from madoguchi.controls.gpio import Controls

            def on_input(kind: str, button: str) -> None:  # gpiozero's thread
                loop.call_soon_threadsafe(self.pressed, kind, button)

            try:
                self.controls = Controls(self.settings.controls, on_input=on_input, pin_factory=self._pin_factory)
            except ControlsError as err:
                log.error("no buttons or LEDs: %s", err)
                self._on_problem(err.code, str(err))

    # -- inputs -------------------------------------------------------------------------------------
    def pressed(self, kind: str, button: str) -> None:
        """A button was pressed or held: the next counter state, given to everyone who needs it."""
        step = counter_machine.hold if kind == "hold" else counter_machine.press
        before, after = self.counter, step(self.counter, button, self.settings.languages.residents)
        log.info("button %s (%s): %s", button, kind, after)
        self._apply(after)
        self._inputs += 1
        if after.picker is not None and self._loop is not None:
            self._loop.call_later(self.picker_timeout_s, self._close_forgotten_list, self._inputs)
        if after.operator_calls > before.operator_calls:
            if self.faces is not None:
                self.faces.operator_called(self._clock())
            self._on_operator_call()

    @property
    def counter(self) -> CounterState:
        return self._counter()

    def _apply(self, counter: CounterState) -> None:
        self._on_counter(counter)

    def show_counter(self, counter: CounterState) -> None:
        """The runner's counter state changed (a button here, or anything else): show it."""
        if self.faces is not None:
            self.faces.set_counter(counter)

    def _close_forgotten_list(self, inputs_then: int) -> None:
        """A language list left open (the clerk walked away) closes by itself, choosing nothing."""
        if self._inputs == inputs_then and self.counter.picker is not None:
            log.info("language list closed after %.0f s without a button", self.picker_timeout_s)
            self._apply(dataclasses.replace(self.counter, picker=None))

    def heard(self, event: FrontendEvent) -> None:
        if self.faces is not None:
            self.faces.heard(event, self._clock())

    def said(self, output: Interpretation | Caption) -> None:
        if self.faces is not None:
            self.faces.said(output, self._clock())

    def set_error(self, code: str | None) -> None:
        if self.faces is not None:
            self.faces.set_error(code)

    def set_hint(self, code: str | None) -> None:
        """A condition worth a look, not an error (the status LED stays steady): e.g. check_sides."""
        if self.faces is not None:
            self.faces.set_hint(code)

    # -- outputs ------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Before each frame (the faces exist once open): the inputs that change without an event, and the LEDs."""
        faces = self.faces
        assert faces is not None, "open() first"
        faces.set_mic_level(self.mic_level())
        faces.set_broker(self.broker())
        if self.controls is not None:
            self.controls.show(faces.state.speaking, self.counter, healthy=faces.around.error is None)

    async def run(self) -> None:
        """Redraw and drive the LEDs until cancelled."""
        assert self.faces is not None, "open() first"
        await self.faces.run(self._clock, before_frame=self._refresh)

    def close(self) -> None:
        if self.faces is not None:
            self.faces.close()
        if self.controls is not None:
            self.controls.close()
