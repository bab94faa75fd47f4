"""Write the bundled demo conversation: python -m tests.sim.make_demo OUT_DIR

Produces OUT_DIR/counter-demo.flac (16 kHz, int16, 4 channels), counter-demo.toml (same format
as scene.toml) and counter-demo.truth.json.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import soundfile as sf

from .counter import build_scene, demo_spec

log = logging.getLogger(__name__)


def make_demo(out_dir: Path) -> list[Path]:
    scene = build_scene(demo_spec())
    out_dir.mkdir(parents=True, exist_ok=True)
    audio, sr = sf.read(scene.wav_path, dtype="int16", always_2d=True)  # already 16 kHz int16
    flac = out_dir / "counter-demo.flac"
    sf.write(flac, audio, sr, format="FLAC", subtype="PCM_16", compression_level=1.0)
    toml = out_dir / "counter-demo.toml"
    truth = out_dir / "counter-demo.truth.json"
    shutil.copyfile(scene.config_path, toml)
    shutil.copyfile(scene.truth_path, truth)
    log.info("wrote %s (%.2f MB, %d ch, %.1f s)", flac, flac.stat().st_size / 1e6,
             audio.shape[1], audio.shape[0] / sr)
    return [flac, toml, truth]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for path in make_demo(args.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
