"""Warm the image tests' caches: the stand-in base image and the aarch64 wheelhouse.

    python -m tests.image.prepare

Both are slow on a fresh machine (about 10 and 25 minutes under emulation) and mostly one core
each, so `.ci/run` starts this in the background while the benchmarks run; the image tests then
find both cached. Each is keyed on what made it, so a warm run does nothing.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests import image

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    started = time.monotonic()
    if image.missing_tools() or not image.binfmt_ready():
        print(f"image caches: not prepared (missing {image.missing_tools() or 'binfmt_misc for aarch64'}); the image tests will say what to install")
        return 0
    base = image.base_image()
    print(f"image caches: base image {base.name} ready after {time.monotonic() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="madoguchi-wheels-") as out:
        result = subprocess.run(["bash", str(ROOT / "hw/image/wheelhouse.sh"), "--suite", image.SUITE, "--out", out], check=False)
    print(f"image caches: wheelhouse {'ready' if result.returncode == 0 else 'FAILED'} after {time.monotonic() - started:.0f} s", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
