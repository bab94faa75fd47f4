"""What each face shows: a pure state machine over what was heard and said, and the time.

``heard`` (front-end events) and ``said`` (interpretations and live captions) fold into a
``DisplayState``; ``views`` turns it, the counter's state and the time into one ``FaceView`` per
face. No clock and no device: the service passes its monotonic clock, a replay its audio time,
and tests any sequence they like.

Each face shows the other side's words in its own language, and a small echo of its own
speaker's last words so the speaker sees they were understood. In caption mode nothing is
translated (the interpreter gives same-language text); in easy-Japanese mode the interpreter has
already rewritten the clerk's words, so the faces only place text.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from madoguchi.config import Settings
from madoguchi.counter import CounterState, picker_choices
from madoguchi.display.view import Broker, FaceView, StatusLine
from madoguchi.events import Caption, FrontendEvent, Interpretation, Side, SpeakerHeard, SpeechSoFar, SpeechStarted, Utterance, UtteranceRejected, other_side
from madoguchi.languages import native_name

OPERATOR_MARK_S = 120.0  # how long the faces show that a remote interpreter was called
AUTO_LABEL = "Auto / 自動"


@dataclass(frozen=True)
class Words:
    """Text on a face: ``at_s`` is when it appeared (scrolling counts from there)."""

    text: str
    lang: str
    at_s: float
    partial: bool = False


@dataclass(frozen=True)
class FaceWords:
    main: Words | None = None  # the other side's words, for this face's reader
    echo: Words | None = None  # this face's own speaker's last words


@dataclass(frozen=True)
class DisplayState:
    staff: FaceWords = FaceWords()
    resident: FaceWords = FaceWords()
    speaking: Side | None = None
    resident_lang: str | None = None  # the language last heard from the resident
    # Before the resident has said a word, the clerk's go to the site's most likely resident
    # language: the faces say it is a guess ("EN?") until the resident's own words settle it.
    guessed_lang: str | None = None
    last_activity_s: float | None = None  # None: nothing heard since start
    operator_call_s: float | None = None

    def face(self, side: Side) -> FaceWords:
        return self.staff if side == "staff" else self.resident

    def with_face(self, side: Side, words: FaceWords) -> DisplayState:
        return dataclasses.replace(self, **{side: words})


@dataclass(frozen=True)
class Surroundings:
    """What the status line reports besides speech: the buttons' state, the fleet link, errors, hints."""

    counter: CounterState = CounterState()
    broker: Broker = "off"
    error: str | None = None
    mic_level: float = 0.0
    hint: str | None = None  # a condition to look at, not an error: e.g. check_sides (most speech from where neither side is)
    session_prompt: str | None = None  # privacy mode: how the clerk starts a session (shown while none is open)


def _forget_if_quiet(state: DisplayState, now_s: float, clear_after_s: float) -> DisplayState:
    """After a quiet spell the words are gone for good: the next resident never sees the last one's."""
    if state.last_activity_s is not None and now_s - state.last_activity_s >= clear_after_s:
        return DisplayState(operator_call_s=state.operator_call_s)
    return state


def heard(state: DisplayState, event: FrontendEvent, now_s: float, clear_after_s: float) -> DisplayState:
    """A front-end event: who is speaking now (the words come later, from ``said``)."""
    state = _forget_if_quiet(state, now_s, clear_after_s)
    if isinstance(event, SpeechStarted):
        return dataclasses.replace(state, last_activity_s=now_s)
    if isinstance(event, (SpeakerHeard, SpeechSoFar)):
        return dataclasses.replace(state, speaking=event.side, last_activity_s=now_s)
    if isinstance(event, UtteranceRejected) and event.reason == "off_counter":
        return dataclasses.replace(state, speaking=None)  # the next counter's voices: nobody here spoke, the faces may rest
    if isinstance(event, (Utterance, UtteranceRejected)):
        return dataclasses.replace(state, speaking=None, last_activity_s=now_s)
    return state


def _drop_partial(words: Words | None) -> Words | None:
    return None if words is not None and words.partial else words


def said(state: DisplayState, output: Interpretation | Caption, mode: str, now_s: float, clear_after_s: float) -> DisplayState:
    """Live or final words: the speaker's face echoes them, the listener's face shows them translated."""
    state = _forget_if_quiet(state, now_s, clear_after_s)
    speaker, listener = output.side, other_side(output.side)
    if isinstance(output, Caption):
        live = Words(output.text, output.lang, now_s, partial=True)
        state = state.with_face(speaker, dataclasses.replace(state.face(speaker), echo=live))
        if mode != "interpret":  # same-language modes: the listener reads the words as they come
            state = state.with_face(listener, dataclasses.replace(state.face(listener), main=live))
        return dataclasses.replace(state, speaking=speaker, last_activity_s=now_s)
    state = dataclasses.replace(state, speaking=None, last_activity_s=now_s)
    if output.rejected or not output.text:  # not words: take back the live text it may have shown
        state = state.with_face(speaker, dataclasses.replace(state.face(speaker), echo=_drop_partial(state.face(speaker).echo)))
        return state.with_face(listener, dataclasses.replace(state.face(listener), main=_drop_partial(state.face(listener).main)))
    translation = output.translation
    if translation is not None and translation.text:
        shown = Words(translation.text, translation.target_lang, now_s)
    else:  # nothing could translate it: the words as heard beat an empty face
        shown = Words(output.text, output.lang, now_s)
    state = state.with_face(speaker, dataclasses.replace(state.face(speaker), echo=Words(output.text, output.lang, now_s)))
    state = state.with_face(listener, dataclasses.replace(state.face(listener), main=shown))
    if output.side == "resident":
        state = dataclasses.replace(state, resident_lang=output.lang, guessed_lang=None)
    elif state.resident_lang is None and translation is not None and translation.text and translation.target_lang != output.lang:
        state = dataclasses.replace(state, guessed_lang=translation.target_lang)
    return state


