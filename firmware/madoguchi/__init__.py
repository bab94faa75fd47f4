"""Madoguchi: offline counter interpreter firmware for a Raspberry Pi 5 box."""

import os

# numpy's BLAS on a 2- or 4-core box: the front end's small matrix products and the beam's
# per-frequency solves are slower spread over threads (WPE measured 13x the CPU on 2 threads),
# and the threads would compete with whisper.cpp's. Set before anything imports numpy.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
