"""Reader for CTranslate2 ``model.bin`` files, in pure NumPy (no ctranslate2 import needed).

Layout (little endian), binary versions 3..6 as written by ``ctranslate2.specs``:

- ``u32`` binary version
- (version >= 2) string: spec name, ``u32`` spec revision
- ``u32`` number of variables, then per variable: string name, ``u8`` rank, ``u32`` × rank
  dimensions, ``u8`` dtype id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), ``u32`` byte count,
  the raw bytes (C order)
- (version >= 3) ``u32`` number of aliases, then (alias, target) string pairs

A string is ``u16`` length including a trailing NUL, then the UTF-8 bytes and the NUL.
Weights quantized to int8/int16 come with a sibling ``<name>_scale`` variable (one float per
output row): the real value is ``q / scale``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16: kept as raw 16-bit patterns, widened by ``as_float32``
}
_DTYPE_NAMES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


class Ct2FormatError(ValueError):
    """The file is not a CTranslate2 model.bin this reader understands."""


@dataclass
class Ct2Model:
    """Variables of a CTranslate2 model, as NumPy views of the file's bytes."""

    path: Path
    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    dtypes: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def raw(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def as_float32(self, name: str) -> np.ndarray:
        """The variable as float32, de-quantizing int8/int16 with its ``_scale`` sibling."""
        real = self.aliases.get(name, name)
        value = self.variables[real]
        kind = self.dtypes[real]
        if kind == "bfloat16":
            return (value.astype(np.uint32) << 16).view(np.float32)
        if kind in ("int8", "int16"):
            scale_name = real + "_scale"
            if scale_name not in self:
                raise Ct2FormatError(f"{self.path}: {real} is {kind} but has no {scale_name}")
            scale = self.as_float32(scale_name)
            out = value.astype(np.float32)
            if scale.size == 1:
                return out / scale.reshape(())
            shape = (value.shape[0],) + (1,) * (value.ndim - 1)
            return out / scale.reshape(shape)
        return value.astype(np.float32)


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse ``model.bin`` (or a directory holding it); data arrays are memory-mapped."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    mv = memoryview(buf)
    pos = 0

    def need(n: int) -> None:
        if pos + n > len(buf):
            raise Ct2FormatError(f"{path}: truncated at byte {pos} (wanted {n} more bytes)")

    def u(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        need(size)
        (val,) = struct.unpack_from(fmt, mv, pos)
        pos += size
        return val

    def string() -> str:
        nonlocal pos
        n = u("<H")
        need(n)
        raw = bytes(mv[pos : pos + n])
        pos += n
        return raw.rstrip(b"\0").decode("utf-8")

    version = u("<I")
    if not 1 <= version <= 6:
        raise Ct2FormatError(f"{path}: unsupported CTranslate2 binary version {version}")
    spec, revision = "", 1
    if version >= 2:
        spec = string()
        revision = u("<I")
    model = Ct2Model(path=path, version=version, spec=spec, revision=revision)
    for _ in range(u("<I")):
        name = string()
        rank = u("<B")
        shape = tuple(u("<I") for _ in range(rank))
        if version >= 4:
            type_id = u("<B")
            nbytes = u("<I")
        else:  # older files: element size then element count
            item = u("<B")
            count = u("<I")
            type_id = {4: 0, 1: 1, 2: 2}.get(item, -1)
            nbytes = item * count
        if type_id not in _DTYPES:
            raise Ct2FormatError(f"{path}: variable {name} has unknown dtype id {type_id}")
        dtype = _DTYPES[type_id]
        need(nbytes)
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != nbytes:
            raise Ct2FormatError(f"{path}: variable {name} has {nbytes} bytes for shape {shape}")
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=pos).reshape(shape)
        pos += nbytes
        model.variables[name] = arr
        model.dtypes[name] = _DTYPE_NAMES[type_id]
    if version >= 3 and pos < len(buf):
        for _ in range(u("<I")):
            alias = string()
            model.aliases[alias] = string()
    return model