def operator_called(state: DisplayState, now_s: float) -> DisplayState:
    return dataclasses.replace(state, operator_call_s=now_s, last_activity_s=now_s)


@cache
def greetings() -> dict[str, dict[str, str]]:
    """The idle screen's greetings: {"resident": {lang: text}, "staff": {lang: text}}."""
    raw = json.loads(resources.files("madoguchi").joinpath("data/display/greetings.json").read_text(encoding="utf-8"))
    return {face: {lang: entry["text"] for lang, entry in raw[face].items()} for face in ("resident", "staff")}


def _greeting(face: Side, settings: Settings, counter: CounterState, now_s: float) -> tuple[str, str]:
    table = greetings()[face]
    if face == "staff":
        lang = settings.languages.staff if settings.languages.staff in table else "en"
        return table[lang], lang
    if counter.mode != "interpret":  # a resident who reads the staff language
        cycle: tuple[str, ...] = (settings.languages.staff,)
    elif counter.resident_lang is not None:
        cycle = (counter.resident_lang,)
    else:
        cycle = settings.languages.residents
    cycle = tuple(lang for lang in cycle if lang in table) or ("en",)
    lang = cycle[int(now_s // settings.display.greeting_interval_s) % len(cycle)]
    return table[lang], lang


def resident_language(state: DisplayState, counter: CounterState, settings: Settings) -> str | None:
    if counter.mode != "interpret":
        return counter.resident_lang or settings.languages.staff
    return counter.resident_lang or state.resident_lang


def views(state: DisplayState, settings: Settings, around: Surroundings, now_s: float) -> dict[Side, FaceView]:
    """Both faces at ``now_s``: text, the idle greeting, the language list, or off (asleep)."""
    display, counter = settings.display, around.counter
    idle_s = float("inf") if state.last_activity_s is None else now_s - state.last_activity_s
    quiet = state.speaking is None and counter.picker is None
    cleared = quiet and idle_s >= display.clear_after_s  # privacy: the last resident's words go
    asleep = quiet and display.idle_sleep_s > 0 and idle_s >= display.idle_sleep_s and state.last_activity_s is not None
    calling = state.operator_call_s is not None and now_s - state.operator_call_s < OPERATOR_MARK_S
    resident_lang = None if cleared and counter.resident_lang is None and counter.mode == "interpret" else resident_language(state, counter, settings)
    guess = f"{state.guessed_lang}?" if resident_lang is None and state.guessed_lang and not cleared else None
    langs: dict[Side, str | None] = {"staff": settings.languages.staff, "resident": resident_lang or guess}
    faces: dict[Side, FaceView] = {}
    for side in ("staff", "resident"):
        status = StatusLine(
            speaking=state.speaking, own_lang=langs[side] or "auto", other_lang=langs[other_side(side)], mic_level=around.mic_level,
            muted=counter.muted, private=settings.session.private, broker=around.broker, error=around.error or around.hint, mode=counter.mode, operator_call=calling,
        )
        words = state.face(side)
        echo = words.echo if display.echo and words.echo is not None and not cleared else None
        echo_fields = {"echo": echo.text, "echo_lang": echo.lang} if echo else {}
        if asleep:
            faces[side] = FaceView("off", status)
        elif side == "resident" and counter.picker is not None:
            choices = picker_choices(settings.languages.residents)
            faces[side] = FaceView("list", status, items=tuple(AUTO_LABEL if c is None else native_name(c) for c in choices),
                                   item_langs=tuple("en" if c is None else c for c in choices), selected=counter.picker, dim=counter.muted)
        elif side == "staff" and counter.muted and settings.session.private and around.session_prompt:
            # Privacy mode between sessions: the clerk's face says how to start one.
            faces[side] = FaceView("idle", status, main=around.session_prompt, main_lang=settings.languages.staff, dim=True)
        elif words.main is None or cleared:
            text, lang = _greeting(side, settings, counter, now_s)
            faces[side] = FaceView("idle", status, main=text, main_lang=lang, dim=counter.muted, **echo_fields)
        else:
            main = words.main
            faces[side] = FaceView("text", status, main=main.text, main_lang=main.lang, partial=main.partial,
                                   shown_for_s=max(0.0, now_s - main.at_s), dim=counter.muted, **echo_fields)
    return faces
