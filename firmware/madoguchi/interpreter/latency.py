"""Per-stage timings over a run: p50 and p95 of each, as the replay summary prints them."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

STAGE_ORDER = ("vad_ms", "asr_ms", "mt_ms", "latency_ms")


class LatencyTable:
    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}

    def add(self, timings_ms: Mapping[str, float]) -> None:
        for stage, value in timings_ms.items():
            self._values.setdefault(stage, []).append(float(value))

    def percentiles(self) -> dict[str, tuple[float, float]]:
        """stage -> (p50, p95) in ms."""
        return {stage: (float(np.percentile(v, 50)), float(np.percentile(v, 95))) for stage, v in self._values.items() if v}

    def format(self) -> str:
        rows = self.percentiles()
        order = [s for s in STAGE_ORDER if s in rows] + sorted(set(rows) - set(STAGE_ORDER))
        n = max((len(v) for v in self._values.values()), default=0)
        lines = [f"per-stage timings over {n} utterances (latency_ms = end of speech to translation: the hangover, or ASR + MT started "
                 "early in the pause if they end later)",
                 f"{'stage':<12}{'p50 ms':>9}{'p95 ms':>9}"]
        lines += [f"{stage:<12}{rows[stage][0]:>9.0f}{rows[stage][1]:>9.0f}" for stage in order]
        return "\n".join(lines)
