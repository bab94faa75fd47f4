"""A stand-in box for the telemetry tests: the real Telemetry, fed synthetic utterances.

    python -m tests.telemetry_box CONFIG --count N [--interval S] [--share-text]

Prints "appended <seq>" after each durable spool append, then forwards until the spool is
empty and exits. Run as its own process so tests can kill -9 it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from madoguchi.config import config_layers, settings_from_layers
from madoguchi.events import Utterance
from madoguchi.telemetry.service import Telemetry


def utterance(i: int) -> Utterance:
    side = "staff" if i % 2 == 0 else "resident"
    return Utterance(start_s=i * 2.0, end_s=i * 2.0 + 1.5, side=side, azimuth_deg=270.0 if side == "staff" else 90.0, elevation_deg=20.0,
                     side_confidence=0.8, side_held=False, decided_at_s=i * 2.0 + 1.8, close_reason="silence", audio_start_s=i * 2.0 - 0.25, audio=np.zeros(0, np.float32))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the spool to empty")
    parser.add_argument("--hold", type=float, default=0.0, help="stay connected this long after draining")
    parser.add_argument("--append-first", action="store_true", help="spool everything before connecting")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    layers = config_layers(args.config, system_layers=False)
    telemetry = Telemetry(settings_from_layers(layers), layers)
    if not args.append_first:
        telemetry.start()
    for i in range(args.count):
        telemetry.record_utterance(utterance(i), lang="ja" if i % 2 == 0 else "en", target_lang="en" if i % 2 == 0 else "ja",
                                   timings_ms={"vad_ms": 3.0, "latency_ms": 400.0 + i % 7}, text="住民票をお願いします", translation="A residence certificate, please")
        print(f"appended {i}", flush=True)
        time.sleep(args.interval)
    if args.append_first:
        telemetry.start()
    drained = telemetry.flush(args.drain)
    print(f"drained {drained}", flush=True)
    time.sleep(args.hold)
    telemetry.stop()
    return 0 if drained else 3


if __name__ == "__main__":
    raise SystemExit(main())
