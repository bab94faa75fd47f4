"""The interpreter stages' order of work on a paused utterance: a whole reply shown at the pause,
and nothing more from the murmur after it. The words come from a scripted interpreter here (the
speech itself is tested with Whisper in test_whole_replies.py): this is about what is shown when."""

from __future__ import annotations

import asyncio
import dataclasses
import types

import numpy as np
import pytest

from madoguchi.app.capture import Heard
from madoguchi.app.stages import Stages
from madoguchi.events import Interpretation, SpeechPaused, Utterance


def utterance(start_s: float, end_s: float, decided_at_s: float, reason: str = "pause") -> Utterance:
    audio = np.zeros(round((end_s + 0.16 - (start_s - 0.25)) * 16000), np.float32)
    return Utterance(start_s, end_s, "resident", 90.0, 0.0, 0.9, False, decided_at_s, reason, start_s - 0.25, audio)  # type: ignore[arg-type]


class ScriptedInterpreter:
    """Says ``words`` in turn for each utterance it is asked about, and records what it was asked."""

    def __init__(self, *words: str) -> None:
        self.settings = types.SimpleNamespace(asr=types.SimpleNamespace(partial_interval_s=1.0))
        self.words, self.asked, self.committed = list(words), [], []
        self.lang = "en"  # the language every answer is in

    def interpret(self, utterance: Utterance, decided_wall: float | None = None, *, commit: bool = True) -> Interpretation:
        self.asked.append((utterance.start_s, utterance.end_s))
        words = self.words.pop(0)
        return Interpretation(utterance, utterance.side, self.lang, words, None, None if words else "low_confidence", 0.99, {"vad_ms": 0.0, "latency_ms": 0.0})

    def commit(self, result: Interpretation) -> None:
        self.committed.append(result.text)


class PacedCapture:
    """The capture's side of the stages' work: what they asked of the front end."""

    paced = True

    def __init__(self) -> None:
        self.holds: list[float] = []

    def handled(self) -> None:
        pass

    def hold_unfinished(self, paused: SpeechPaused) -> None:
        self.holds.append(paused.utterance.decided_at_s)


def shown_for(interpreter: ScriptedInterpreter, events: list, results: list[Interpretation] | None = None, capture: PacedCapture | None = None) -> list[str]:
    async def run() -> list[str]:
        shown: list[str] = []

        async def on_output(result: Interpretation) -> None:
            shown.append(result.text)
            if results is not None:
                results.append(result)

        stages = Stages(interpreter, on_output, capture)  # type: ignore[arg-type]
        stages.start()
        for event in events:
            stages.submit(Heard(event, 0.0))
        await stages.finish()
        return shown

    return asyncio.run(run())


def test_murmur_after_a_reply_shown_at_the_pause_is_not_decoded_as_more_words() -> None:
    # "Thank you." is shown at the first pause. A second pause 0.1 s later (the talker's frames
    # flickered on in the reverberation) leaves 0.04 s after the reply: no words, nothing decoded.
    first = utterance(29.6, 30.3, 30.46)
    second = utterance(29.6, 30.34, 30.6)
    final = utterance(29.6, 30.34, 31.1, reason="silence")
    interpreter = ScriptedInterpreter("Thank you.", "Yes.")
    assert shown_for(interpreter, [SpeechPaused(first), SpeechPaused(second), final]) == ["Thank you."]
    assert interpreter.asked == [(29.6, 30.3)] and interpreter.committed == ["Thank you."]


def test_words_after_a_reply_shown_at_the_pause_are_the_next_record() -> None:
    first = utterance(1.0, 1.4, 1.72)
    final = utterance(1.0, 3.2, 4.0, reason="silence")  # the talker went on 0.3 s after the reply
    interpreter = ScriptedInterpreter("Yes.", "Here is my residence card.")
    assert shown_for(interpreter, [SpeechPaused(first), final]) == ["Yes.", "Here is my residence card."]
    assert interpreter.asked == [(1.0, 1.4), (pytest.approx(1.62), 3.2)]  # the rest from 0.1 s before the pause was said


def test_a_pause_whose_span_the_final_has_stands_though_murmur_paused_it_again_later() -> None:
    # Murmur from the talker's side held the utterance on after their last word, so it paused a
    # second time, over a longer span. The trim gave the final the first pause's span: those words
    # stand, nothing is decoded again, and they count as ready when the first pause's work ended.
    first = utterance(1.0, 2.0, 2.32)
    murmur = utterance(1.0, 2.6, 2.92)
    final = utterance(1.0, 2.0, 3.4, reason="silence")
    interpreter = ScriptedInterpreter("Where do I sign?", "Where do I sign? Mm.", "Where do I sign, then?")
    assert shown_for(interpreter, [SpeechPaused(first), SpeechPaused(murmur), final]) == ["Where do I sign?"]
    assert interpreter.asked == [(1.0, 2.0), (1.0, 2.6)] and interpreter.committed == ["Where do I sign?"]


