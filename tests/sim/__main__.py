"""Build (or check the cache of) every standard scene: python -m tests.sim [--demo] [--farfield]

Prints one line per scene and the wall time; handy for warming the cache before a test run.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import soundfile as sf

from .catalog import farfield_scenes
from .counter import build_scene, demo_spec, standard_scenes

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the simulated counter scenes")
    parser.add_argument("--demo", action="store_true", help="also build the demo scene")
    parser.add_argument("--farfield", action="store_true", help="also build the 12 far-field counters and their 12 held-out ones")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    specs = standard_scenes() + ([demo_spec()] if args.demo else []) + (farfield_scenes() + farfield_scenes(held_out=True) if args.farfield else [])
    t0 = time.monotonic()
    total_s = 0.0
    for spec in specs:
        t1 = time.monotonic()
        scene = build_scene(spec)
        dur = sf.info(str(scene.wav_path)).duration
        total_s += dur
        print(f"{spec.name:<30} {dur:5.1f} s audio  {len(scene.segments):2d} segments  "
              f"{time.monotonic() - t1:5.1f} s  {scene.wav_path.parent}", flush=True)
    print(f"{len(specs)} scenes, {total_s:.1f} s of audio, built in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
