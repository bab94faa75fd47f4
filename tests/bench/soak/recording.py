"""The soak's long recording: the bundled demo conversation repeated between idle stretches of the
counter's noise floor with bursts of the neighbouring counter's voice (cached, keyed on what made it)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.cache import cache_dir, made_by, stable_hash

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "firmware" / "madoguchi" / "data" / "demo"
RATE = 16000
NOISE_DBFS = -80.0  # the demo's own self-noise (truth.json: self_noise_dbfs): the idle counter continues its floor
FADE_S = 0.02  # raised-cosine crossfade at every junction (no clicks for the level gate to see)
# Babble-only stretches of the demo (s): at least 0.25 s after a talker's last speech (RT60 0.55 s:
# the tail is > 25 dB down by then) and before the next; the neighbouring counter's voice, at 350 deg.
CHATTER_S = ((0.62, 1.00), (3.82, 4.58), (22.38, 23.20), (28.02, 28.77))
CHATTER_EVERY_S = (20.0, 60.0)


@dataclass(frozen=True)
class Plan:
    lead_s: float  # idle before the first conversation
    idle_cycle_s: tuple[float, ...]  # idle between conversations, in turn
    total_s: float
    min_tail_s: float  # idle after the last conversation at least (its words come out)
    peer_s: float  # how much of the recording the peers replay


def plan_for(minutes: float, quick: bool) -> Plan:
    if quick:  # one idle stretch between two conversations; the lead is warm-up
        return Plan(lead_s=45.0, idle_cycle_s=(75.0,), total_s=round(minutes * 60.0), min_tail_s=15.0, peer_s=95.0)
    # 3, 5, 2, 4, 11 (panels asleep after 10), 2.5, 7 and 1.5 minutes of nobody at the counter
    return Plan(lead_s=60.0, idle_cycle_s=(180.0, 300.0, 120.0, 240.0, 660.0, 150.0, 420.0, 90.0), total_s=round(minutes * 60.0), min_tail_s=30.0, peer_s=240.0)


def layout(plan: Plan, conversation_s: float) -> list[tuple[str, float]]:
    """(kind, seconds) in order: idle lead, then conversations and idle stretches, ending idle."""
    parts, t, i = [("idle", plan.lead_s)], plan.lead_s, 0
    while t + conversation_s + plan.min_tail_s <= plan.total_s:
        parts.append(("conversation", conversation_s))
        t += conversation_s
        gap = plan.idle_cycle_s[i % len(plan.idle_cycle_s)]
        i += 1
        if t + gap + conversation_s + plan.min_tail_s > plan.total_s:
            break
        parts.append(("idle", gap))
        t += gap
    if plan.total_s - t > 0:
        parts.append(("idle", plan.total_s - t))
    if not any(kind == "conversation" for kind, _ in parts):
        raise SystemExit(f"--minutes {plan.total_s / 60:g} leaves no room for a conversation ({conversation_s:.0f} s) after the {plan.lead_s:.0f} s lead")
    return parts


@dataclass
class Recording:
    wav: Path
    timeline: dict  # stretches (kind, start_s, end_s), expected utterances, chatter bursts

    @property
    def conversations(self) -> list[dict]:
        return [s for s in self.timeline["stretches"] if s["kind"] == "conversation"]

    @property
    def idles(self) -> list[dict]:
        return [s for s in self.timeline["stretches"] if s["kind"] == "idle"]


def _ramp(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n, dtype=np.float64)))[:, None]


def _blend(floor: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """``piece`` over ``floor`` (same shape), faded in and out over FADE_S."""
    n = min(int(FADE_S * RATE), len(piece) // 2)
    weight = np.ones((len(piece), 1))
    weight[:n] = _ramp(n)
    weight[len(piece) - n:] = _ramp(n)[::-1]
    return piece * weight + floor * (1.0 - weight)


def build_recording(plan: Plan) -> Recording:
    """The long recording, from the cache when the same plan, demo and generator made it before."""
    flac = DEMO / "counter-demo.flac"
    truth = json.loads((DEMO / "counter-demo.truth.json").read_text(encoding="utf-8"))
    demo, rate = sf.read(flac, dtype="float64", always_2d=True)
    if rate != RATE:
        raise SystemExit(f"{flac}: {rate} Hz, expected {RATE}")
    conversation_s = len(demo) / RATE
    parts = layout(plan, conversation_s)
    key = stable_hash({
        "parts": parts, "demo": hashlib.sha256(flac.read_bytes()).hexdigest(), "noise_dbfs": NOISE_DBFS, "chatter": CHATTER_S,
        "chatter_every_s": CHATTER_EVERY_S, "fade_s": FADE_S, "made_by": made_by([__file__], packages=("numpy", "soundfile")),
    })
    folder = cache_dir("soak", key[:20])
    wav, timeline_file = folder / "soak.wav", folder / "timeline.json"
    if wav.is_file() and timeline_file.is_file():
        return Recording(wav, json.loads(timeline_file.read_text(encoding="utf-8")))

    rng = np.random.default_rng(11)
    sigma = 10.0 ** (NOISE_DBFS / 20.0)
    chatter = [demo[int(a * RATE):int(b * RATE)] for a, b in CHATTER_S]
    stretches, expected, bursts = [], [], []
    t = 0.0
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".wav", dir=folder)
    os.close(fd)
    try:
        with sf.SoundFile(tmp, "w", samplerate=RATE, channels=demo.shape[1], subtype="PCM_16", format="WAV") as out:
            for kind, seconds in parts:
                n = int(round(seconds * RATE)) if kind == "idle" else len(demo)
                floor = rng.normal(0.0, sigma, (n, demo.shape[1]))
                if kind == "conversation":
                    audio = _blend(floor, demo)
                    expected += [{**{k: seg[k] for k in ("side", "lang", "text")}, "start_s": round(t + seg["start_s"], 3), "end_s": round(t + seg["end_s"], 3)} for seg in truth["segments"]]
                else:
                    audio = floor
                    at = t + rng.uniform(*CHATTER_EVERY_S)
                    while at + 2.0 < t + seconds - 5.0:
                        which = int(rng.integers(len(chatter)))
                        piece = chatter[which]
                        i = int((at - t) * RATE)
                        audio[i:i + len(piece)] = _blend(audio[i:i + len(piece)], piece)
                        bursts.append({"start_s": round(at, 3), "end_s": round(at + len(piece) / RATE, 3), "from_demo_s": CHATTER_S[which]})
                        at += len(piece) / RATE + rng.uniform(*CHATTER_EVERY_S)
                out.write(np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16))
                stretches.append({"kind": kind, "start_s": round(t, 3), "end_s": round(t + n / RATE, 3)})
                t += n / RATE
        os.replace(tmp, wav)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    timeline = {"duration_s": round(t, 3), "stretches": stretches, "expected": expected, "chatter": bursts,
                "per_conversation": len(truth["segments"]), "source": str(flac.relative_to(ROOT))}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(timeline, f, ensure_ascii=False, indent=1)
    os.replace(tmp, timeline_file)
    return Recording(wav, timeline)
