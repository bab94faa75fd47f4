"""The one failure of the controls layer: its GPIO could not be had."""

from __future__ import annotations

from madoguchi.errors import MadoguchiError


class ControlsError(MadoguchiError, RuntimeError):
    """A button or LED could not be set up: its pin is in use, or no GPIO pin factory works.

    Raised ``from`` the underlying gpiozero / lgpio error, which stays in ``__cause__``.
    ``key`` is the ``[controls]`` key involved (None when the factory itself failed) and ``pin``
    its GPIO number.
    """

    code = "controls_gpio"

    def __init__(self, message: str, *, key: str | None = None, pin: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.pin = pin
