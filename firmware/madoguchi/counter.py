"""The counter's runtime state as a pure state machine: what the clerk's buttons change.

No clock and no GPIO here: :func:`press` and :func:`hold` take a :class:`CounterState` and
return the next one, so the service can apply button input, remote commands and replays alike,
and tests need no hardware. The GPIO layer (:mod:`madoguchi.controls.gpio`) only reports
``("press" | "hold", button)``; deciding what a press *means* happens here.

The language button has two gestures because the site may have many resident languages:
a press steps through them (auto first), a hold opens a list on the resident's display
(the *picker*), where presses move the selection and a second hold chooses it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from madoguchi.config import MODES

BUTTONS = ("language", "swap", "mode", "mute", "operator")


@dataclass(frozen=True)
class CounterState:
    """What the buttons have set. Frozen: every change makes a new state."""

    mode: str = "interpret"  # one of MODES
    resident_lang: str | None = None  # None: identified automatically ("auto")
    swapped: bool = False  # the box turned round: staff and resident sides exchanged
    muted: bool = False  # privacy: no speech is processed
    operator_calls: int = 0  # operator-call presses so far (the service raises one event per increment)
    picker: int | None = None  # the language list is open at this row: 0 = auto, then residents in order

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not allowed; allowed: {', '.join(MODES)}")
        if self.operator_calls < 0:
            raise ValueError(f"operator_calls {self.operator_calls} is not allowed; allowed: 0 or more")
        if self.picker is not None and self.picker < 0:
            raise ValueError(f"picker {self.picker} is not allowed; allowed: None (closed) or a row from 0")


def picker_choices(residents: tuple[str, ...]) -> tuple[str | None, ...]:
    """The rows of the language list: auto (None) first, then the site's resident languages."""
    return (None, *residents)


def _check_button(button: str) -> None:
    if button not in BUTTONS:
        raise ValueError(f"unknown button {button!r}; allowed: {', '.join(BUTTONS)}")


def _current_row(state: CounterState, choices: tuple[str | None, ...]) -> int:
    # A language the site no longer lists (the config changed under a running box) counts as
    # auto, so the next press starts again from the first resident language.
    return choices.index(state.resident_lang) if state.resident_lang in choices else 0


def press(state: CounterState, button: str, residents: tuple[str, ...]) -> CounterState:
    """The state after a short press of ``button`` (one of :data:`BUTTONS`)."""
    _check_button(button)
    if button == "language":
        choices = picker_choices(residents)
        if state.picker is not None:  # the list is open: move the selection down, wrapping
            return replace(state, picker=(state.picker + 1) % len(choices))
        return replace(state, resident_lang=choices[(_current_row(state, choices) + 1) % len(choices)])
    if button == "mode":
        following = (MODES.index(state.mode) + 1) % len(MODES)
        return replace(state, mode=MODES[following], picker=None)  # a new mode closes the list
    if button == "swap":
        return replace(state, swapped=not state.swapped)
    if button == "mute":
        return replace(state, muted=not state.muted)
    return replace(state, operator_calls=state.operator_calls + 1)  # "operator"


def hold(state: CounterState, button: str, residents: tuple[str, ...]) -> CounterState:
    """The state after ``button`` was held down for ``hold_s``.

    Only the language button has a hold of its own (open the list, or choose its row); any other
    button acts as if pressed, because a slow press is still a press.
    """
    _check_button(button)
    if button != "language":
        return press(state, button, residents)
    choices = picker_choices(residents)
    if state.picker is None:
        return replace(state, picker=_current_row(state, choices))
    # The row may be past the end if the resident languages shrank while the list was open.
    return replace(state, resident_lang=choices[state.picker % len(choices)], picker=None)
