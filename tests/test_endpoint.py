"""The endpointer as a pure state machine, on synthetic per-frame sequences (32 ms frames)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from madoguchi.config import VadSettings
from madoguchi.frontend import endpoint
from madoguchi.frontend.endpoint import Closed, Discarded, EndpointTiming, FrameEvidence, Opened, Paused

FRAME_MS = 32.0
TIMING = EndpointTiming.from_settings(
    VadSettings(min_speech_ms=64, hangover_ms=320, min_utterance_ms=160, max_utterance_s=2.0, energy_gate_db=6.0, hold_gate_db=3.0, turn_change_ms=224), FRAME_MS
)


def run(probabilities: list[float], above_db: list[float] | None = None, sides: list[str | None] | None = None, timing: EndpointTiming = TIMING) -> list[tuple[int, endpoint.Event]]:
    """Feed a sequence (20 dB above background, from the staff side unless given); returns (frame out, event)."""
    state = endpoint.EndpointState()
    out: list[tuple[int, endpoint.Event]] = []
    for i, p in enumerate(probabilities):
        evidence = FrameEvidence(p, 20.0 if above_db is None else above_db[i], "staff" if sides is None else sides[i])
        state, events = endpoint.step(state, i, evidence, timing)
        out += [(i, e) for e in events]
    state, events = endpoint.finish(state, timing)
    return out + [(len(probabilities), e) for e in events]


def test_timing_in_frames() -> None:
    assert (TIMING.min_speech_frames, TIMING.hangover_frames, TIMING.min_utterance_frames, TIMING.max_utterance_frames, TIMING.turn_frames) == (2, 10, 5, 62, 7)


def test_one_utterance_closes_after_hangover() -> None:
    events = run([0.0] * 5 + [0.9] * 20 + [0.0] * 15)
    assert events == [(6, Opened(5)), (34, Closed(5, 25, "silence"))]
    # Decided hangover_frames after the last speech frame: 10 x 32 ms = 320 ms < 400 ms.
    assert (34 - 24) * FRAME_MS <= 400


def test_short_pause_inside_hangover_keeps_one_utterance() -> None:
    events = run([0.9] * 10 + [0.1] * 6 + [0.9] * 10 + [0.0] * 12)
    assert [e for _, e in events] == [Opened(0), Closed(0, 26, "silence")]


def test_hysteresis_low_threshold_continues_speech() -> None:
    # 0.4 is below the start threshold (0.5) but above the continue threshold (0.35).
    events = run([0.9] * 5 + [0.4] * 10 + [0.0] * 12)
    assert [e for _, e in events] == [Opened(0), Closed(0, 15, "silence")]
    assert run([0.4] * 30) == []


def test_single_frame_blip_never_opens() -> None:
    assert run([0.0, 0.95, 0.0, 0.0, 0.97, 0.0] * 5) == []


def test_short_burst_is_discarded() -> None:
    events = run([0.9] * 3 + [0.0] * 12)
    assert [e for _, e in events] == [Opened(0), Discarded(0, 3)]


def test_level_gates_start_and_hold() -> None:
    probabilities = [0.9] * 20 + [0.0] * 12
    # Babble: speech to the VAD, but no louder than the background it makes.
    assert run(probabilities, above_db=[1.0] * 32) == []
    # Starts 8 dB up, goes on 4 dB up (above the 3 dB hold gate): one utterance.
    assert [e for _, e in run(probabilities, [8.0, 8.0] + [4.0] * 30)] == [Opened(0), Closed(0, 20, "silence")]
    # Starts 8 dB up, then sinks into the background: ends where it sank.
    assert [e for _, e in run(probabilities, [8.0] * 8 + [1.0] * 24)] == [Opened(0), Closed(0, 8, "silence")]


def test_sound_from_outside_both_sides_neither_opens_nor_holds() -> None:
    probabilities = [0.9] * 20 + [0.0] * 12
    assert run(probabilities, sides=[None] * 32) == []
    # The talker stops at frame 8 while babble from elsewhere goes on: the utterance ends there.
    assert [e for _, e in run([0.9] * 32, sides=["staff"] * 8 + [None] * 24)] == [Opened(0), Closed(0, 8, "silence")]


def test_change_of_side_without_a_pause_is_a_new_turn() -> None:
    # Staff for 20 frames, the resident answers at once for 20, then silence.
    sides = ["staff"] * 20 + ["resident"] * 20 + [None] * 12
    events = run([0.9] * 40 + [0.0] * 12, sides=sides)
    # Recognised turn_frames (7) into the answer, and the answer starts where it began.
    assert events == [(1, Opened(0)), (26, Closed(0, 20, "turn")), (26, Opened(20)), (49, Closed(20, 40, "silence"))]


def test_stray_frames_from_the_other_side_do_not_split() -> None:
    sides = (["staff"] * 3 + ["resident"] * 2) * 8  # reverberation flips a few frames
    events = [e for _, e in run([0.9] * 40 + [0.0] * 12, sides=sides + [None] * 12)]
    assert events == [Opened(0), Closed(0, 40, "silence")]  # no Paused: early_asr_ms is the hangover here


def test_a_wrong_first_frame_relabels_instead_of_splitting() -> None:
    sides = ["resident"] * 2 + ["staff"] * 30
    events = [e for _, e in run([0.9] * 32 + [0.0] * 12, sides=sides + [None] * 12)]
    assert events == [Opened(0), Closed(0, 32, "silence")]


def test_max_length_splits_without_losing_frames() -> None:
    events = [e for _, e in run([0.9] * 100 + [0.0] * 12)]
    assert events == [Opened(0), Closed(0, 62, "max_length"), Opened(62), Closed(62, 100, "silence")]


def test_end_of_stream_closes_open_utterance() -> None:
    assert [e for _, e in run([0.9] * 10)] == [Opened(0), Closed(0, 10, "end_of_stream")]


frames = st.tuples(st.floats(0.0, 1.0), st.floats(-10.0, 30.0), st.sampled_from(["staff", "resident", None]))


@given(st.lists(frames, max_size=400))
def test_invariants_on_any_sequence(sequence: list[tuple[float, float, str | None]]) -> None:
    probabilities = [p for p, _, _ in sequence]
    events = [e for _, e in run(probabilities, [a for _, a, _ in sequence], [s for _, _, s in sequence])]
    # Strict alternation Opened -> (Closed | Discarded), utterances in order and not overlapping.
    last_end = 0
    is_open = False
    for e in events:
        if isinstance(e, Opened):
            assert not is_open and e.start >= last_end, events
            is_open = True
        else:
            assert is_open and e.start < e.end <= len(probabilities)
            assert e.end - e.start <= TIMING.max_utterance_frames
            if isinstance(e, Closed):
                assert e.end - e.start >= TIMING.min_utterance_frames
            last_end = e.end
            is_open = False
    assert not is_open


LONG_HANGOVER = EndpointTiming.from_settings(
    VadSettings(min_speech_ms=64, hangover_ms=800, early_asr_ms=320, min_utterance_ms=160, max_utterance_s=20.0, energy_gate_db=6.0, hold_gate_db=3.0, turn_change_ms=224), FRAME_MS
)


def test_a_pause_says_paused_and_a_longer_silence_closes_the_same_utterance() -> None:
    events = run([0.9] * 20 + [0.0] * 30, timing=LONG_HANGOVER)
    assert events == [(1, Opened(0)), (29, Paused(0, 20)), (44, Closed(0, 20, "silence"))]  # 320 ms, then 800 ms after the last speech


def test_a_talker_who_goes_on_after_a_pause_stays_one_utterance() -> None:
    # A 0.6 s pause between two sentences of one turn: paused (ASR may start), then one utterance.
    events = run([0.9] * 20 + [0.0] * 19 + [0.9] * 15 + [0.0] * 30, timing=LONG_HANGOVER)
    assert [e for _, e in events] == [Opened(0), Paused(0, 20), Paused(0, 54), Closed(0, 54, "silence")]


def test_a_pause_is_said_while_the_other_sides_babble_holds_the_utterance_open() -> None:
    # The clerk stops at frame 20; a neighbour's babble heard from the resident's side (runs of two
    # frames, too short to be a turn) keeps speech in the room until the resident's own turn at 60.
    babble = ([None] * 4 + ["resident"] * 2) * 6 + [None] * 4
    sides = ["staff"] * 20 + babble + ["resident"] * 16 + [None] * 30
    probabilities = [0.9 if side else 0.0 for side in sides]
    events = run(probabilities, sides=sides, timing=LONG_HANGOVER)
    # The clerk's words are paused 320 ms after their last frame (ASR may start), not only once the
    # resident's turn closes them; the paused utterance reaches over the babble the front end trims.
    assert [e for _, e in events][:2] == [Opened(0), Paused(0, 26)]
    assert events[1][0] == 19 + LONG_HANGOVER.early_frames
    assert [e for _, e in events][2:4] == [Closed(0, 20, "turn"), Opened(60)]


def test_no_pause_is_said_for_what_is_too_short_to_be_an_utterance() -> None:
    assert [e for _, e in run([0.9] * 3 + [0.0] * 30, timing=LONG_HANGOVER)] == [Opened(0), Discarded(0, 3)]


def test_after_a_pause_only_real_speech_resumes_the_utterance() -> None:
    # 20 speech frames, a 0.4 s pause, then murmur that would hold an utterance but not start one.
    murmur = [0.9] * 20 + [0.0] * 12 + [0.4] * 10 + [0.0] * 30
    assert [e for _, e in run(murmur, timing=LONG_HANGOVER)] == [Opened(0), Paused(0, 20), Closed(0, 20, "silence")]
    # Inside the first 320 ms of a gap the same murmur still holds it (hysteresis within a phrase).
    held = [0.9] * 20 + [0.0] * 4 + [0.4] * 10 + [0.0] * 30
    assert [e for _, e in run(held, timing=LONG_HANGOVER)] == [Opened(0), Paused(0, 34), Closed(0, 34, "silence")]
    # Real speech after the pause goes on with the same utterance.
    resumed = [0.9] * 20 + [0.0] * 12 + [0.9] * 10 + [0.0] * 30
    assert [e for _, e in run(resumed, timing=LONG_HANGOVER)] == [Opened(0), Paused(0, 20), Paused(0, 42), Closed(0, 42, "silence")]


def test_speech_after_a_pause_is_counted_before_it_decides_whose_turn_it_is() -> None:
    # The clerk stops; 0.4 s later (inside the 0.8 s hangover) the resident speaks for 0.5 s.
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 16 + [0.0] * 30
    sides = ["staff"] * 20 + [None] * 12 + ["resident"] * 16 + [None] * 30
    events = [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)]
    assert events == [Opened(0), Paused(0, 20), Closed(0, 20, "turn"), Opened(32), Paused(32, 48), Closed(32, 48, "silence")]
    # The clerk going on after the pause, two of its frames heard from the other side (the room): one utterance.
    sides = ["staff"] * 20 + [None] * 12 + ["staff", "resident", "staff", "resident"] + ["staff"] * 12 + [None] * 30
    assert [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)] == [Opened(0), Paused(0, 20), Paused(0, 48), Closed(0, 48, "silence")]


def test_a_short_reply_inside_the_hangover_is_its_own_turn() -> None:
    # "Sí." (5 frames) 0.4 s after the clerk stopped: fewer frames than a turn needs, settled at the hangover's end.
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 5 + [0.0] * 30
    sides = ["staff"] * 20 + [None] * 12 + ["resident"] * 5 + [None] * 30
    events = run(probabilities, sides=sides, timing=LONG_HANGOVER)
    assert [e for _, e in events] == [Opened(0), Paused(0, 20), Closed(0, 20, "turn"), Opened(32), Paused(32, 37), Closed(32, 37, "silence")]
    # The clerk's words are final a hangover after the clerk stopped, not after the reply: the reply
    # does not extend the clerk's silence, and no second Paused undoes the ASR started at the first.
    decided = next(i for i, e in events if e == Closed(0, 20, "turn"))
    assert decided - 19 == LONG_HANGOVER.hangover_frames


def test_a_reply_heard_from_no_sector_for_a_moment_keeps_its_start() -> None:
    # "No." 0.4 s after the clerk stopped: loud in every direction of the room, so frames 3-6 of it
    # point into neither sector. Those frames neither count for the reply nor restart its run: the
    # reply starts at its first frame (not at its last one, where a 1-frame turn would be discarded).
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 10 + [0.0] * 30
    sides = ["staff"] * 20 + [None] * 12 + ["resident"] * 3 + [None] * 4 + ["resident"] * 3 + [None] * 30
    events = [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)]
    assert events[:4] == [Opened(0), Paused(0, 20), Closed(0, 20, "turn"), Opened(32)]
    assert [e for e in events if isinstance(e, Closed)][-1] == Closed(32, 42, "silence")
    # Frames from neither sector below the level gate are a gap: the run restarts after it.
    above_db = [20.0] * 35 + [0.0] * 4 + [20.0] * 33
    gapped = [e for _, e in run(probabilities, above_db, sides=sides, timing=LONG_HANGOVER)]
    assert Opened(39) in gapped and Opened(32) not in gapped


def test_the_talker_going_on_after_a_short_reply_is_a_new_utterance_once_the_hangover_is_over() -> None:
    # Clerk, 0.4 s pause, resident "はい" (5 frames), 0.5 s, the clerk again: the clerk's first words
    # ended a hangover after they stopped; the reply is its own turn; the clerk's next words a third.
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 5 + [0.0] * 16 + [0.9] * 20 + [0.0] * 30
    sides = ["staff"] * 20 + [None] * 12 + ["resident"] * 5 + [None] * 16 + ["staff"] * 20 + [None] * 30
    events = [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)]
    assert [e for e in events if isinstance(e, Closed)] == [Closed(0, 20, "turn"), Closed(32, 37, "turn"), Closed(53, 73, "silence")]


def test_the_talkers_last_words_after_a_pause_stay_theirs_when_the_other_side_takes_the_turn() -> None:
    # The resident stops, says a quiet last phrase 0.4 s later (3 frames), then the clerk answers:
    # the resident's utterance ends after that phrase, exactly as it was paused (its ASR stands),
    # and the clerk's turn starts at the clerk's first frame, not at the resident's phrase.
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 3 + [0.0] * 10 + [0.9] * 12 + [0.0] * 30
    sides = ["resident"] * 20 + [None] * 12 + ["resident"] * 3 + [None] * 10 + ["staff"] * 12 + [None] * 30
    events = [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)]
    assert events[:5] == [Opened(0), Paused(0, 20), Paused(0, 35), Closed(0, 35, "turn"), Opened(45)]


def test_the_talker_has_paused_when_only_the_other_sides_voice_goes_on() -> None:
    """Live captions stop when the talker stops, even while a few frames of the other side's voice
    (too few for a turn) keep the utterance open."""
    sides: list[str | None] = ["staff"] * 20 + ["resident"] * 2 + [None] * 2 + ["resident"] * 2 + [None] * 2 + ["resident"] * 2 + [None] * 4
    state = endpoint.EndpointState()
    paused = []
    for i, side in enumerate(sides):
        state, _ = endpoint.step(state, i, FrameEvidence(0.9 if side else 0.0, 20.0, side or "staff"), TIMING)
        paused.append((endpoint.after_pause(state, i, TIMING), endpoint.talker_paused(state, i, TIMING)))
    assert state.phase is endpoint.Phase.SPEECH  # still open: the other side's frames held it
    assert paused[19] == (False, False)
    assert paused[-1] == (False, True)  # not a pause for the endpointer, but the talker has stopped


def run_holding(probabilities: list[float], sides: list[str | None], hold_at: int, frames: int) -> list[tuple[int, endpoint.Event]]:
    """As ``run``, with ``hold_longer(frames)`` from frame ``hold_at`` on (ASR heard unfinished words)."""
    state, out = endpoint.EndpointState(), []
    for i, (p, side) in enumerate(zip(probabilities, sides, strict=True)):
        if i == hold_at:
            state = endpoint.hold_longer(state, frames)
        state, events = endpoint.step(state, i, FrameEvidence(p, 20.0, side), LONG_HANGOVER)
        out += [(i, e) for e in events]
    return out


def test_unfinished_words_wait_longer_for_the_talker_to_go_on() -> None:
    # A clerk's comma 1.1 s long (34 frames): past the hangover, so two utterances; held 25 frames
    # longer once ASR heard the first phrase stop mid-sentence, one.
    probabilities = [0.9] * 20 + [0.0] * 34 + [0.9] * 20 + [0.0] * 60
    sides: list[str | None] = ["staff"] * 20 + [None] * 34 + ["staff"] * 20 + [None] * 60
    plain = [e for _, e in run(probabilities, sides=sides, timing=LONG_HANGOVER)]
    assert [e for e in plain if isinstance(e, Closed)] == [Closed(0, 20, "silence"), Closed(54, 74, "silence")]
    held = run_holding(probabilities, sides, hold_at=31, frames=25)
    assert [e for _, e in held if isinstance(e, Closed)] == [Closed(0, 74, "silence")]
    # Going on ends the hold: the whole utterance then closes a plain hangover after its last word.
    assert next(i for i, e in held if isinstance(e, Closed)) - 73 == LONG_HANGOVER.hangover_frames


def test_a_held_utterance_still_ends_when_nobody_goes_on_or_the_other_side_answers() -> None:
    probabilities = [0.9] * 20 + [0.0] * 80
    silent = run_holding(probabilities, ["staff"] * 20 + [None] * 80, hold_at=31, frames=25)
    assert [(i, e) for i, e in silent if isinstance(e, Closed)] == [(19 + LONG_HANGOVER.hangover_frames + 25, Closed(0, 20, "silence"))]
    # "はい" from the resident inside the hold: the clerk's utterance ends a plain hangover after them.
    probabilities = [0.9] * 20 + [0.0] * 12 + [0.9] * 5 + [0.0] * 60
    sides: list[str | None] = ["staff"] * 20 + [None] * 12 + ["resident"] * 5 + [None] * 60
    answered = run_holding(probabilities, sides, hold_at=31, frames=25)
    assert [(i, e) for i, e in answered if isinstance(e, Closed)][0] == (19 + LONG_HANGOVER.hangover_frames, Closed(0, 20, "turn"))


def run_levels(probabilities: list[float], levels: list[float], sides: list[str | None]) -> list[tuple[int, endpoint.Event]]:
    """As ``run``, each frame at its own level over the room (LONG_HANGOVER timing)."""
    state, out = endpoint.EndpointState(), []
    for i, (p, level, side) in enumerate(zip(probabilities, levels, sides, strict=True)):
        state, events = endpoint.step(state, i, FrameEvidence(p, level, side), LONG_HANGOVER)
        out += [(i, e) for e in events]
    return out


def closes(events: list[tuple[int, endpoint.Event]]) -> list[endpoint.Event]:
    return [e for _, e in events if isinstance(e, Closed)]


def test_a_neighbour_heard_from_the_talkers_side_far_below_them_holds_nothing() -> None:
    # "No." (14 frames, 26 dB over the room), then a neighbour's bursts from the resident's sector
    # every 0.25 s at 10 dB (16 dB below the talker), then the resident's next sentence 1 s later.
    bursts = ([0.0] * 5 + [0.9] * 3) * 3 + [0.0] * 7
    probabilities = [0.9] * 14 + bursts + [0.9] * 20 + [0.0] * 40
    sides: list[str | None] = ["resident"] * len(probabilities)
    events = run_levels(probabilities, [26.0] * 14 + [10.0] * len(bursts) + [24.0] * 20 + [0.0] * 40, sides)
    # The reply closes a hangover after its own last frame, and its words are paused early.
    assert closes(events) == [Closed(0, 14, "silence"), Closed(45, 65, "silence")]
    assert next(i for i, e in events if isinstance(e, Paused)) == 13 + LONG_HANGOVER.early_frames
    # The same bursts within a few dB of the talker are the talker going on: one utterance.
    near = run_levels(probabilities, [26.0] * 14 + [20.0] * len(bursts) + [24.0] * 20 + [0.0] * 40, sides)
    assert closes(near) == [Closed(0, 65, "silence")]


def test_faint_frames_of_the_talkers_side_still_count_for_the_talker() -> None:
    # The clerk (26 dB) goes quiet; 8 frames from the resident's side (a turn needs 7 in a row) come
    # with the clerk's side heard faintly between them: the challenge is worn down, no new turn.
    mixed: list[str | None] = ["resident", "staff"] * 8
    levels = [26.0] * 20 + [10.0 if s == "staff" else 16.0 for s in mixed] + [26.0] * 20 + [0.0] * 40
    events = run_levels([0.9] * 56 + [0.0] * 40, levels, ["staff"] * 20 + mixed + ["staff"] * 20 + [None] * 40)
    assert closes(events) == [Closed(0, 56, "silence")]


def test_a_word_fading_out_straight_on_from_the_talker_is_still_theirs() -> None:
    # 20 frames at 26 dB, the last word fading over 6 frames at 8 dB (18 below), then silence:
    # the utterance ends after the fade. The same faint frames after a one-frame gap are not the talker.
    levels = [26.0] * 20 + [8.0] * 7 + [0.0] * 40
    sides: list[str | None] = ["staff"] * len(levels)
    assert closes(run_levels([0.9] * 26 + [0.0] * 41, levels, sides)) == [Closed(0, 26, "silence")]
    assert closes(run_levels([0.9] * 20 + [0.0] + [0.9] * 6 + [0.0] * 40, levels, sides)) == [Closed(0, 20, "silence")]


def test_the_talkers_loudest_frame_is_their_own_and_starts_afresh_with_each_utterance() -> None:
    state = endpoint.EndpointState()
    for i, (level, side) in enumerate([(10.0, "staff"), (30.0, "staff"), (20.0, "staff"), (40.0, "resident")]):
        state, _ = endpoint.step(state, i, FrameEvidence(0.9, level, side), LONG_HANGOVER)
    assert state.loudest_db == 30.0  # one frame of the other side is not the talker
    for i in range(4, 4 + LONG_HANGOVER.hangover_frames + 1):
        state, _ = endpoint.step(state, i, FrameEvidence(0.0, 0.0, None), LONG_HANGOVER)
    assert state.phase is endpoint.Phase.SILENCE
    state, _ = endpoint.step(state, 40, FrameEvidence(0.9, 12.0, "resident"), LONG_HANGOVER)
    assert state.loudest_db == 12.0
