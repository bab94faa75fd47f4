"""CTranslate2 Whisper → whisper.cpp ggml: the tensor mapping, the assets, the writer.

The file format itself (header, quantisation blocks, the tensors whisper.cpp expects, and the
checker that keeps bad files away from it) is in ``ggml.py``; this module fills that format from
a CTranslate2 ``model.bin`` (read by ``ct2.py``), the mel filters and the tiktoken vocabulary.
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from madoguchi.errors import MadoguchiError
from madoguchi.models.ct2 import Ct2FormatError, Ct2Model, read_ct2_model
from madoguchi.models.ggml import GGML_MAGIC, HPARAM_NAMES, N_FFT_BINS, QUANTS, encode_tensor, expected_tensors


class ModelConvertError(MadoguchiError, ValueError):
    """The CTranslate2 model or the Whisper assets could not be converted."""

    code = "model_convert"


def _asset_bytes(assets: Path | None, ct2_dir: Path, name: str) -> bytes:
    candidates: list[Path] = []
    roots = [assets] if assets is not None else []
    roots.append(ct2_dir)
    for root in roots:
        root = Path(root)
        if root.is_file() and tarfile.is_tarfile(root):
            with tarfile.open(root) as tar:
                for member in tar.getmembers():
                    if member.name.endswith(f"whisper/assets/{name}"):
                        f = tar.extractfile(member)
                        if f is not None:
                            return f.read()
            candidates.append(root / f"*/whisper/assets/{name}")
            continue
        for p in (root / name, root / "assets" / name, root / "whisper" / "assets" / name):
            candidates.append(p)
            if p.is_file():
                return p.read_bytes()
    if assets is None:
        try:  # an installed openai-whisper package carries the assets too
            import importlib.util

            spec = importlib.util.find_spec("whisper")
            if spec and spec.origin:
                p = Path(spec.origin).parent / "assets" / name
                if p.is_file():
                    return p.read_bytes()
        except (ImportError, ValueError):
            pass
    raise ModelConvertError(
        f"Whisper asset {name} not found (looked at {', '.join(map(str, candidates))}); pass "
        "assets= the openai-whisper sdist (`pip download --no-deps openai-whisper`) or its "
        "whisper/assets directory"
    )


def load_mel_filters(assets: Path | None, ct2_dir: Path, n_mels: int) -> np.ndarray:
    raw = _asset_bytes(assets, ct2_dir, "mel_filters.npz")
    with np.load(io.BytesIO(raw)) as npz:
        key = f"mel_{n_mels}"
        if key not in npz:
            raise ModelConvertError(f"mel_filters.npz has no {key} (has {', '.join(npz.files)})")
        filters = np.asarray(npz[key], dtype=np.float32)
    if filters.shape != (n_mels, N_FFT_BINS):
        raise ModelConvertError(f"mel filters {key} have shape {filters.shape}")
    return filters


def load_tiktoken_vocab(assets: Path | None, ct2_dir: Path, multilingual: bool) -> list[bytes]:
    name = "multilingual.tiktoken" if multilingual else "gpt2.tiktoken"
    raw = _asset_bytes(assets, ct2_dir, name)
    ranked: dict[int, bytes] = {}
    for line in raw.splitlines():
        if not line.strip():
            continue
        token, rank = line.split()
        ranked[int(rank)] = base64.b64decode(token)
    if sorted(ranked) != list(range(len(ranked))):
        raise ModelConvertError(f"{name}: token ranks are not 0..{len(ranked) - 1}")
    return [ranked[i] for i in range(len(ranked))]


# ---------------------------------------------------------------------------------------------
# conversion


def _scalar(model: Ct2Model, name: str) -> int:
    return int(model.raw(name).reshape(()))


def _count_layers(model: Ct2Model, side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in model:
        n += 1
    return n


def ct2_hparams(model: Ct2Model, quant: str) -> dict[str, int]:
    if not model.spec.startswith("Whisper"):
        raise ModelConvertError(f"{model.path}: spec {model.spec!r} is not a Whisper model")
    emb = model.raw("decoder/embeddings/weight")
    return {
        "n_vocab": emb.shape[0],
        "n_audio_ctx": model.raw("encoder/position_encodings/encodings").shape[0],
        "n_audio_state": model.raw("encoder/conv1/weight").shape[0],
        "n_audio_head": _scalar(model, "encoder/num_heads"),
        "n_audio_layer": _count_layers(model, "encoder"),
        "n_text_ctx": model.raw("decoder/position_encodings/encodings").shape[0],
        "n_text_state": emb.shape[1],
        "n_text_head": _scalar(model, "decoder/num_heads"),
        "n_text_layer": _count_layers(model, "decoder"),
        "n_mels": model.raw("encoder/conv1/weight").shape[1],
        "ftype": QUANTS[quant][1],
    }


def _iter_tensors(model: Ct2Model, hp: dict[str, int]) -> Iterator[tuple[str, np.ndarray]]:
    """(whisper.cpp name, float32 array in openai-whisper layout) for every tensor."""
    f = model.as_float32

    def linear(dst: str, src: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", f(f"{src}/weight")
        yield f"{dst}.bias", f(f"{src}/bias")

    def norm(dst: str, src: str) -> Iterator[tuple[str, np.ndarray]]:
        yield f"{dst}.weight", f(f"{src}/gamma")
        yield f"{dst}.bias", f(f"{src}/beta")

    def split(dst: str, src: str, parts: tuple[str, ...], n: int) -> Iterator[tuple[str, np.ndarray]]:
        w, b = f(f"{src}/weight"), f(f"{src}/bias")
        if w.shape != (n * len(parts), n):
            raise ModelConvertError(f"{model.path}: {src}/weight has shape {w.shape}")
        for i, part in enumerate(parts):
            yield f"{dst}.{part}.weight", w[i * n : (i + 1) * n]
            if part != "key":  # whisper has no key bias; CTranslate2 stores zeros there
                yield f"{dst}.{part}.bias", b[i * n : (i + 1) * n]

    def ffn(dst: str, src: str) -> Iterator[tuple[str, np.ndarray]]:
        yield from norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        yield from linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        yield from linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")

    a, t = hp["n_audio_state"], hp["n_text_state"]
    yield "encoder.positional_embedding", f("encoder/position_encodings/encodings")
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", f(f"encoder/{conv}/weight")
        yield f"encoder.{conv}.bias", f(f"encoder/{conv}/bias").reshape(-1, 1)
    for i in range(hp["n_audio_layer"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), a)
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from ffn(dst, src)
    yield from norm("encoder.ln_post", "encoder/layer_norm")

    yield "decoder.positional_embedding", f("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", f("decoder/embeddings/weight")
    for i in range(hp["n_text_layer"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        yield from split(f"{dst}.attn", f"{src}/self_attention/linear_0", ("query", "key", "value"), t)
        yield from linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        yield from norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        yield from linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        yield from split(f"{dst}.cross_attn", f"{src}/attention/linear_1", ("key", "value"), t)
        yield from linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        yield from ffn(dst, src)
    yield from norm("decoder.ln", "decoder/layer_norm")


def convert_ct2_to_ggml(
    ct2_dir: Path,
    out_file: Path,
    quant: str = "f16",
    assets: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_file`` (atomically) as a whisper.cpp model converted from ``ct2_dir``.

    ``quant``: "f16", "q8_0" or "q5_0" (also "f32") for the 2-D weight matrices; conv
    weights stay f16, biases/norms/positional embeddings f32. ``assets``: the openai-whisper
    sdist (.tar.gz) or a directory holding ``mel_filters.npz`` and ``multilingual.tiktoken``
    (default: look in ``ct2_dir``, then an installed ``whisper`` package). ``progress`` is
    called with (tensors written, total tensors).
    """
    ct2_dir, out_file = Path(ct2_dir), Path(out_file)
    if quant not in QUANTS:
        raise ModelConvertError(f"quant {quant!r} is not one of {', '.join(QUANTS)}")
    try:
        model = read_ct2_model(ct2_dir)
    except FileNotFoundError as exc:
        raise ModelConvertError(f"{ct2_dir}: no CTranslate2 model.bin ({exc.strerror})") from exc
    except Ct2FormatError as exc:
        raise ModelConvertError(str(exc)) from exc
    hp = ct2_hparams(model, quant)
    config_path = ct2_dir / "config.json"
    if config_path.is_file():  # sanity: config.json and the weights must agree
        config = json.loads(config_path.read_text())
        if "num_mel_bins" in config and config["num_mel_bins"] != hp["n_mels"]:
            raise ModelConvertError(f"{config_path}: num_mel_bins disagrees with the weights")
    filters = load_mel_filters(assets, ct2_dir, hp["n_mels"])
    tokens = load_tiktoken_vocab(assets, ct2_dir, hp["n_vocab"] >= 51865)
    expected = expected_tensors(hp)

    out_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out_file.name + ".", suffix=".tmp", dir=out_file.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(struct.pack("<I", GGML_MAGIC))
            out.write(struct.pack("<11i", *(hp[k] for k in HPARAM_NAMES)))
            out.write(struct.pack("<2i", *filters.shape))
            out.write(filters.astype("<f4").tobytes())
            out.write(struct.pack("<i", len(tokens)))
            for tok in tokens:
                out.write(struct.pack("<I", len(tok)))
                out.write(tok)
            written = 0
            for name, value in _iter_tensors(model, hp):
                if name not in expected:
                    raise ModelConvertError(f"internal: unexpected tensor {name}")
                shape, type_id = expected[name]
                if value.shape != shape:
                    raise ModelConvertError(
                        f"{model.path}: {name} has shape {value.shape}, whisper.cpp wants {shape}"
                    )
                encoded = name.encode()
                out.write(struct.pack("<3i", len(shape), len(encoded), type_id))
                out.write(struct.pack(f"<{len(shape)}i", *reversed(shape)))
                out.write(encoded)
                out.write(encode_tensor(value, type_id))
                written += 1
                if progress is not None:
                    progress(written, len(expected))
            if written != len(expected):
                raise ModelConvertError(f"internal: wrote {written} of {len(expected)} tensors")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, out_file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out_file


# ---------------------------------------------------------------------------------------------
# validation
