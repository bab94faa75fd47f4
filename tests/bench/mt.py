"""Machine-translation speed: random-weight int8 CTranslate2 models of the real models' shapes.

    python -m tests.bench.mt [--budget-s 150] [--shapes opus-mt,m2m100-418m,nllb-200-600m] [--out reports/bench/mt.md]

No real MT weights can be had here, but decoding speed depends only on the shapes: layers,
widths, heads, vocabulary. Each model is translated through the real engine
(``TranslationEngine.translate_pieces``: tags, prefix, vocabulary map) with a 15-token source
and exactly 15 output tokens (forced with min/max decoding length), 2 threads, greedy; p50/p95
over repeated runs. Every shape runs twice: whole vocabulary, and with a
per-target-language vocabulary map allowing 8,000 tokens (the OPUS-MT shape too, for comparison);
each shape runs in its own process, the two variants alternating run by run, and the
resident-memory increase of each load is measured on its own.

Models are generated once (int8 weights drawn directly, tied embeddings stored once as in real
conversions) and cached under $MADOGUCHI_BENCH_MT_CACHE, default ``bench-mt`` in the tests' cache (tests/cache.py),
keyed on the shape and on what builds them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.asr_assets import cpu_name, status_mb
from tests.cache import cache_dir, made_by, stable_hash

THREADS = 2
TOKENS = 15
ALLOWED = 8000
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Shape:
    name: str
    model_id: str  # the id the engine sees (Marian: its direction)
    family: str  # marian | m2m100 | nllb
    layers: tuple[int, int]
    d_model: int
    ffn: int
    heads: int
    vocab: int
    pre_norm: bool
    swish: bool  # Marian's activation; the others use ReLU
    positions: int
    source: str = "ja"
    target: str = "vi"

    @property
    def params(self) -> int:
        d, f = self.d_model, self.ffn
        encoder = self.layers[0] * (4 * d * d + 2 * d * f)
        decoder = self.layers[1] * (8 * d * d + 2 * d * f)
        return encoder + decoder + self.vocab * d  # tied embeddings: one matrix

    def bytes_per_step(self, allowed: int | None) -> int:
        """int8 weight bytes read per decoded token: decoder layers (cross-attention keys/values are cached) + output rows."""
        d, f = self.d_model, self.ffn
        return self.layers[1] * (6 * d * d + 2 * d * f) + (allowed or self.vocab) * d


SHAPES = {s.name: s for s in (
    Shape("opus-mt", "opus-mt-ja-en", "marian", (6, 6), 512, 2048, 8, 60_000, False, True, 512, target="en"),
    Shape("m2m100-418m", "m2m100-418m", "m2m100", (12, 12), 1024, 4096, 16, 128_112, True, False, 1026),
    Shape("nllb-200-600m", "nllb-200-distilled-600m", "nllb", (12, 12), 1024, 4096, 16, 256_206, True, False, 1026),
)}


def cache_root() -> Path:
    return Path(os.environ.get("MADOGUCHI_BENCH_MT_CACHE") or cache_dir("bench-mt"))


def build_key(shape: Shape) -> str:
    """A generated model is keyed on its shape and on what builds it: this code, the tokenizer trainer, CTranslate2."""
    from tests import mt_models

    return stable_hash({"shape": dataclasses.asdict(shape), "made_by": made_by([__file__, mt_models.__file__], ("ctranslate2", "numpy", "sentencepiece"))})[:12]


# ---------------------------------------------------------------------------------------------
# building random models


def vocabulary(shape: Shape) -> list[str]:
    from madoguchi.mt.families import M2M100, NLLB

    if shape.family == "marian":
        head, tags = ["</s>", "<unk>"], []
    else:
        family = M2M100 if shape.family == "m2m100" else NLLB
        head, tags = ["<s>", "<pad>", "</s>", "<unk>"], [c[0] for c in family.language_tokens.values()]
    fillers = [f"\u2581w{i}" for i in range(shape.vocab - len(head) - len(tags))]
    return head + fillers + tags


def _linear(layer, rng: np.random.Generator, out: int, inp: int) -> None:
    layer.weight = _int8(rng, out, inp)
    layer.weight_scale = np.full(out, 127 / 0.05, np.float32)  # weights of about +-0.05
    layer.bias = np.zeros(out, np.float32)


def _int8(rng: np.random.Generator, *shape: int) -> np.ndarray:
    values = np.frombuffer(rng.bytes(int(np.prod(shape))), dtype=np.int8).reshape(shape).copy()
    np.maximum(values, -127, out=values)  # symmetric range, like CTranslate2's own quantization
    return values


def _norm(norm, d: int) -> None:
    norm.gamma = np.ones(d, np.float32)
    norm.beta = np.zeros(d, np.float32)


def build_random_model(shape: Shape, folder: Path) -> None:
    """A CTranslate2 int8 model of the shape with random weights, a vocabulary and a (tiny) tokenizer."""
    from ctranslate2.specs import common_spec, transformer_spec

    from tests.mt_models import language_words, toy_corpus, train_sentencepiece

    rng = np.random.default_rng(1)
    d, f = shape.d_model, shape.ffn
    activation = common_spec.Activation.SWISH if shape.swish else common_spec.Activation.RELU
    spec = transformer_spec.TransformerSpec.from_config(shape.layers, shape.heads, pre_norm=shape.pre_norm, activation=activation)
    embeddings = _int8(rng, shape.vocab, d)
    embedding_scale = np.full(shape.vocab, 127 / 0.05, np.float32)
    for stack in (spec.encoder, spec.decoder):
        emb = stack.embeddings[0] if isinstance(stack.embeddings, list) else stack.embeddings
        emb.weight, emb.weight_scale = embeddings, embedding_scale
        stack.scale_embeddings = True
        stack.position_encodings.encodings = (rng.standard_normal((shape.positions, d), np.float32) * 0.02)
        if shape.pre_norm:
            _norm(stack.layer_norm, d)
        for layer in stack.layer:
            _norm(layer.self_attention.layer_norm, d)
            _linear(layer.self_attention.linear[0], rng, 3 * d, d)
            _linear(layer.self_attention.linear[1], rng, d, d)
            if hasattr(layer, "attention"):
                _norm(layer.attention.layer_norm, d)
                _linear(layer.attention.linear[0], rng, d, d)
                _linear(layer.attention.linear[1], rng, 2 * d, d)
                _linear(layer.attention.linear[2], rng, d, d)
            _norm(layer.ffn.layer_norm, d)
            _linear(layer.ffn.linear_0, rng, f, d)
            _linear(layer.ffn.linear_1, rng, d, f)
    spec.decoder.projection.weight, spec.decoder.projection.weight_scale = embeddings, embedding_scale
    spec.decoder.projection.bias = np.zeros(shape.vocab, np.float32)
    if shape.family == "marian":
        spec.decoder.start_from_zero_embedding = True
    tokens = vocabulary(shape)
    spec.register_source_vocabulary(tokens)
    spec.register_target_vocabulary(tokens)
    spec.config.unk_token, spec.config.eos_token = "<unk>", "</s>"
    spec.config.bos_token = "<s>"
    spec.config.decoder_start_token = "</s>"
    spec.validate()
    # tied embeddings are stored once, as the converters' aliasing does for the real models
    for target in (spec.decoder.embeddings, spec.decoder.projection):
        target.weight, target.weight_scale = "encoder/embeddings_0/weight", "encoder/embeddings_0/weight_scale"
    spec.save(str(folder))
    tokenizer = train_sentencepiece(toy_corpus("en", 50), language_words("en"))
    for name in (("source.spm", "target.spm") if shape.family == "marian" else ("sentencepiece.bpe.model",)):
        (folder / name).write_bytes(tokenizer)


def model_folder(shape: Shape) -> Path:
    """The cached model, built on first use (into a temp folder, renamed when complete)."""
    folder = cache_root() / f"{shape.name}-{build_key(shape)}"
    if (folder / "model.bin").is_file():
        return folder
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.perf_counter()
    build_random_model(shape, tmp)
    os.replace(tmp, folder)
    print(f"built {shape.name} in {time.perf_counter() - t0:.1f} s: {folder}", file=sys.stderr)
    return folder


def vmap_folder(shape: Shape) -> Path:
    """The same model (files linked) plus a vocabulary map allowing ALLOWED tokens when translating into the shape's target."""
    from madoguchi.mt.vmap import VMAP_FILE, VocabularyMap

    base = model_folder(shape)
    folder = base.with_name(base.name + f"-vmap{ALLOWED // 1000}k")
    if (folder / VMAP_FILE).is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for item in base.iterdir():
        if not (folder / item.name).exists():
            (folder / item.name).symlink_to(item)
    tokens = vocabulary(shape)
    rng = np.random.default_rng(2)
    fillers = [t for t in tokens if t.startswith("\u2581w")]
    always = ["<s>", "</s>", "<unk>", *fillers[:300]]  # stands for punctuation, digits, symbols
    language = [fillers[i] for i in rng.choice(np.arange(300, len(fillers)), ALLOWED - len(always), replace=False)]
    VocabularyMap(tuple(always), {shape.target: tuple(language)}).write(folder / VMAP_FILE)
    return folder


