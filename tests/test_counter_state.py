"""The counter's pure state machine: every button, press and hold, with no GPIO and no clock."""

from __future__ import annotations

import dataclasses

import pytest

from madoguchi.config import MODES, Settings
from madoguchi.counter import BUTTONS, CounterState, hold, picker_choices, press

RESIDENTS = ("en", "vi", "zh")


def test_defaults_and_frozen() -> None:
    state = CounterState()
    assert (state.mode, state.resident_lang, state.swapped, state.muted, state.operator_calls, state.picker) == ("interpret", None, False, False, 0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.muted = True  # type: ignore[misc]


def test_buttons_are_the_five_on_the_box() -> None:
    assert BUTTONS == ("language", "swap", "mode", "mute", "operator")


def test_picker_choices_are_auto_then_residents() -> None:
    assert picker_choices(RESIDENTS) == (None, "en", "vi", "zh")
    assert picker_choices(Settings().languages.residents)[1:] == Settings().languages.residents


def test_language_press_cycles_auto_then_each_resident_and_back() -> None:
    state = CounterState()
    seen = []
    for _ in range(5):
        state = press(state, "language", RESIDENTS)
        seen.append(state.resident_lang)
    assert seen == ["en", "vi", "zh", None, "en"]
    assert state.picker is None


def test_language_press_from_a_language_the_site_no_longer_lists_starts_over() -> None:
    assert press(CounterState(resident_lang="pt"), "language", RESIDENTS).resident_lang == "en"


def test_language_hold_opens_the_list_at_the_current_choice() -> None:
    assert hold(CounterState(), "language", RESIDENTS).picker == 0
    opened = hold(CounterState(resident_lang="vi"), "language", RESIDENTS)
    assert opened.picker == 2 and opened.resident_lang == "vi"  # opening changes nothing else


def test_press_in_the_open_list_moves_down_and_wraps_without_choosing() -> None:
    state = hold(CounterState(resident_lang="vi"), "language", RESIDENTS)
    rows = []
    for _ in range(3):
        state = press(state, "language", RESIDENTS)
        rows.append(state.picker)
    assert rows == [3, 0, 1]
    assert state.resident_lang == "vi"  # only a hold chooses


def test_hold_in_the_open_list_chooses_the_row_and_closes_it() -> None:
    state = hold(CounterState(), "language", RESIDENTS)  # row 0 (auto)
    state = press(press(state, "language", RESIDENTS), "language", RESIDENTS)  # row 2
    state = hold(state, "language", RESIDENTS)
    assert (state.resident_lang, state.picker) == ("vi", None)
    back_to_auto = hold(CounterState(resident_lang="zh", picker=0), "language", RESIDENTS)
    assert (back_to_auto.resident_lang, back_to_auto.picker) == (None, None)


def test_hold_on_a_row_past_the_list_wraps_instead_of_failing() -> None:
    # The resident languages shrank (config reload) while the list was open.
    state = hold(CounterState(picker=5), "language", ("en", "vi"))
    assert (state.resident_lang, state.picker) == ("vi", None)


def test_mode_press_cycles_the_modes_and_closes_the_list() -> None:
    state = CounterState(picker=2)
    modes = []
    for _ in range(len(MODES) + 1):
        state = press(state, "mode", RESIDENTS)
        modes.append(state.mode)
        assert state.picker is None
    assert modes == ["caption", "easy_japanese", "interpret", "caption"]


def test_swap_and_mute_toggle() -> None:
    state = press(CounterState(), "swap", RESIDENTS)
    assert state.swapped and not press(state, "swap", RESIDENTS).swapped
    state = press(CounterState(), "mute", RESIDENTS)
    assert state.muted and not press(state, "mute", RESIDENTS).muted


def test_operator_press_counts_calls() -> None:
    state = CounterState()
    for expected in (1, 2, 3):
        state = press(state, "operator", RESIDENTS)
        assert state.operator_calls == expected


@pytest.mark.parametrize("button", ["swap", "mode", "mute", "operator"])
def test_a_hold_of_any_other_button_is_a_press(button: str) -> None:
    state = CounterState(resident_lang="en", picker=1)
    assert hold(state, button, RESIDENTS) == press(state, button, RESIDENTS)


@pytest.mark.parametrize("button", ["swap", "mute", "operator"])
def test_other_buttons_leave_the_language_and_the_list_alone(button: str) -> None:
    state = press(CounterState(resident_lang="vi", picker=1), button, RESIDENTS)
    assert (state.resident_lang, state.picker) == ("vi", 1)


def test_press_returns_new_states_and_leaves_the_old_one() -> None:
    before = CounterState()
    after = press(before, "mute", RESIDENTS)
    assert before == CounterState() and after is not before


@pytest.mark.parametrize("gesture", [press, hold])
def test_unknown_button_names_the_allowed_ones(gesture) -> None:
    with pytest.raises(ValueError) as caught:
        gesture(CounterState(), "volume", RESIDENTS)
    assert "volume" in str(caught.value) and "language, swap, mode, mute, operator" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"mode": "karaoke"}, "interpret, caption, easy_japanese"), ({"operator_calls": -1}, "0 or more"), ({"picker": -1}, "None (closed)")],
)
def test_invalid_states_are_refused(kwargs: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        CounterState(**kwargs)


def test_a_single_resident_language() -> None:
    state = press(CounterState(), "language", ("vi",))
    assert state.resident_lang == "vi"
    assert press(state, "language", ("vi",)).resident_lang is None
