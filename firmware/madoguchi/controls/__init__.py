"""The clerk's controls: five buttons, a side LED on each face, and a status LED.

- What a press means is the core's :mod:`~madoguchi.counter` (a pure state machine that every
  part may read); this package is only the hardware that reports presses and lights LEDs.
- :mod:`~madoguchi.controls.gpio`: :class:`Controls`, the buttons and LEDs through gpiozero, with
  an injectable pin factory (``MockFactory`` in tests). Imported lazily so that the state machine
  and the pin checks work where gpiozero is not installed.
- :class:`ControlsError`: the one exception of the GPIO side.
"""

from __future__ import annotations

from typing import Any

from madoguchi.controls.errors import ControlsError

__all__ = ["Controls", "ControlsError"]


def __getattr__(name: str) -> Any:
    if name == "Controls":  # gpiozero only when the hardware side is wanted
        from madoguchi.controls.gpio import Controls

        return Controls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