# ---------------------------------------------------------------------------------------------
# measuring (one configuration per process)


def worker(name: str, budget_s: float) -> list[dict]:
    """Load the model twice (whole vocabulary, then with the vocabulary map) and time both, alternating run by run so
    that both see the same background load (other work on this machine); each load's resident-memory increase is its own."""
    from madoguchi.mt.engine import TranslationEngine

    shape = SHAPES[name]
    pieces = [f"\u2581w{i}" for i in range(1000, 1000 + TOKENS)]
    variants = []
    for restricted in (False, True):
        folder = vmap_folder(shape) if restricted else model_folder(shape)
        before = status_mb()
        t0 = time.perf_counter()
        engine = TranslationEngine(shape.model_id, folder, threads=THREADS)
        load_s = time.perf_counter() - t0
        variants.append({"engine": engine, "restricted": restricted, "load_s": load_s, "rss_mb": status_mb() - before, "times": [],
                         "size_mb": sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6})

    def once(engine: TranslationEngine) -> float:
        t = time.perf_counter()
        out = engine.translate_pieces([pieces], shape.source, shape.target, min_output_tokens=TOKENS, max_output_tokens=TOKENS)
        elapsed = time.perf_counter() - t
        assert len(out[0]) <= TOKENS, out
        return elapsed

    warm = sum(once(v["engine"]) for v in variants for _ in range(2)) / 2
    spent = sum(v["load_s"] for v in variants) + 2 * warm
    runs = int(np.clip((budget_s - spent) / max(warm, 1e-3), 5, 40))
    for _ in range(runs):
        for v in variants:
            v["times"].append(once(v["engine"]) * 1000)
    rows = []
    for v in variants:
        times = np.array(v.pop("times"))
        v.pop("engine")
        rows.append({"shape": name, **v, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)), "runs": runs})
    return rows


