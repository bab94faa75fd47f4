"""Resident memory of the box's pipeline with its models loaded: the ≤ 1 GB bar.

``python -m tests.bench.memory`` starts one fresh process per configuration and reports what it
holds after loading everything the service loads (Silero and the front end, Whisper base, one
translation model shaped like OPUS-MT, the phrasebook and glossary with the Japanese reading
dictionary) and after interpreting one utterance: VmRSS then, and VmHWM (the peak). The MT model
has random weights (no real MT weights can be had here) but the real shape and int8 storage, so
its memory is the real one's. Peer in the same run: the faster-whisper backend instead of whisper.cpp.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

BAR_MB = 1024
CONFIGS = ("whisper.cpp", "faster-whisper")


def worker(backend: str) -> dict:
    from madoguchi.app.parts import build_frontend
    from madoguchi.asr.base import open_recognizer
    from madoguchi.config import AsrSettings, Settings
    from madoguchi.frontend.vad import SileroVad
    from madoguchi.mt.engine import TranslationEngine
    from madoguchi.mt.glossary import Glossary
    from madoguchi.mt.phrasebook import Phrasebook
    from tests.asr_assets import speech_model_store, status_mb, utterance
    from tests.bench.mt import SHAPES, model_folder

    steps = {"python + imports": status_mb("VmRSS")}
    frontend = build_frontend(Settings())
    SileroVad()(np.zeros(512, np.float32))
    steps["+ front end, Silero"] = status_mb("VmRSS")
    settings = AsrSettings(backend=backend)
    recognizer = open_recognizer(settings, model_root=speech_model_store().root)
    steps["+ Whisper base (the backend's default model)"] = status_mb("VmRSS")
    shape = SHAPES["opus-mt"]
    engine = TranslationEngine(shape.model_id, model_folder(shape), threads=2)
    steps["+ OPUS-MT-shaped pair (int8)"] = status_mb("VmRSS")
    phrasebook, _glossary = Phrasebook.load(), Glossary.load()  # kept alive: its memory is what is measured
    phrasebook.lookup("住民表の映しも必要ですか", "ja", "en")  # loads the reading dictionary
    steps["+ phrasebook, glossary, readings"] = status_mb("VmRSS")
    clip = utterance("ja", "住民票の写しを一通お願いします。")
    recognizer.transcribe(clip.audio, language="ja")
    recognizer.transcribe(clip.audio, candidates=("en", "vi", "zh"))
    engine.translate_pieces([[f"\u2581w{i}" for i in range(1000, 1015)]], shape.source, shape.target, min_output_tokens=15, max_output_tokens=15)
    steps["after interpreting an utterance"] = status_mb("VmRSS")
    del frontend
    return {"backend": backend, "steps": steps, "peak_mb": status_mb("VmHWM")}


def main() -> None:
    from tests.asr_assets import cpu_name, speech_model_store

    speech_model_store()  # fetch and convert here, not inside a measured process
    results = []
    for backend in CONFIGS:
        done = subprocess.run([sys.executable, "-m", "tests.bench.memory", "--worker", backend], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"memory worker for {backend} failed")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"CPU: {cpu_name()}; resident memory (VmRSS) as the service loads, MB; bar: {BAR_MB} MB")
    labels = list(results[0]["steps"])
    print(f"{'':<46}" + "".join(f"{r['backend']:>16}" for r in results))
    for i, label in enumerate(labels):
        print(f"{label:<46}" + "".join(f"{list(r['steps'].values())[i]:>16.0f}" for r in results))
    print(f"{'peak (VmHWM)':<46}" + "".join(f"{r['peak_mb']:>16.0f}" for r in results))
    for r in results:
        verdict = "within" if r["peak_mb"] <= BAR_MB else "OVER"
        print(f"{r['backend']}: peak {r['peak_mb']:.0f} MB, {verdict} the {BAR_MB} MB bar")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2])))
    else:
        main()
