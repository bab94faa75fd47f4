"""What each face shows, on synthetic sequences: the display state machine is pure (no clock, no panel)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from madoguchi.config import Settings
from madoguchi.counter import CounterState
from madoguchi.display import state as ds
from madoguchi.display.state import DisplayState, Surroundings
from madoguchi.events import Caption, Interpretation, SpeakerHeard, SpeechSoFar, SpeechStarted, Translation, Utterance

SETTINGS = Settings()
CLEAR = SETTINGS.display.clear_after_s


def utterance(side: str, start: float = 1.0, end: float = 2.5) -> Utterance:
    return Utterance(start, end, side, 90.0 if side == "resident" else 270.0, 0.0, 0.8, False, end + 0.3, "silence", start - 0.2, np.zeros(16, np.float32))


def interpretation(side: str, lang: str, text: str, target: str, translated: str | None, mode: str = "interpret", rejected: str | None = None) -> Interpretation:
    method = "phrasebook" if translated else "unavailable"
    translation = Translation(translated, lang, target, method) if not rejected else None
    return Interpretation(utterance(side), side, lang, text, translation, rejected, 0.9, {"latency_ms": 900.0, "vad_ms": 300.0}, mode)


def views(state: DisplayState, now: float, counter: CounterState = CounterState(), settings: Settings = SETTINGS, **around):
    return ds.views(state, settings, Surroundings(counter=counter, **around), now)


def test_at_start_both_faces_greet_and_the_resident_greeting_cycles_through_the_site_languages() -> None:
    interval = SETTINGS.display.greeting_interval_s
    seen = [views(DisplayState(), k * interval)["resident"] for k in range(len(SETTINGS.languages.residents))]
    assert all(v.screen == "idle" for v in seen)
    assert [v.main_lang for v in seen] == list(SETTINGS.languages.residents)
    assert seen[0].main == "Please speak in your language"
    staff = views(DisplayState(), 0.0)["staff"]
    assert (staff.screen, staff.main_lang) == ("idle", "ja")


def test_staff_words_reach_the_resident_translated_and_echo_on_the_staff_face() -> None:
    state = ds.said(DisplayState(), interpretation("staff", "ja", "少々お待ちください。", "vi", "Xin vui lòng đợi một chút."), "interpret", 10.0, CLEAR)
    faces = views(state, 10.5)
    assert (faces["resident"].screen, faces["resident"].main, faces["resident"].main_lang) == ("text", "Xin vui lòng đợi một chút.", "vi")
    assert (faces["staff"].echo, faces["staff"].echo_lang) == ("少々お待ちください。", "ja")
    assert faces["staff"].screen == "idle"  # no resident words yet: the clerk's face still greets
    assert faces["resident"].shown_for_s == pytest.approx(0.5)


def test_before_the_resident_spoke_the_clerks_language_guess_is_marked_as_one() -> None:
    """The first staff turn goes to the site's most likely language: both faces say "VI?" until the resident speaks."""
    state = ds.said(DisplayState(), interpretation("staff", "ja", "少々お待ちください。", "vi", "Xin vui lòng đợi một chút."), "interpret", 10.0, CLEAR)
    faces = views(state, 10.5)
    assert faces["resident"].status.own_lang == "vi?" and faces["staff"].status.other_lang == "vi?"
    state = ds.said(state, interpretation("resident", "en", "Sorry, English please.", "ja", "英語でお願いします。"), "interpret", 12.0, CLEAR)
    assert views(state, 12.5)["resident"].status.own_lang == "en"  # the resident's own words settle it
    assert views(state, 12.5 + CLEAR + 1)["resident"].status.own_lang == "auto"  # and it is forgotten with them


def test_resident_words_reach_the_staff_in_japanese_and_name_the_resident_language() -> None:
    state = ds.said(DisplayState(), interpretation("resident", "vi", "Tôi muốn đăng ký.", "ja", "登録したいです。"), "interpret", 5.0, CLEAR)
    faces = views(state, 6.0)
    assert (faces["staff"].main, faces["staff"].main_lang) == ("登録したいです。", "ja")
    assert faces["staff"].status.other_lang == "vi" and faces["resident"].status.own_lang == "vi"
    assert faces["resident"].echo == "Tôi muốn đăng ký."


def test_untranslatable_words_are_shown_as_heard() -> None:
    state = ds.said(DisplayState(), interpretation("resident", "my", "မင်္ဂလာပါ", "ja", None), "interpret", 1.0, CLEAR)
    staff = views(state, 1.0)["staff"]
    assert (staff.main, staff.main_lang) == ("မင်္ဂလာပါ", "my")


def test_live_caption_echoes_the_speaker_and_only_same_language_modes_show_it_to_the_listener() -> None:
    caption = Caption(1.0, 2.0, "staff", "ja", "こちらの書類に")
    state = ds.said(DisplayState(), caption, "interpret", 2.0, CLEAR)
    faces = views(state, 2.1)
    assert faces["staff"].echo == "こちらの書類に" and faces["staff"].status.speaking == "staff"
    assert faces["resident"].screen == "idle"
    state = ds.said(DisplayState(), caption, "caption", 2.0, CLEAR)
    resident = views(state, 2.1, CounterState(mode="caption"))["resident"]
    assert (resident.screen, resident.main, resident.partial) == ("text", "こちらの書類に", True)
    final = ds.said(state, interpretation("staff", "ja", "こちらの書類に書いてください。", "ja", "こちらの書類に書いてください。", mode="caption"), "caption", 3.0, CLEAR)
    resident = views(final, 3.1, CounterState(mode="caption"))["resident"]
    assert (resident.main, resident.partial) == ("こちらの書類に書いてください。", False)


