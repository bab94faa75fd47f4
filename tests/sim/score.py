"""Diarization-error-style scoring of a front end's speech/side decisions (pure functions).

Speech activity (side-blind):
  missed       = truth voiced time (pauses between phrases excluded) no hypothesis covers,
  false alarm  = hypothesis time outside every truth segment (a turn, its own pauses included),
both measured outside a no-score collar of +-collar_s around every truth segment boundary
(the standard DER collar: a few hundred ms of boundary disagreement is not an error).
Rates are relative to the scored truth speech time (truth speech outside the collars).

Side attribution: each truth segment is matched to the hypothesis segment with the largest raw
overlap (no collar, so short replies still count; ties go to the earlier hypothesis). It is
correct if that hypothesis has the same side; a truth segment no hypothesis overlaps is wrong.
Segments of at most SHORT_SEGMENT_S are also tallied separately (short replies: はい, "OK.").

Pieces and sides of speech: each hypothesis belongs to the truth segment it overlaps most
(``assign``); a truth segment that got two or more hypotheses of at least PIECE_MIN_S of its
speech came out split. Wrong-side speech is the truth's voiced time covered by a hypothesis of
the other side, relative to all voiced time covered.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from .spec import TruthSegment

log = logging.getLogger(__name__)

SHORT_SEGMENT_S = 0.8
PIECE_MIN_S = 0.2
Interval = tuple[float, float]


def _union(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[list[float]] = []
    for s, e in sorted((s, e) for s, e in intervals if e > s):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def _subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """a minus b, both sorted unions."""
    out: list[Interval] = []
    j = 0
    for s, e in a:
        while j < len(b) and b[j][1] <= s:
            j += 1
        k, cur = j, s
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def _length(intervals: Iterable[Interval]) -> float:
    return sum(e - s for s, e in intervals)


def _overlap(a: Interval, b: Interval) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


@dataclass(frozen=True)
class FrontendScore:
    """Totals for one scene (or, summed with +, for many). Durations in seconds."""

    scored_speech_s: float = 0.0
    missed_s: float = 0.0
    false_alarm_s: float = 0.0
    side_correct: int = 0
    side_total: int = 0
    short_correct: int = 0
    short_total: int = 0
    split_segments: int = 0  # truth segments heard as two or more pieces
    covered_speech_s: float = 0.0  # truth voiced time some hypothesis covers
    wrong_side_s: float = 0.0  # ... covered by a hypothesis of the other side

    def __add__(self, other: FrontendScore) -> FrontendScore:
        if not isinstance(other, FrontendScore):
            return NotImplemented
        return FrontendScore(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __radd__(self, other: object) -> FrontendScore:
        if other == 0:  # lets sum(scores) work without a start value
            return self
        return NotImplemented

    @property
    def missed_rate(self) -> float:
        return _ratio(self.missed_s, self.scored_speech_s)

    @property
    def false_alarm_rate(self) -> float:
        return _ratio(self.false_alarm_s, self.scored_speech_s)

    @property
    def side_accuracy(self) -> float:
        return _ratio(self.side_correct, self.side_total)

    @property
    def short_accuracy(self) -> float:
        return _ratio(self.short_correct, self.short_total)

    @property
    def split_rate(self) -> float:
        return _ratio(self.split_segments, self.side_total)

    @property
    def wrong_side_rate(self) -> float:
        return _ratio(self.wrong_side_s, self.covered_speech_s)


def assign(truth: Sequence[TruthSegment], hyp: Sequence[Mapping]) -> list[int | None]:
    """For each hypothesis, the index of the truth segment it overlaps most (None: no truth speech)."""
    out: list[int | None] = []
    for h in hyp:
        interval = (float(h["start_s"]), float(h["end_s"]))
        overlaps = [sum(_overlap(interval, span) for span in t.spans) for t in truth]
        best = max(range(len(truth)), key=overlaps.__getitem__, default=None)
        out.append(best if best is not None and overlaps[best] > 0 else None)
    return out


def pieces_and_sides(truth: Sequence[TruthSegment], hyp: Sequence[Mapping]) -> tuple[int, float, float]:
    """(split segments, covered voiced seconds, of which given the wrong side)."""
    owner = assign(truth, hyp)
    split = covered = wrong = 0.0
    for k, t in enumerate(truth):
        pieces = [h for h, o in zip(hyp, owner) if o == k
                  and sum(_overlap((float(h["start_s"]), float(h["end_s"])), span) for span in t.spans) >= PIECE_MIN_S]
        split += len(pieces) >= 2
    for t in truth:
        for span in t.spans:
            for h in hyp:
                ov = _overlap(span, (float(h["start_s"]), float(h["end_s"])))
                covered += ov
                wrong += ov if h["side"] != t.side else 0.0
    return int(split), covered, wrong


def score(truth: Sequence[TruthSegment], hyp: Sequence[Mapping], collar_s: float = 0.25
          ) -> FrontendScore:
    """Score hypothesis segments (mappings with start_s, end_s, side) against the truth."""
    hyps = [(float(h["start_s"]), float(h["end_s"]), str(h["side"])) for h in hyp]
    truth_u = _union(span for t in truth for span in t.spans)
    hyp_u = _union((s, e) for s, e, _ in hyps)
    no_score = _union(iv for t in truth for span in t.spans for b in span
                      for iv in [(b - collar_s, b + collar_s)])
    scored = _subtract(truth_u, no_score)
    missed = _subtract(_subtract(truth_u, hyp_u), no_score)
    # A pause inside one talker's turn (between its phrases) belongs to that turn: bridging it is
    # what keeps a sentence whole, not a false alarm. False alarm is time outside every true turn.
    turns_u = _union((t.start_s, t.end_s) for t in truth)
    false_alarm = _subtract(_subtract(hyp_u, turns_u), no_score)

    side_ok = side_n = short_ok = short_n = 0
    for t in truth:
        best, best_ov = None, 0.0
        for s, e, side in hyps:
            ov = _overlap((t.start_s, t.end_s), (s, e))
            if ov > best_ov:
                best, best_ov = side, ov
        ok = best is not None and best == t.side
        side_n += 1
        side_ok += ok
        if t.end_s - t.start_s <= SHORT_SEGMENT_S:
            short_n += 1
            short_ok += ok
    split, covered, wrong = pieces_and_sides(truth, hyp)
    return FrontendScore(_length(scored), _length(missed), _length(false_alarm),
                         side_ok, side_n, short_ok, short_n, split, covered, wrong)


class SceneLike(Protocol):
    name: str
    n_mics: int
    array_rotation_deg: float
    rt60_s: float
    n_babble: int


def _pct(x: float) -> str:
    return "     -" if math.isnan(x) else f"{100.0 * x:6.1f}"


def table(rows: Iterable[tuple[SceneLike, FrontendScore]], total: bool = True) -> str:
    """Plain-text table, one row per (scene spec, score), plus a summed TOTAL row."""
    head = (f"{'scene':<28} {'array':<10} {'rt60':>4} {'bab':>3} {'side%':>6} {'short%':>6} "
            f"{'miss%':>6} {'FA%':>6} {'split%':>6} {'wside%':>6}")
    lines = [head, "-" * len(head)]
    acc = FrontendScore()
    for spec, sc in rows:
        acc = acc + sc
        array = f"{spec.n_mics}ch r{spec.array_rotation_deg:g}"
        lines.append(f"{spec.name[:28]:<28} {array:<10} {spec.rt60_s:4.1f} {spec.n_babble:3d} "
                     f"{_pct(sc.side_accuracy)} {_pct(sc.short_accuracy)} "
                     f"{_pct(sc.missed_rate)} {_pct(sc.false_alarm_rate)} "
                     f"{_pct(sc.split_rate)} {_pct(sc.wrong_side_rate)}")
    if total:
        lines.append("-" * len(head))
        lines.append(f"{'TOTAL':<28} {'':<10} {'':>4} {'':>3} {_pct(acc.side_accuracy)} "
                     f"{_pct(acc.short_accuracy)} {_pct(acc.missed_rate)} "
                     f"{_pct(acc.false_alarm_rate)} {_pct(acc.split_rate)} {_pct(acc.wrong_side_rate)}")
    return "\n".join(lines)
