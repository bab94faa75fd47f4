"""The front end's events: when a paused utterance is the final one (its early words stand)."""

from __future__ import annotations

import dataclasses

import numpy as np

from madoguchi.events import SpeechPaused, Utterance


def utterance(end_s: float = 2.5, side: str = "staff", tail_s: float = 0.16, azimuth_deg: float = 270.0, seed: int = 0) -> Utterance:
    """Speech from 1.0 s to ``end_s``, its audio from the 0.25 s pre-roll to ``tail_s`` after the end."""
    audio = np.random.default_rng(seed).standard_normal(round((end_s + tail_s - 0.75) * 16000)).astype(np.float32)
    return Utterance(1.0, end_s, side, azimuth_deg, 0.0, 0.8, False, end_s + 0.32, "pause", 0.75, audio)  # type: ignore[arg-type]


def test_the_same_span_and_side_confirm_the_paused_words_though_murmur_changed_the_audio() -> None:
    paused = SpeechPaused(utterance())
    # Murmur after the pause held the endpointer on: a longer tail after the same words, and the
    # beam aimed a degree away (other samples), decided later by the other side's turn.
    final = dataclasses.replace(utterance(tail_s=0.48, azimuth_deg=271.0, seed=1), decided_at_s=3.9, close_reason="turn")
    assert paused.confirmed_by(final)
    assert paused.confirmed_by(paused.utterance)


def test_speech_that_went_on_or_moved_to_the_other_side_is_a_new_utterance() -> None:
    paused = SpeechPaused(utterance())
    assert not paused.confirmed_by(utterance(end_s=2.6))  # the talker's words went on
    assert not paused.confirmed_by(utterance(end_s=2.4))  # the trim found murmur in the paused end
    assert not paused.confirmed_by(utterance(side="resident"))
    assert not paused.confirmed_by(dataclasses.replace(utterance(), start_s=1.1, audio_start_s=0.85))  # trimmed differently


def test_an_end_a_frame_or_two_away_is_the_same_span_if_the_paused_audio_reached_it() -> None:
    # The trim weighs a fading last syllable's frames again at the close: the end moved 64 ms.
    paused = SpeechPaused(utterance())
    assert paused.confirmed_by(utterance(end_s=2.564, tail_s=0.48))
    assert paused.confirmed_by(utterance(end_s=2.436))
    assert not SpeechPaused(utterance(tail_s=0.03)).confirmed_by(utterance(end_s=2.564))  # not heard that far