def test_words_that_turn_out_not_to_be_words_take_back_the_live_text() -> None:
    state = ds.said(DisplayState(), Caption(1.0, 2.0, "resident", "en", "thank"), "caption", 2.0, CLEAR)
    state = ds.said(state, interpretation("resident", "en", "", "ja", None, rejected="no_speech"), "caption", 3.0, CLEAR)
    faces = views(state, 3.0, CounterState(mode="caption"))
    assert faces["staff"].screen == "idle" and faces["resident"].echo == ""


def test_who_is_speaking_follows_the_front_end() -> None:
    state = ds.heard(DisplayState(), SpeechStarted(1.0), 1.0, CLEAR)
    assert views(state, 1.0)["staff"].status.speaking is None
    state = ds.heard(state, SpeakerHeard(1.0, 1.4, "staff"), 1.4, CLEAR)
    assert views(state, 1.4)["resident"].status.speaking == "staff"
    state = ds.heard(state, SpeechSoFar(1.0, 2.0, "resident", np.zeros(1, np.float32)), 2.0, CLEAR)
    assert views(state, 2.0)["staff"].status.speaking == "resident"
    state = ds.heard(state, utterance("resident"), 2.8, CLEAR)
    assert views(state, 2.8)["resident"].status.speaking is None


def test_words_leave_the_faces_after_a_quiet_minute_and_the_panels_sleep_later() -> None:
    state = ds.said(DisplayState(), interpretation("staff", "ja", "はい。", "en", "Yes."), "interpret", 0.0, CLEAR)
    clear, sleep = SETTINGS.display.clear_after_s, SETTINGS.display.idle_sleep_s
    assert views(state, clear - 1)["resident"].screen == "text"
    after = views(state, clear + 1)
    assert after["resident"].screen == "idle" and after["staff"].echo == ""
    assert after["resident"].status.own_lang == "auto"  # the next resident starts unknown
    assert {v.screen for v in views(state, sleep + 1).values()} == {"off"}
    woken = ds.heard(state, SpeechStarted(sleep + 2), sleep + 2, CLEAR)
    assert views(woken, sleep + 2)["resident"].screen == "idle"


def test_nothing_sleeps_before_anyone_spoke() -> None:
    assert views(DisplayState(), 10 * SETTINGS.display.idle_sleep_s)["staff"].screen == "idle"


def test_the_language_list_replaces_the_resident_face_while_open() -> None:
    resident = views(DisplayState(), 0.0, CounterState(picker=3))["resident"]
    assert resident.screen == "list" and resident.selected == 3
    assert resident.items[0] == ds.AUTO_LABEL and resident.items[1] == "English" and "Tiếng Việt" in resident.items
    assert resident.item_langs[1:] == SETTINGS.languages.residents
    assert views(DisplayState(), 0.0, CounterState(picker=3))["staff"].screen == "idle"


def test_a_chosen_language_fixes_the_greeting_and_the_status() -> None:
    counter = CounterState(resident_lang="ne")
    faces = [views(DisplayState(), t, counter) for t in (0.0, 3.0, 6.0)]
    assert {f["resident"].main_lang for f in faces} == {"ne"}
    assert faces[0]["staff"].status.other_lang == "ne"


@pytest.mark.parametrize("mode", ["caption", "easy_japanese"])
def test_same_language_modes_greet_the_resident_in_japanese(mode: str) -> None:
    resident = views(DisplayState(), 0.0, CounterState(mode=mode))["resident"]
    assert resident.main_lang == "ja" and resident.status.mode == mode


def test_mute_dims_both_faces_and_shows_in_the_status_line() -> None:
    faces = views(DisplayState(), 0.0, CounterState(muted=True))
    assert all(v.dim and v.status.muted for v in faces.values())


def test_operator_call_is_marked_for_two_minutes() -> None:
    state = ds.operator_called(DisplayState(), 10.0)
    assert views(state, 11.0)["staff"].status.operator_call
    assert not views(state, 10.0 + ds.OPERATOR_MARK_S + 1)["staff"].status.operator_call


def test_status_line_carries_broker_error_and_mic_level() -> None:
    status = views(DisplayState(), 0.0, broker="down", error="mic_lost", mic_level=0.4)["resident"].status
    assert (status.broker, status.error, status.mic_level) == ("down", "mic_lost", 0.4)


def test_echo_can_be_switched_off() -> None:
    settings = dataclasses.replace(SETTINGS, display=dataclasses.replace(SETTINGS.display, echo=False))
    state = ds.said(DisplayState(), interpretation("staff", "ja", "はい。", "en", "Yes."), "interpret", 0.0, CLEAR)
    assert ds.views(state, settings, Surroundings(), 0.5)["staff"].echo == ""


def test_privacy_mode_faces_say_how_to_start_a_session_and_show_priv() -> None:
    from madoguchi.app.sinks import session_prompt
    from madoguchi.config import SessionSettings

    private = dataclasses.replace(SETTINGS, session=SessionSettings(start="wake_phrase"))
    prompt = session_prompt(private, "つうやく おねがいします")
    closed = views(DisplayState(), 0.0, CounterState(muted=True), private, session_prompt=prompt)
    assert closed["staff"].main == "「つうやく おねがいします」で通訳を始めます" and closed["staff"].dim
    assert closed["staff"].status.private and closed["resident"].screen == "idle" and closed["resident"].dim
    opened = views(DisplayState(), 0.0, CounterState(), private, session_prompt=prompt)
    assert opened["staff"].main != prompt and not opened["staff"].dim  # a session: the usual greeting
    assert session_prompt(SETTINGS) is None and not views(DisplayState(), 0.0, CounterState(muted=True))["staff"].status.private
