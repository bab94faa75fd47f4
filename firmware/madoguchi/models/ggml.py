"""whisper.cpp's ggml file format: quantisation blocks, the tensors it expects, and a checker.

The box ships Whisper as CTranslate2 (faster-whisper) weights; whisper.cpp wants its own
"ggml" container, which ``whisper_convert.py`` writes with NumPy only:

ggml file (little endian, no padding anywhere):

- ``u32`` magic ``0x67676d6c`` ("ggml")
- 11 × ``i32`` hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
  n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype. ``ftype`` is the ggml
  file type of the big matrices (1 = f16, 7 = q8_0, 8 = q5_0) plus 1000 × the quantisation
  format version (2) for quantised files.
- mel filters: ``i32`` n_mel, ``i32`` n_fft (201), then n_mel × n_fft ``f32``
- vocabulary: ``i32`` count, then per token ``u32`` length and the raw bytes, in rank order
  (the GPT-2 byte-level BPE tokens of ``multilingual.tiktoken``; whisper.cpp appends the
  special tokens itself)
- tensors until end of file: ``i32`` n_dims, ``i32`` name length, ``i32`` ggml type
  (0 f32, 1 f16, 6 q5_0, 8 q8_0), n_dims × ``i32`` extents fastest-varying first (the
  reverse of NumPy's shape), the name, then the data.

whisper.cpp checks every tensor's name, extents and byte size against what it expects for the
hparams; a wrong *type* for a tensor is a load failure, and conv weights that are not f16
make it abort the whole process, so :func:`check_ggml_file` validates all of that first.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from madoguchi.errors import MadoguchiError

GGML_MAGIC = 0x67676D6C
QNT_VERSION = 2
QNT_VERSION_FACTOR = 1000

# ggml tensor types: id -> (name, block size in elements, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("f32", 1, 4),
    1: ("f16", 1, 2),
    6: ("q5_0", 32, 22),
    8: ("q8_0", 32, 34),
}
# quant name -> (tensor type of the big matrices, hparams ftype)
QUANTS: dict[str, tuple[int, int]] = {
    "f32": (0, 0),
    "f16": (1, 1),
    "q8_0": (8, 7 + QNT_VERSION * QNT_VERSION_FACTOR),
    "q5_0": (6, 8 + QNT_VERSION * QNT_VERSION_FACTOR),
}
# ggml file type (ftype % 1000) -> tensor type of the big matrices
_FTYPE_TO_TYPE = {0: 0, 1: 1, 7: 8, 8: 6}

HPARAM_NAMES = (
    "n_vocab",
    "n_audio_ctx",
    "n_audio_state",
    "n_audio_head",
    "n_audio_layer",
    "n_text_ctx",
    "n_text_state",
    "n_text_head",
    "n_text_layer",
    "n_mels",
    "ftype",
)
N_FFT_BINS = 201  # n_fft 400 / 2 + 1
FIX = (
    "re-create it with madoguchi.models.ggml.convert_ct2_to_ggml from the CTranslate2 model "
    "(or delete it so the model cache rebuilds it)"
)


class GgmlFormatError(MadoguchiError, ValueError):
    """A ggml model file is damaged or not one whisper.cpp can load."""

    code = "model_corrupt"

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: not a usable whisper.cpp model: {problem}; {FIX}")


@dataclass(frozen=True)
class GgmlTensorInfo:
    name: str
    ggml_type: str
    shape: tuple[int, ...]  # NumPy order (slowest first)
    offset: int  # of the data in the file
    nbytes: int


@dataclass(frozen=True)
class GgmlInfo:
    path: Path
    hparams: dict[str, int]
    quant: str  # "f32", "f16", "q8_0", "q5_0"
    n_mels: int
    n_tokens: int  # vocabulary entries stored in the file (specials are added by whisper.cpp)
    file_size: int
    tensors: dict[str, GgmlTensorInfo] = field(repr=False)

    @property
    def multilingual(self) -> bool:
        return self.hparams["n_vocab"] >= 51865


# ---------------------------------------------------------------------------------------------
# quantisation (NumPy versions of ggml's reference row quantisers)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def quantize_q8_0(x: np.ndarray) -> bytes:
    """Blocks of 32: f16 scale d = max|x|/127, then 32 × int8 round(x/d)."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    q = _round_half_away(blocks * inv[:, None]).clip(-127, 127).astype(np.int8)
    out = np.empty(len(blocks), dtype=np.dtype([("d", "<f2"), ("qs", "i1", 32)]))
    out["d"] = d.astype(np.float16)
    out["qs"] = q
    return out.tobytes()


