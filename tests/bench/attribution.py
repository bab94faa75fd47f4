"""Where the words are lost: the error rate per language, stage by stage, on simulated counters.

    python -m tests.bench.attribution [--set farfield|held-out|standard] [--scenes N] [--out DIR]
                                      [--override '{"beam": {"method": "wpe+mvdr"}, "vad": {"hangover_ms": 600}}']

Every truth utterance of every scene is transcribed six ways; after the first two, each adds one
stage of ours:

  (0) close-talk the talker's DRY clip (no room, no neighbours), the true language, full window:
                 what Whisper itself makes of these voices and phrases, so room = (a) - (0)
  (a) oracle     one mic (channel 0), the TRUE segment, the TRUE language, Whisper's full 30 s
                 window, no rejection: the peer a single-mic box with perfect segmentation gets
  (b) segments   our front end's utterances, still channel 0, true language, full window
  (c) beam       our utterances' enhanced audio (the beam), true language, full window
  (d) decoding   as (c) with our decoding: the fitted window, the rejection filters, the
                 clerk's prompt (the site glossary's terms in a clerk's sentence, for Japanese)
                 and the glossary's terms written as it writes them (mt/soundalike.py)
  (e) pipeline   ``madoguchi replay``: language identification, retries, side by language, and
                 what the box does with early words (an unfinished sentence held open, a whole
                 reply shown at its pause), all

so each lost point has a name: model = (0), room = a - 0, segmentation = b - a, beam = c - b,
decoding/rejection = d - c, identification & holds = e - d. Errors are corpus rates (edits over reference units: characters for
ja/zh, words otherwise) over each truth utterance against the text of the pieces assigned to
it (tests/sim/score.py ``assign``). Also printed: utterances split in pieces, speech given the
wrong side, resident language right, neighbours' speech printed as someone's words, the time
from the end of speech to the translation (``latency_ms``: the unpaced replay runs each
utterance's work alone, as a live counter would; and the same counted from the truth's end of
the talker's speech, which the box cannot know), and the CPU of each stage. Figures are for this machine's CPU (printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from madoguchi.app.parts import frontend_events, staff_prompts
from madoguchi.asr.base import open_recognizer
from madoguchi.config import AsrSettings, Settings, load_settings
from madoguchi.events import Utterance
from madoguchi.interpreter.translation import TranslationStage, site_glossary
from madoguchi.replay import run_replay
from madoguchi.timing import StageTimer
from tests.asr_assets import CHARACTER_LANGS, cpu_name, error_counts, speech_model_store
from tests.bench.peers import scene_audio
from tests.cache import atomic_write_bytes, cache_dir, made_by, stable_hash
from tests.sim.counter import Scene, build_scene
from tests.sim.score import FrontendScore, assign, pieces_and_sides, score

FS = 16000
WAYS = ("close-talk", "oracle", "segments", "beam", "decoding", "pipeline")
PRE_S, POST_S = 0.25, 0.3  # the oracle's cut around a true segment, as our endpointer's pre-roll and tail
ORACLE_MODEL = AsrSettings().model_id  # Whisper base q8_0 for whisper.cpp
NO_FILTERS = {"no_speech_threshold": 1.0, "logprob_threshold": -10.0, "compression_ratio_threshold": 10.0}


@dataclass
class Tally:
    """Edits and reference units per language and way, plus the counts that are not error rates."""

    edits: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    units: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    frontend: FrontendScore = field(default_factory=FrontendScore)
    resident_turns: int = 0
    resident_lang_right: int = 0  # turns whose every shown piece is in the resident's language
    resident_not_heard: int = 0  # turns with no piece shown at all (missed, rejected or joined)
    resident_joined: int = 0  # ... of which said inside a piece given to the same talker's next or previous sentence
    staff_turns_after_resident: int = 0
    staff_to_resident_lang: int = 0  # ... translated into the resident's language
    neighbours_printed: int = 0
    rejected_true_speech: int = 0
    records_split: int = 0  # truth utterances shown as two or more records ("Yes." shown before the rest of its line)
    latencies_ms: list[float] = field(default_factory=list)
    true_latencies_ms: list[float] = field(default_factory=list)  # the same, from the truth's end of the talker's speech
    asr_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    audio_s: float = 0.0

    def add_text(self, way: str, lang: str, ref: str, hyp: str) -> None:
        edits, units = error_counts(lang, ref, hyp)
        self.edits[way, lang] += edits
        self.units[way, lang] += units

    def rate(self, way: str, lang: str) -> float:
        return self.edits[way, lang] / self.units[way, lang] if self.units[way, lang] else float("nan")

    def languages(self) -> list[str]:
        return sorted({lang for _, lang in self.units}, key=lambda lang: (lang != "ja", lang))


def scene_set(name: str) -> list:
    from tests.sim import catalog

    if name == "standard":
        return catalog.standard_scenes()
    return catalog.farfield_scenes(held_out=name == "held-out")


def _joined(scene: Scene, k: int, records: list[dict], owner: list[int | None]) -> bool:
    """Truth segment ``k`` was said inside a shown piece that belongs to another sentence of the same
    talker (one utterance for one talker's turn): its words are there, scored against the other."""
    segment = scene.segments[k]
    return any(o is not None and o != k and scene.segments[o].side == segment.side and not r["rejected"]
               and min(r["end_s"], segment.end_s) - max(r["start_s"], segment.start_s) > 0.5 * (segment.end_s - segment.start_s)
               for r, o in zip(records, owner))


def _texts_by_truth(scene: Scene, pieces: list[dict]) -> list[str]:
    """Each truth segment's text as the pieces assigned to it say it (in time order)."""
    owner = assign(scene.segments, pieces)
    out = []
    for k, segment in enumerate(scene.segments):
        joined = [p["text"] for p, o in zip(pieces, owner) if o == k and p.get("text")]
        out.append(("" if segment.lang in ("ja", "zh") else " ").join(joined))
    return out


class Attribution:
    def __init__(self, override: dict | None = None, ways: tuple[str, ...] = WAYS) -> None:
        self.store = speech_model_store()
        self.override = override or {}
        self.ways = ways
        self._full = open_recognizer(AsrSettings(window="full", **NO_FILTERS), model_root=self.store.root)
        self._fitted = open_recognizer(AsrSettings(), model_root=self.store.root)
        self._as_the_box = TranslationStage(None, None, None)  # (d) writes the site's terms as the box does
        self.tally = Tally()
        self.rows: list[dict] = []

    def close(self) -> None:
        self._full.close()
        self._fitted.close()

    def settings(self, scene: Scene) -> Settings:
        settings = load_settings(scene.config_path, system_layers=False)
        for table, values in self.override.items():
            settings = dataclasses.replace(settings, **{table: dataclasses.replace(getattr(settings, table), **values)})
        return settings

    def run(self, scene: Scene) -> dict:
        settings = self.settings(scene)
        tally = self.tally
        audio = scene_audio(scene)
        tally.audio_s += len(audio) / FS
        timer = StageTimer()
        utterances = [e for e in frontend_events(settings, scene.wav_path, timer) if isinstance(e, Utterance)]
        for stage, seconds in timer.seconds.items():
            tally.cpu_s[f"frontend {stage}"] += seconds
        truth_lang = {k: s.lang for k, s in enumerate(scene.segments)}
        hyps = [u.summary() for u in utterances]
        owner = assign(scene.segments, hyps)
        frontend = score(scene.segments, hyps)
        tally.frontend = tally.frontend + frontend

        texts: dict[str, list[str]] = {"close-talk": self._close_talk_texts(scene), "oracle": self._oracle_texts(scene, audio)}
        self._decode_as_the_box(settings)
        for way in ("segments", "beam", "decoding"):
            if way not in self.ways:
                continue
            pieces = []
            for u, o in zip(utterances, owner):
                if o is None:
                    continue  # neighbours' speech: scored in the pipeline
                pieces.append({**u.summary(), "text": self._ours(way, audio, u, truth_lang[o])})
            texts[way] = _texts_by_truth(scene, pieces)
        finals = [r for r in self._pipeline(settings, scene) if not r.get("partial")] if "pipeline" in self.ways else []
        if "pipeline" in self.ways:
            texts["pipeline"] = _texts_by_truth(scene, finals)
        for way, heard in texts.items():  # the oracle and close-talk always: every other way is read against them
            for segment, hyp in zip(scene.segments, heard):
                tally.add_text(way, segment.lang, segment.text, hyp)

        record_owner = assign(scene.segments, finals)
        tally.records_split += pieces_and_sides(scene.segments, [r for r in finals if not r["rejected"]])[0]
        heard_langs: dict[int, set[str]] = defaultdict(set)
        resident_lang: str | None = None  # once the resident's first words were shown
        for record, o in zip(finals, record_owner):
            if o is None:
                tally.neighbours_printed += bool(record["text"])
                continue
            tally.latencies_ms.append(record["latency_ms"])
            tally.true_latencies_ms.append(_from_true_end_ms(scene, record, scene.segments[o].side))
            tally.asr_ms.append(record["asr_ms"])
            if record["rejected"]:
                tally.rejected_true_speech += 1
                continue
            heard_langs[o].add(record["lang"])
            truth = scene.segments[o]
            if truth.side == "staff" and resident_lang is not None:
                tally.staff_turns_after_resident += 1
                tally.staff_to_resident_lang += record["target_lang"] == resident_lang
            if truth.side == "resident":
                resident_lang = truth.lang
        for k, segment in enumerate(scene.segments):
            if segment.side == "resident" and "pipeline" in self.ways:
                tally.resident_turns += 1
                tally.resident_lang_right += heard_langs[k] == {segment.lang}
                tally.resident_not_heard += not heard_langs[k]
                tally.resident_joined += not heard_langs[k] and _joined(scene, k, finals, record_owner)
        row = {"scene": scene.spec.name, "frontend": dataclasses.asdict(frontend),
               "turns": [{"side": s.side, "lang": s.lang, "text": s.text, **{way: heard[k] for way, heard in texts.items()}} for k, s in enumerate(scene.segments)],
               "records": finals}
        self.rows.append(row)
        return row

    def _cached_texts(self, name: str, inputs: dict, code: list[str], make: Callable[[], list[str]]) -> list[str]:
        """Whisper's words for each truth segment from audio that depends on nothing of ours: cached,
        keyed on ``inputs``, the model, the decoding and the code and libraries that made them."""
        key = stable_hash({**inputs, "model": self.store.locked(ORACLE_MODEL), "asr": NO_FILTERS,
                           "made_by": made_by(code, ("pywhispercpp", "numpy", "soxr"))})
        path = cache_dir("attribution-oracle") / f"{name}{key[:20]}.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        texts = make()
        atomic_write_bytes(path, json.dumps(texts, ensure_ascii=False).encode("utf-8"))
        return texts

    def _oracle_texts(self, scene: Scene, audio: np.ndarray) -> list[str]:
        """The oracle's words for each truth segment (one mic, the true cut)."""
        return self._cached_texts("", {"scene": scene.wav_path.parent.name, "cut": [PRE_S, POST_S]}, [],
                                  lambda: [self._oracle(audio, s) for s in scene.segments])

    def _close_talk_texts(self, scene: Scene) -> list[str]:
        """Whisper on each talker's dry clip: the model's own share of the errors."""
        from tests.sim import speech

        voices = [s["voice"] for s in scene.truth()["segments"]]
        lines = list(zip(scene.segments, voices))
        return self._cached_texts("dry-", {"lines": [(s.lang, s.text, v) for s, v in lines]}, [speech.__file__],
                                  lambda: [self._transcribe(self._full, speech.clip(s.text, v), s.lang, "asr close-talk") for s, v in lines])

    def _oracle(self, audio: np.ndarray, segment) -> str:
        first, stop = int(max(0.0, segment.start_s - PRE_S) * FS), int(min(len(audio) / FS, segment.end_s + POST_S) * FS)
        return self._transcribe(self._full, audio[first:stop, 0], segment.lang, "asr oracle")

    def _ours(self, way: str, audio: np.ndarray, utterance: Utterance, lang: str) -> str:
        if way == "segments":
            first = int(utterance.audio_start_s * FS)
            return self._transcribe(self._full, audio[first : first + len(utterance.audio), 0], lang, "asr segments")
        if way == "beam":
            return self._transcribe(self._full, utterance.audio, lang, "asr beam")
        return self._as_the_box.as_the_site_writes(self._transcribe(self._fitted, utterance.audio, lang, "asr decoding"), lang)

    def _decode_as_the_box(self, settings: Settings) -> None:
        """Way (d) decodes with the clerk's prompt the box gives Whisper (app/parts.py) and writes
        the site's terms as the box does (interpreter/translation.py)."""
        glossary = site_glossary(settings)
        self._fitted.set_vocabulary(staff_prompts(settings, glossary))
        self._as_the_box = TranslationStage(None, glossary, None)

    def _transcribe(self, recognizer, audio: np.ndarray, lang: str, stage: str) -> str:
        if len(audio) < 0.1 * FS:
            return ""
        start = time.process_time()
        heard = recognizer.transcribe(np.ascontiguousarray(audio, dtype=np.float32), language=lang)
        self.tally.cpu_s[stage] += time.process_time() - start
        return heard.text

    def _pipeline(self, settings: Settings, scene: Scene) -> list[dict]:
        out = io.StringIO()
        start = time.process_time()
        run_replay(settings, scene.wav_path, out, as_json=True, model_root=self.store.root, summary=None)
        self.tally.cpu_s["pipeline (all stages)"] += time.process_time() - start
        return [json.loads(line) for line in out.getvalue().splitlines()]


def _from_true_end_ms(scene: Scene, record: dict, side: str) -> float:
    """A record's wait from where its talker really stopped: the last voiced span of that side
    inside the record (past its end if the front end cut a word short), not the front end's own end."""
    ends = [e for t in scene.segments if t.side == side for b, e in t.spans if b < record["end_s"] and e > record["start_s"]]
    return round(1000.0 * (record["end_s"] - max(ends, default=record["end_s"])) + record["latency_ms"], 1)


def _spread_ms(values: list[float]) -> str:
    ms = np.array(values) if values else np.array([np.nan])
    return f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms"


def _pct(x: float) -> str:
    return "    -" if np.isnan(x) else f"{100 * x:5.1f}"


LOSSES = (("room", "close-talk", "oracle"), ("segmentation", "oracle", "segments"), ("beam", "segments", "beam"), ("decoding", "beam", "decoding"), ("identification & holds", "decoding", "pipeline"))


def report(tally: Tally, scenes: int, label: str) -> str:
    lines = [f"## Attribution: {label}, {scenes} scenes, {tally.audio_s / 60:.1f} min of audio ({cpu_name()})", ""]
    ways = [w for w in WAYS if any(way == w for way, _ in tally.units)]
    losses = [(name, a, b) for name, a, b in LOSSES if a in ways and b in ways]
    head = "| lang | units | " + " | ".join(ways) + "".join(f" | {name}" for name, _, _ in losses) + " |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for lang in tally.languages():
        r = {way: tally.rate(way, lang) for way in ways}
        unit = "CER" if lang in CHARACTER_LANGS else "WER"
        lines.append(f"| {lang} {unit} | {tally.units['oracle', lang]} | " + " | ".join(_pct(r[w]) for w in ways)
                     + "".join(f" | {100 * (r[b] - r[a]):+5.1f}" for _, a, b in losses) + " |")
    f = tally.frontend
    lines += [
        "",
        f"- front end: side {_pct(f.side_accuracy)} %, short replies {_pct(f.short_accuracy)} %, missed {_pct(f.missed_rate)} %, "
        f"false alarm {_pct(f.false_alarm_rate)} %, utterances split {_pct(f.split_rate)} % ({f.split_segments}/{f.side_total}), "
        f"speech on the wrong side {_pct(f.wrong_side_rate)} %",
        f"- resident language right: {tally.resident_lang_right}/{tally.resident_turns} turns ({tally.resident_not_heard} not shown on their own, "
        f"{tally.resident_joined} of them inside a piece of the same talker's next or previous sentence); "
        f"staff turns after the resident's first words into the resident's language: {tally.staff_to_resident_lang}/{tally.staff_turns_after_resident}",
        f"- pieces of true speech rejected: {tally.rejected_true_speech}; neighbours' speech printed: {tally.neighbours_printed} segments; "
        f"utterances shown as two or more records: {tally.records_split}/{f.side_total}",
        f"- end of speech to translation (latency_ms): {_spread_ms(tally.latencies_ms)}; "
        f"from the truth's end of the talker's speech: {_spread_ms(tally.true_latencies_ms)}",
        "",
        "| stage | CPU s | per audio minute |",
        "|---|---|---|",
    ]
    minutes = tally.audio_s / 60
    for stage, seconds in sorted(tally.cpu_s.items()):
        lines.append(f"| {stage} | {seconds:.1f} | {seconds / minutes:.2f} |")
    return "\n".join(lines)


def plot(tally: Tally, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = tally.languages()
    ways = [w for w in WAYS if any(way == w for way, _ in tally.units)]
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(langs)), 3.6))
    width = 0.8 / len(ways)
    for k, way in enumerate(ways):
        ax.bar(x + (k - (len(ways) - 1) / 2) * width, [100 * tally.rate(way, lang) for lang in langs], width, label=way)
    ax.set_xticks(x, [f"{lang} ({'CER' if lang in CHARACTER_LANGS else 'WER'})" for lang in langs])
    ax.set_ylabel("error %")
    ax.legend(ncol=len(ways), fontsize=8)
    ax.set_title("Where the words are lost: one stage added at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="farfield", choices=("farfield", "held-out", "standard"))
    parser.add_argument("--scenes", type=int, default=0, help="only the first N scenes (0: all)")
    parser.add_argument("--override", default="{}", help="settings per table, as JSON")
    parser.add_argument("--ways", default=",".join(WAYS), help="which ways besides the (cached) oracle, e.g. pipeline when tuning it")
    parser.add_argument("--out", type=Path, default=Path("reports/bench/attribution"))
    args = parser.parse_args(argv)
    specs = scene_set(args.set)
    specs = specs[: args.scenes] if args.scenes else specs
    bench = Attribution(json.loads(args.override), tuple(args.ways.split(",")))
    started = time.monotonic()
    try:
        for spec in specs:
            scene = build_scene(spec)
            t0 = time.monotonic()
            bench.run(scene)
            print(f"{spec.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        bench.close()
    label = args.set + (f", {args.override}" if args.override != "{}" else "")
    text = report(bench.tally, len(specs), label)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attribution.md").write_text(text + "\n", encoding="utf-8")
    (args.out / "attribution.json").write_text(json.dumps(bench.rows, ensure_ascii=False, indent=1), encoding="utf-8")
    plot(bench.tally, args.out / "attribution.png")
    print(f"\n{len(specs)} scenes in {time.monotonic() - started:.0f} s; {args.out}/attribution.md, .json, .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
