"""An utterance cut down to its talker: what the endpointer held around them is not their words.

The endpointer keeps an utterance open while frames from the talker's side stand a little above
the room (the hold gate), and starts a new turn where the other side's run of frames began. In a
reverberant hall both reach past the talker: the tail of their last word and a neighbouring
counter's voice heard from their side hold it up to about a second at either end (far-field
rooms, 90th percentile: 0.7–0.8 s before the talker's first word and after their last).
ASR then decodes that murmur as more words, or rejects a short reply for it ("Yes." in two
seconds of audio, decoded "Yance." at low confidence).

So at the close the utterance keeps the stretch from the first to the last of its own frames
that stand within ``CORE_BELOW_LOUD_DB`` of its loud frames, widened over the frames either side
that stand within ``EDGE_BELOW_LOUD_DB`` (a soft first consonant, a word's fading end) and do not
come from the other side, across gaps of up to ``EDGE_GAP_FRAMES``. The talker is 0.5–1 m from
the array and a neighbour 2–3 m: the talker's syllables are the loud frames, and the murmur
around them is 10–20 dB below. A short quiet reply has so few frames that murmur a pause away
can stand within the core's 8 dB of it: so the core is taken in stretches split at pauses, and a
stretch whose loudest frame is ``CLUSTER_BELOW_PEAK_DB`` below the loudest of all is dropped.
The pre-roll and tail the beam adds still go around the result.

Pure: per-frame levels and sides in, offsets out; ``tests/test_trim.py`` drives it with lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from madoguchi.events import other_side

LOUD_PERCENTILE = 90  # the utterance's loud frames: robust to one click, yet a short reply's syllable
CORE_BELOW_LOUD_DB = 8.0  # the talker's own frames: within this of the loud frames
EDGE_BELOW_LOUD_DB = 18.0  # ... and the quieter frames that join them at either end
EDGE_GAP_FRAMES = 1  # a frame too quiet or from the other side inside the edge does not end it
CLUSTER_GAP_FRAMES = 10  # core frames further apart than this (~0.32 s, a pause) are separate stretches
CLUSTER_BELOW_PEAK_DB = 10.0  # a stretch whose loudest frame is this far below the loudest is not the talker


def talker_span(levels: Sequence[float], sides: Sequence[str | None], side: str) -> tuple[int, int]:
    """[first, stop) of the talker's stretch within an utterance's frames.

    ``levels``: each frame's level over the room's background (dB; -inf while it was not known);
    ``sides``: the side each frame's sound came from (None: neither sector). With no frame of
    ``side`` to go by, the utterance is kept whole.
    """
    if len(levels) != len(sides):
        raise ValueError(f"{len(levels)} levels for {len(sides)} sides: one of each per frame")
    own = [i for i, (level, s) in enumerate(zip(levels, sides)) if s == side and np.isfinite(level)]
    if not own:
        return 0, len(levels)
    loud = float(np.percentile([levels[i] for i in own], LOUD_PERCENTILE))
    core = _near_the_peak([i for i in own if levels[i] >= loud - CORE_BELOW_LOUD_DB], levels)
    other = other_side(side)

    def joins(i: int) -> bool:
        return sides[i] != other and levels[i] >= loud - EDGE_BELOW_LOUD_DB

    first = _widen(core[0], range(core[0] - 1, -1, -1), joins)
    last = _widen(core[-1], range(core[-1] + 1, len(levels)), joins)
    return first, last + 1


def _near_the_peak(core: list[int], levels: Sequence[float]) -> list[int]:
    """The core frames in stretches (split at pauses) whose loudest frame comes near the loudest of all."""
    stretches: list[list[int]] = []
    for i in core:
        if stretches and i - stretches[-1][-1] <= CLUSTER_GAP_FRAMES:
            stretches[-1].append(i)
        else:
            stretches.append([i])
    peak = max(levels[i] for i in core)
    return [i for stretch in stretches if max(levels[j] for j in stretch) >= peak - CLUSTER_BELOW_PEAK_DB for i in stretch]


def _widen(edge: int, outward: range, joins: Callable[[int], bool]) -> int:
    """Move ``edge`` outward over joining frames, across gaps of up to EDGE_GAP_FRAMES."""
    gap = 0
    for i in outward:
        if joins(i):
            edge, gap = i, 0
        else:
            gap += 1
            if gap > EDGE_GAP_FRAMES:
                break
    return edge


def murmur_since(levels: Sequence[float], sides: Sequence[str | None], side: str, since: int) -> bool:
    """Every frame from ``since`` on that is not the other side's stands more than
    ``CORE_BELOW_LOUD_DB`` below the talker's loud frames before it: murmur (a neighbour, the
    room), not the talker going on. False with no frame of ``side`` before ``since`` to go by."""
    own = [level for level, s in zip(levels[:since], sides[:since]) if s == side and np.isfinite(level)]
    if not own:
        return False
    loud = float(np.percentile(own, LOUD_PERCENTILE))
    other = other_side(side)
    return all(level < loud - CORE_BELOW_LOUD_DB for level, s in zip(levels[since:], sides[since:]) if s != other)
