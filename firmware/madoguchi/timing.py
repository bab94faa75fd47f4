"""CPU accounting per pipeline stage, injected into stages so DSP code never reads a clock."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StageTimer:
    """Adds up the time spent in each named stage (process CPU time by default).

    Process time, not thread time: native libraries may compute on threads of their own, and
    their CPU is the stage's cost too. Meaningful while the stages run one at a time.
    """

    def __init__(self, clock: Callable[[], float] = time.process_time) -> None:
        self._clock = clock
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.seconds[name] += self._clock() - start
