"""An utterance cut down to its talker (frontend/trim.py), on synthetic per-frame levels and sides."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from madoguchi.frontend.trim import CLUSTER_BELOW_PEAK_DB, CLUSTER_GAP_FRAMES, CORE_BELOW_LOUD_DB, EDGE_BELOW_LOUD_DB, EDGE_GAP_FRAMES, murmur_since, talker_span

R, S = "resident", "staff"


def test_a_short_reply_held_open_by_a_neighbour_and_the_tail_keeps_only_the_reply() -> None:
    # The shape of a far-field "Yes.": 9 frames of a neighbour's murmur from the resident's side
    # (6-11 dB over the room), a gap, the reply (up to 25 dB), its fading end, then more murmur.
    murmur = [7.0, 10.0, 5.0, 9.0, 11.0, 6.0, 0.0, 4.0, 9.0]
    reply = [15.0, 23.0, 25.0, 25.0, 22.0, 20.0, 18.0, 15.0, 14.0, 6.0, 4.0]
    after = [0.5, -8.0, 2.5, 12.0, 11.0, 12.0, 9.0]
    levels = murmur + [2.0, -1.0] + reply + after
    sides: list[str | None] = [R] * len(levels)
    first, stop = talker_span(levels, sides, R)
    # From the reply's first frame to its last within 18 dB of the loud frames (the 6 dB one).
    assert (first, stop) == (len(murmur) + 2, len(murmur) + 2 + len(reply) - 1)


def test_a_quiet_short_reply_is_not_joined_to_murmur_a_pause_away() -> None:
    # The shape of a far-field 是的。 (held-out ho07): a neighbour's voice from the resident's side
    # opened the turn 0.5 s early and held it 0.7 s late. With so few frames the 90th percentile
    # is the reply's third-loudest frame, and murmur at 5-8 dB stands within 8 dB of it; but it
    # lies a pause away from the reply and far below the reply's loudest frame.
    before = [3.8, 5.0] + [-12.0] * 12
    reply = [12.0, 16.4, 12.5, 6.0, 7.8, 8.7]
    after = [-12.0] * 12 + [5.5, 4.0]
    levels = before + reply + after
    first, stop = talker_span(levels, [R] * len(levels), R)
    assert (first, stop) == (len(before), len(before) + len(reply))


def test_the_talkers_second_phrase_after_a_pause_is_kept() -> None:
    # One talker, two phrases 0.5 s apart, the second a little softer: both are the talker's.
    first_phrase = [18.0, 22.0, 24.0, 21.0]
    second_phrase = [15.0, 24.0 - CLUSTER_BELOW_PEAK_DB + 1.0, 16.0]
    levels = first_phrase + [-10.0] * (CLUSTER_GAP_FRAMES + 5) + second_phrase
    assert talker_span(levels, [S] * len(levels), S) == (0, len(levels))


def test_an_utterance_without_murmur_is_kept_whole() -> None:
    levels = [12.0, 20.0, 24.0, 18.0, 9.0, 22.0, 25.0, 16.0, 8.0]
    assert talker_span(levels, [S] * len(levels), S) == (0, len(levels))


def test_a_soft_edge_joins_the_talker_across_one_quiet_frame() -> None:
    loud = [24.0] * 10
    soft = 24.0 - EDGE_BELOW_LOUD_DB + 1.0  # within the edge, not the core
    levels = [soft, -5.0] * 1 + loud + [-5.0] * EDGE_GAP_FRAMES + [soft, -30.0, -30.0, soft]
    first, stop = talker_span(levels, [S] * len(levels), S)
    assert (first, stop) == (0, 2 + len(loud) + EDGE_GAP_FRAMES + 1)


def test_the_other_sides_frames_never_join_but_a_frame_from_neither_sector_may() -> None:
    levels = [20.0, 20.0, 24.0, 24.0, 24.0, 20.0, 20.0]
    sides: list[str | None] = [R, R, S, S, S, None, None]
    assert talker_span(levels, sides, S) == (2, 7)


def test_a_loud_frame_from_the_other_side_does_not_set_the_talkers_level() -> None:
    # The clerk's loud onset inside a quiet resident's utterance: the resident's level is their own.
    levels = [10.0, 12.0, 11.0, 12.0, 30.0, 31.0]
    sides: list[str | None] = [R, R, R, R, S, S]
    assert talker_span(levels, sides, R) == (0, 4)


def test_no_frame_of_the_side_or_no_known_level_keeps_the_utterance_whole() -> None:
    assert talker_span([10.0, 12.0], [S, None], R) == (0, 2)
    assert talker_span([-math.inf, -math.inf], [R, R], R) == (0, 2)


def test_levels_and_sides_must_match() -> None:
    with pytest.raises(ValueError, match="one of each per frame"):
        talker_span([1.0, 2.0], [R], R)


@given(st.lists(st.tuples(st.floats(-30, 40), st.sampled_from([S, R, None])), min_size=1, max_size=80))
def test_the_span_is_inside_the_utterance_and_holds_every_loud_own_frame(frames: list[tuple[float, str | None]]) -> None:
    levels, sides = [f[0] for f in frames], [f[1] for f in frames]
    first, stop = talker_span(levels, sides, S)
    assert 0 <= first < stop <= len(levels)
    own = [lv for lv, s in frames if s == S]
    if own:
        loudest = max(own)
        assert all(first <= i < stop for i, (lv, s) in enumerate(frames) if s == S and lv >= loudest)
        assert CORE_BELOW_LOUD_DB < EDGE_BELOW_LOUD_DB


def test_murmur_after_a_pause_stands_well_below_the_talkers_words() -> None:
    # The talker's sentence (up to 26 dB), then the room after their pause: a neighbour's voice
    # from their side and from no side at 8-12 dB, and the other side's answer, loud but theirs.
    words = [14.0, 22.0, 26.0, 25.0, 24.0, 26.0, 19.0, 7.0]
    after = [9.0, 12.0, 8.0, 11.0, 20.0]
    levels = words + after
    sides: list[str | None] = [S] * len(words) + [S, None, S, S, R]
    assert murmur_since(levels, sides, S, len(words))


def test_the_talker_going_on_after_a_pause_is_not_murmur() -> None:
    # A clerk's comma: a pause, then the next phrase rising from a soft start to the sentence's level.
    words = [14.0, 22.0, 26.0, 25.0, 24.0, 26.0, 19.0, 7.0]
    for resumed in ([4.0, 10.5, 23.0], [-20.0, -20.0, 26.0 - CORE_BELOW_LOUD_DB + 1.0]):
        assert not murmur_since(words + resumed, [S] * (len(words) + 3), S, len(words))
    assert not murmur_since(words + [20.0], [S] * len(words) + [None], S, len(words))  # from neither sector: may be theirs


def test_with_no_frame_of_the_talker_before_the_pause_nothing_is_murmur() -> None:
    assert not murmur_since([20.0, 5.0], [R, S], S, 1)