def quantize_q5_0(x: np.ndarray) -> bytes:
    """Blocks of 32: f16 scale d = (signed value of max |x|)/-16, 5-bit codes q = x/d + 16.

    Layout: d, then 32 high bits as one u32 (bit j = element j), then 16 bytes of nibbles
    (low nibble = element j, high nibble = element j + 16). Value = (q - 16) × d.
    """
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    idx = np.abs(blocks).argmax(axis=1)
    peak = blocks[np.arange(len(blocks)), idx]
    d = peak / -16.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.floor(blocks * inv[:, None] + 16.5).clip(0, 31).astype(np.uint8)
    low = q & 0x0F
    nibbles = low[:, :16] | (low[:, 16:] << 4)
    high = ((q >> 4) & 1).astype(np.uint32)
    qh = (high << np.arange(32, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    out = np.empty(len(blocks), dtype=np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)]))
    out["d"] = d.astype(np.float16)
    out["qh"] = qh
    out["qs"] = nibbles
    return out.tobytes()


def dequantize(data: bytes, ggml_type: str, count: int) -> np.ndarray:
    """Inverse of the quantisers (for tests and error estimates)."""
    if ggml_type == "f32":
        return np.frombuffer(data, "<f4", count).copy()
    if ggml_type == "f16":
        return np.frombuffer(data, "<f2", count).astype(np.float32)
    if ggml_type == "q8_0":
        b = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "i1", 32)]), count // 32)
        return (b["qs"].astype(np.float32) * b["d"].astype(np.float32)[:, None]).ravel()
    if ggml_type == "q5_0":
        b = np.frombuffer(data, np.dtype([("d", "<f2"), ("qh", "<u4"), ("qs", "u1", 16)]), count // 32)
        low = np.concatenate([b["qs"] & 0x0F, b["qs"] >> 4], axis=1).astype(np.int32)
        high = (b["qh"][:, None] >> np.arange(32, dtype=np.uint32)) & 1
        q = low | (high.astype(np.int32) << 4)
        return ((q - 16).astype(np.float32) * b["d"].astype(np.float32)[:, None]).ravel()
    raise ValueError(f"unknown ggml type {ggml_type!r}")


def encode_tensor(x: np.ndarray, type_id: int) -> bytes:
    if type_id == 0:
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if type_id == 1:
        return np.ascontiguousarray(x, dtype="<f2").tobytes()
    if type_id == 8:
        return quantize_q8_0(x)
    if type_id == 6:
        return quantize_q5_0(x)
    raise ValueError(type_id)


# ---------------------------------------------------------------------------------------------
# what whisper.cpp expects


def expected_tensors(hp: dict[str, int]) -> dict[str, tuple[tuple[int, ...], int]]:
    """Tensor name -> (NumPy shape, ggml type id) exactly as whisper.cpp's loader wants them.

    Big matrices use the file's type; conv weights are f16 (f32 in an f32 file); biases,
    norms and positional embeddings are f32. Attention keys have no bias.
    """
    wtype = _FTYPE_TO_TYPE[hp["ftype"] % QNT_VERSION_FACTOR]
    ctype = 0 if wtype == 0 else 1
    a, t = hp["n_audio_state"], hp["n_text_state"]
    out: dict[str, tuple[tuple[int, ...], int]] = {
        "encoder.positional_embedding": ((hp["n_audio_ctx"], a), 0),
        "encoder.conv1.weight": ((a, hp["n_mels"], 3), ctype),
        "encoder.conv1.bias": ((a, 1), 0),
        "encoder.conv2.weight": ((a, a, 3), ctype),
        "encoder.conv2.bias": ((a, 1), 0),
        "encoder.ln_post.weight": ((a,), 0),
        "encoder.ln_post.bias": ((a,), 0),
        "decoder.positional_embedding": ((hp["n_text_ctx"], t), 0),
        "decoder.token_embedding.weight": ((hp["n_vocab"], t), wtype),
        "decoder.ln.weight": ((t,), 0),
        "decoder.ln.bias": ((t,), 0),
    }

    def block(prefix: str, n: int, attns: tuple[str, ...]) -> None:
        out[f"{prefix}.mlp_ln.weight"] = ((n,), 0)
        out[f"{prefix}.mlp_ln.bias"] = ((n,), 0)
        out[f"{prefix}.mlp.0.weight"] = ((4 * n, n), wtype)
        out[f"{prefix}.mlp.0.bias"] = ((4 * n,), 0)
        out[f"{prefix}.mlp.2.weight"] = ((n, 4 * n), wtype)
        out[f"{prefix}.mlp.2.bias"] = ((n,), 0)
        for att in attns:
            out[f"{prefix}.{att}_ln.weight"] = ((n,), 0)
            out[f"{prefix}.{att}_ln.bias"] = ((n,), 0)
            for part in ("query", "key", "value", "out"):
                out[f"{prefix}.{att}.{part}.weight"] = ((n, n), wtype)
                if part != "key":
                    out[f"{prefix}.{att}.{part}.bias"] = ((n,), 0)

    for i in range(hp["n_audio_layer"]):
        block(f"encoder.blocks.{i}", a, ("attn",))
    for i in range(hp["n_text_layer"]):
        block(f"decoder.blocks.{i}", t, ("attn", "cross_attn"))
    return out


def _nbytes(shape: tuple[int, ...], type_id: int) -> int:
    _, blck, size = GGML_TYPES[type_id]
    count = int(np.prod(shape, dtype=np.int64))
    return count // blck * size


# ---------------------------------------------------------------------------------------------
# assets: mel filters and the tiktoken vocabulary


def check_ggml_file(path: Path) -> GgmlInfo:
    """Validate a whisper.cpp model file without handing it to whisper.cpp.

    Checks the magic, hparams, mel filters, vocabulary, that every tensor whisper.cpp needs is
    present exactly once with the shape and type it requires (conv weights f16 …), and that
    the file ends exactly after the last tensor. Raises :class:`GgmlFormatError` naming the file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise GgmlFormatError(path, f"cannot be read ({exc.strerror or exc})") from exc
    with fh:
        if size < 4 + 44 + 8:
            raise GgmlFormatError(path, f"only {size} bytes long (truncated or empty)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _check(path, mm, size)


def _check(path: Path, mm: mmap.mmap, size: int) -> GgmlInfo:
    pos = 0

    def take(fmt: str, what: str) -> tuple:
        nonlocal pos
        n = struct.calcsize(fmt)
        if pos + n > size:
            raise GgmlFormatError(path, f"truncated in {what} at byte {pos} (file is {size} bytes)")
        vals = struct.unpack_from(fmt, mm, pos)
        pos += n
        return vals

    (magic,) = take("<I", "magic")
    if magic != GGML_MAGIC:
        raise GgmlFormatError(path, f"bad magic 0x{magic:08x} (want 0x{GGML_MAGIC:08x} 'ggml')")
    hp = dict(zip(HPARAM_NAMES, take("<11i", "hparams")))
    for key in HPARAM_NAMES[:-1]:
        if not 0 < hp[key] <= 1_000_000:
            raise GgmlFormatError(path, f"hparam {key} = {hp[key]} is out of range")
    ftype = hp["ftype"] % QNT_VERSION_FACTOR
    if hp["ftype"] < 0 or ftype not in _FTYPE_TO_TYPE:
        raise GgmlFormatError(path, f"ftype {hp['ftype']} is not f32/f16/q8_0/q5_0")
    if hp["n_audio_state"] != hp["n_text_state"]:
        raise GgmlFormatError(path, "n_audio_state differs from n_text_state")
    for side in ("audio", "text"):
        if hp[f"n_{side}_state"] % hp[f"n_{side}_head"]:
            raise GgmlFormatError(path, f"n_{side}_state is not a multiple of n_{side}_head")
    quant = GGML_TYPES[_FTYPE_TO_TYPE[ftype]][0]

    n_mel, n_fft = take("<2i", "mel filter header")
    if n_mel != hp["n_mels"] or n_fft != N_FFT_BINS:
        raise GgmlFormatError(
            path, f"mel filters are {n_mel}x{n_fft}, want {hp['n_mels']}x{N_FFT_BINS}"
        )
    take(f"<{n_mel * n_fft * 4}x", "mel filters")

    (n_tokens,) = take("<i", "vocabulary size")
    if not 0 < n_tokens <= hp["n_vocab"]:
        raise GgmlFormatError(path, f"vocabulary has {n_tokens} tokens for n_vocab {hp['n_vocab']}")
    for i in range(n_tokens):
        (length,) = take("<I", f"vocabulary token {i}")
        if length > 1024:
            raise GgmlFormatError(path, f"vocabulary token {i} claims {length} bytes")
        if pos + length > size:
            raise GgmlFormatError(path, f"truncated in vocabulary token {i}")
        pos += length

    expected = expected_tensors(hp)
    tensors: dict[str, GgmlTensorInfo] = {}
    while pos < size:
        n_dims, name_len, type_id = take("<3i", f"tensor header #{len(tensors)}")
        if not 1 <= n_dims <= 4 or not 0 < name_len <= 256 or type_id not in GGML_TYPES:
            raise GgmlFormatError(
                path,
                f"tensor header #{len(tensors)} at byte {pos - 12} is garbage "
                f"(n_dims {n_dims}, name length {name_len}, type {type_id})",
            )
        dims = take(f"<{n_dims}i", "tensor extents")
        (raw_name,) = take(f"<{name_len}s", "tensor name")
        try:
            name = raw_name.decode()
        except UnicodeDecodeError:
            raise GgmlFormatError(path, f"tensor name {raw_name!r} is not UTF-8") from None
        shape = tuple(reversed(dims))
        if name not in expected:
            raise GgmlFormatError(path, f"unknown tensor {name!r}")
        if name in tensors:
            raise GgmlFormatError(path, f"tensor {name!r} appears twice")
        want_shape, want_type = expected[name]
        if shape != want_shape:
            raise GgmlFormatError(path, f"tensor {name!r} has shape {shape}, want {want_shape}")
        if type_id != want_type:
            raise GgmlFormatError(
                path,
                f"tensor {name!r} is {GGML_TYPES[type_id][0]}, whisper.cpp needs "
                f"{GGML_TYPES[want_type][0]} for it",
            )
        nbytes = _nbytes(shape, type_id)
        if pos + nbytes > size:
            raise GgmlFormatError(
                path,
                f"truncated in tensor {name!r}: needs {nbytes} bytes at {pos}, file is {size} bytes",
            )
        tensors[name] = GgmlTensorInfo(name, GGML_TYPES[type_id][0], shape, pos, nbytes)
        pos += nbytes
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise GgmlFormatError(
            path, f"{len(missing)} tensors missing (first: {missing[0]}) — truncated file?"
        )
    return GgmlInfo(
        path=path,
        hparams=hp,
        quant=quant,
        n_mels=hp["n_mels"],
        n_tokens=n_tokens,
        file_size=size,
        tensors=tensors,
    )