def test_a_second_pause_over_the_same_span_is_not_decoded_again() -> None:
    first = utterance(1.0, 2.0, 2.32)
    again = utterance(1.0, 2.0, 3.1)  # the same span once trimmed, paused again after the murmur
    final = utterance(1.0, 2.0, 3.6, reason="silence")
    interpreter = ScriptedInterpreter("Where do I sign?", "Where do I sign, then?")
    assert shown_for(interpreter, [SpeechPaused(first), SpeechPaused(again), final]) == ["Where do I sign?"]
    assert interpreter.asked == [(1.0, 2.0)]


def settled(paused: Utterance, at_s: float) -> SpeechPaused:
    return SpeechPaused(dataclasses.replace(paused, decided_at_s=at_s, close_reason="settled"))


def test_settled_words_are_shown_before_the_close_and_not_again() -> None:
    # Murmur from the talker's side held the utterance open a second after their last word: the
    # front end said the paused words settled a hangover after the pause, and they are shown then.
    paused = utterance(1.0, 2.0, 2.32)
    final = utterance(1.0, 2.0, 3.6, reason="turn")
    interpreter = ScriptedInterpreter("Where do I sign?", "Where do I sign, then?")
    shown: list[Interpretation] = []
    assert shown_for(interpreter, [SpeechPaused(paused), settled(paused, 2.96), final], shown) == ["Where do I sign?"]
    assert interpreter.asked == [(1.0, 2.0)] and interpreter.committed == ["Where do I sign?"]
    assert shown[0].timings_ms["vad_ms"] == pytest.approx(960.0)  # counted to the settling, not to the close
    assert (shown[0].utterance.start_s, shown[0].utterance.end_s, shown[0].utterance.decided_at_s) == (1.0, 2.0, 2.96)  # the faces show it then


def test_the_talker_going_on_after_settled_words_is_the_next_record() -> None:
    paused = utterance(1.0, 2.0, 2.32)
    final = utterance(1.0, 4.5, 5.3, reason="silence")  # they spoke again after the murmur
    interpreter = ScriptedInterpreter("Where do I sign?", "And when?")
    assert shown_for(interpreter, [SpeechPaused(paused), settled(paused, 2.96), final]) == ["Where do I sign?", "And when?"]
    assert interpreter.asked == [(1.0, 2.0), (pytest.approx(2.22), 4.5)]


def test_a_rejected_piece_is_not_settled_but_decoded_again_with_what_follows() -> None:
    paused = utterance(1.0, 2.0, 2.32)
    final = utterance(1.0, 4.5, 5.3, reason="silence")
    interpreter = ScriptedInterpreter("", "Where do I sign? And when?")
    assert shown_for(interpreter, [SpeechPaused(paused), settled(paused, 2.96), final]) == ["Where do I sign? And when?"]


def test_unfinished_japanese_words_ask_the_front_end_to_wait_longer() -> None:
    # 暗証番号を、 (a clerk's comma past the hangover): the front end is asked to hold the utterance
    # open, and asked again when murmur paused it again over the same span (no second decode).
    first = utterance(10.2, 11.2, 11.52)
    again = utterance(10.2, 11.2, 12.1)
    final = utterance(10.2, 14.2, 15.0, reason="silence")
    interpreter = ScriptedInterpreter("暗証番号を", "暗証番号を、数字四桁で決めてください。")
    interpreter.lang = "ja"
    capture = PacedCapture()
    assert shown_for(interpreter, [SpeechPaused(first), SpeechPaused(again), final], capture=capture) == ["暗証番号を、数字四桁で決めてください。"]
    assert capture.holds == [11.52, 12.1] and interpreter.asked == [(10.2, 11.2), (10.2, 14.2)]
    # A whole sentence asks for nothing.
    capture = PacedCapture()
    interpreter = ScriptedInterpreter("数字四桁で決めてください。")
    interpreter.lang = "ja"
    assert shown_for(interpreter, [SpeechPaused(first), utterance(10.2, 11.2, 12.0, reason="silence")], capture=capture) == ["数字四桁で決めてください。"]
    assert capture.holds == []