def run_shape(name: str, budget_s: float) -> list[dict]:
    cmd = [sys.executable, "-m", "tests.bench.mt", "--worker", name, "--budget-s", f"{budget_s:.1f}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "firmware"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> list[str]:
    lines = [f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs here), {THREADS} threads, greedy, int8; "
             f"{TOKENS}-token source, exactly {TOKENS} output tokens; ctranslate2 {_ct2_version()}; "
             f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (other work on this machine inflates the times)", "",
             "| shape | parameters | vocabulary | allowed | on disk MB | load s | RSS +MB | p50 ms | p95 ms | ms/token | int8 MB read/token | runs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = SHAPES[r["shape"]]
        allowed = ALLOWED if r["restricted"] else None
        lines.append(f"| {shape.name} ({shape.layers[0]}+{shape.layers[1]}, d {shape.d_model}, ffn {shape.ffn}, {shape.heads} heads) | {shape.params / 1e6:.0f} M "
                     f"| {shape.vocab:,} | {f'{allowed:,} (vmap)' if allowed else 'all'} | {r['size_mb']:.0f} | {r['load_s']:.2f} | {r['rss_mb']:.0f} "
                     f"| {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p50_ms'] / TOKENS:.1f} | {shape.bytes_per_step(allowed) / 1e6:.0f} | {r['runs']} |")
    return lines


def _ct2_version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-s", type=float, default=150, help="total time to aim for, building included (default 150)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated: " + ", ".join(SHAPES))
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "mt.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.budget_s)))
        return
    start = time.perf_counter()
    names = [n.strip() for n in args.shapes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}; known: {', '.join(SHAPES)}")
    for name in names:  # build (or find) every model first, so the measuring budget is known
        vmap_folder(SHAPES[name])
    rows = []
    for i, name in enumerate(names):
        left = max(args.budget_s - (time.perf_counter() - start), 10.0)
        rows += run_shape(name, left / (len(names) - i))
        print(f"  {name}: p50 {rows[-2]['p50_ms']:.0f} ms, with the vocabulary map {rows[-1]['p50_ms']:.0f} ms", file=sys.stderr)
    lines = table(rows)
    opus = next((r for r in rows if r["shape"] == "opus-mt" and not r["restricted"]), None)
    if opus:
        lines += ["", f"Bar: OPUS-MT shape <= 150 ms per 15-token sentence: p50 {opus['p50_ms']:.0f} ms here, "
                  f"{'PASS' if opus['p50_ms'] <= 150 else 'FAIL'} (this machine; see models/MT-MODELS.md for the Pi 5 estimate)"]
    lines += ["", f"total {time.perf_counter() - start:.0f} s"]
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# MT speed (python -m tests.bench.mt)\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
