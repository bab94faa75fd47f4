"""Both faces at work: the state machine, the renderer and the panels, driven by a clock.

The service feeds ``heard``/``said`` from the event loop and awaits ``run``, which redraws at
``[display] frames_per_s`` (scrolling, the cycling greeting, sleep) and sends changed frames on a
worker thread of its own: an SPI write never blocks the loop, and the two panels, which share
the SPI bus, are never written at once. ``madoguchi replay --frames`` drives the same object with
audio time (frames.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from madoguchi.config import Settings
from madoguchi.counter import CounterState
from madoguchi.display import state as display_state
from madoguchi.display.devices import Panel
from madoguchi.display.render import render_face, scroll_step_s
from madoguchi.display.state import DisplayState, Surroundings
from madoguchi.display.view import Broker, FaceView
from madoguchi.events import Caption, FrontendEvent, Interpretation, Side, other_side

log = logging.getLogger(__name__)

LOUD_DB = 30.0  # a frame this far above the room's level fills the mic meter


def site_fonts(settings: Settings):
    """The fonts for the day-one languages and every language the site lists (missing ones: an error now)."""
    from madoguchi.display.fonts import DAY_ONE, FontBook

    languages = settings.languages
    return FontBook(langs=tuple(dict.fromkeys((*DAY_ONE, languages.staff, *languages.residents))))


def mic_level(above_background_db: float) -> float:
    """The mic meter's 0..1 from a frame's level over the room's (the front end measures it)."""
    if not above_background_db > 0.0:  # -inf while the room level settles, or NaN
        return 0.0
    return min(1.0, above_background_db / LOUD_DB)


class Faces:
    """The faces' state plus drawing; ``render`` is pure given the time, ``push`` sends to the panels."""

    def __init__(self, settings: Settings, panels: dict[Side, Panel], fonts: object | None = None) -> None:
        self.settings = settings
        self.panels = panels  # may be empty: the state still runs (the LEDs show who speaks)
        self._fonts = fonts
        self.state = DisplayState()
        self.around = Surroundings(counter=CounterState(mode=settings.display.mode), broker="off" if not settings.mqtt.enabled else "down")
        self._drawn: dict[Side, tuple[FaceView, Image.Image]] = {}

    # -- what happened --------------------------------------------------------------------------
    def heard(self, event: FrontendEvent, now_s: float) -> None:
        self.state = display_state.heard(self.state, event, now_s, self.settings.display.clear_after_s)

    def said(self, output: Interpretation | Caption, now_s: float) -> None:
        mode = output.mode if isinstance(output, Interpretation) else self.around.counter.mode
        self.state = display_state.said(self.state, output, mode, now_s, self.settings.display.clear_after_s)

    def operator_called(self, now_s: float) -> None:
        self.state = display_state.operator_called(self.state, now_s)

    def set_counter(self, counter: CounterState) -> None:
        self.around = dataclasses.replace(self.around, counter=counter)

    def set_broker(self, broker: Broker) -> None:
        self.around = dataclasses.replace(self.around, broker=broker)

    def set_error(self, code: str | None) -> None:
        self.around = dataclasses.replace(self.around, error=code)

    def set_session_prompt(self, prompt: str | None) -> None:
        """Privacy mode: what the clerk's face says while no session is open."""
        self.around = dataclasses.replace(self.around, session_prompt=prompt)

    def set_hint(self, code: str | None) -> None:
        self.around = dataclasses.replace(self.around, hint=code)

    def set_mic_level(self, level: float) -> None:
        self.around = dataclasses.replace(self.around, mic_level=round(level, 1))  # steps: fewer redraws

    # -- drawing ----------------------------------------------------------------------------------
    def views(self, now_s: float) -> dict[Side, FaceView]:
        return display_state.views(self.state, self.settings, self.around, now_s)

    @property
    def fonts(self):
        if self._fonts is None:  # loaded on first drawing: a box with no panels never reads a font
            self._fonts = site_fonts(self.settings)
        return self._fonts

    def size(self, side: Side) -> tuple[int, int]:
        if side in self.panels:
            return self.panels[side].size
        from madoguchi.display.devices import panel_size

        return panel_size(self.settings.display)

    def render(self, side: Side, view: FaceView) -> Image.Image:
        """The face's frame (mode "L"); the same view is drawn once. Time shown only matters at
        scroll steps: between them the view is the same (redrawing 10 times a second while words
        stay up cost 1.2 % of a core, measured by the soak bench, tests/bench/soak)."""
        view = dataclasses.replace(view, shown_for_s=scroll_step_s(view.shown_for_s))
        drawn = self._drawn.get(side)
        if drawn is not None and drawn[0] == view:
            return drawn[1]
        panel = self.panel_for(side)
        image = render_face(view, self.size(side), mono=panel.mono if panel else False, fonts=self.fonts)
        self._drawn[side] = (view, image)
        return image

    def panel_for(self, side: Side) -> Panel | None:
        """The panel in front of ``side``: swapped sides (the box turned round) exchange the panels."""
        return self.panels.get(other_side(side) if self.around.counter.swapped else side)

    def push(self, now_s: float) -> dict[Side, bool]:
        """Draw both faces at ``now_s`` and send what changed (blocking); returns which were sent."""
        sent: dict[Side, bool] = {}
        for side, view in self.views(now_s).items():
            panel = self.panel_for(side)
            if panel is None:
                continue
            if view.screen == "off":
                was_awake = not panel.asleep
                panel.sleep()
                sent[side] = was_awake
            else:
                sent[side] = panel.show(self.render(side, view), dim=view.dim)
        return sent

    async def run(self, clock: Callable[[], float], before_frame: Callable[[], None] | None = None) -> None:
        """Redraw at frames_per_s until cancelled; ``before_frame`` refreshes inputs such as the mic level."""
        period = 1.0 / self.settings.display.frames_per_s
        loop = asyncio.get_running_loop()
        failing: str | None = None  # the failure being repeated: logged once, not ten times a second
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="faces") as executor:
            while True:
                if before_frame is not None:
                    before_frame()
                try:
                    await loop.run_in_executor(executor, self.push, clock())
                    if failing is not None:
                        log.info("the faces are updating again")
                        failing = None
                except Exception as err:  # a panel that fails (a loose cable) must not stop interpreting
                    if repr(err) != failing:
                        log.exception("updating the faces failed")
                        failing = repr(err)
                await asyncio.sleep(period)

    def close(self) -> None:
        for panel in self.panels.values():
            try:
                panel.close()
            except Exception:
                log.exception("closing the %s panel failed", panel.side)
