"""The clerk's controls: five buttons, a side LED on each face, and a status LED.

- :mod:`~madoguchi.controls.counter`: the counter's state (mode, resident language, swapped,
  muted, operator calls, the language list) as a pure state machine: ``press`` and ``hold``.
- :mod:`~madoguchi.controls.gpio`: :class:`Controls`, the buttons and LEDs through gpiozero, with
  an injectable pin factory (``MockFactory`` in tests). Imported lazily so that the state machine
  and the pin checks work where gpiozero is not installed.
- :mod:`~madoguchi.controls.pins`: :func:`check_pins`, the config loader's cross-checks of the
  GPIO numbers (used twice, or on the panels' SPI bus).
- :class:`ControlsError`: the one exception of the GPIO side.
"""

from __future__ import annotations

from typing import Any

from madoguchi.controls.counter import BUTTONS, CounterState, hold, picker_choices, press
from madoguchi.controls.errors import ControlsError
from madoguchi.controls.pins import check_pins

__all__ = ["BUTTONS", "Controls", "ControlsError", "CounterState", "check_pins", "hold", "picker_choices", "press"]


def __getattr__(name: str) -> Any:
    if name == "Controls":  # gpiozero only when the hardware side is wanted
        from madoguchi.controls.gpio import Controls

        return Controls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
