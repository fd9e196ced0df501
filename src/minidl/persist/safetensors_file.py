"""Reading a safetensors file safely: the bytes are checked here before the safetensors library sees them.

A safetensors file is ``u64 little-endian N`` + ``N`` bytes of UTF-8 JSON header + the tensor data. The
header maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets into the
data, contiguous, in order, covering it exactly) plus an optional ``"__metadata__"`` dict of strings.
Every way a file can fail that check becomes a ``CheckpointError`` naming the path; nothing is ever
unpickled, and a file in another format (a pickle, ``torch.save``'s zip) is named for what it looks like.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

import torch

from minidl.checks import is_int
from minidl.errors import CheckpointError

MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit
ITEM_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip

_OTHER_FORMATS = (  # (magic bytes, what the file looks like)
    (b"PK\x03\x04", "a zip archive (torch.save's format, which holds a pickle)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip file"),
)


def read_regular_file(path: Path, what: str = "checkpoint") -> bytes:
    """The bytes of ``path``, refusing anything but a regular file (a folder, a FIFO that would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CheckpointError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{what} {path}: is a folder, not a file") from None
    except OSError as error:
        raise CheckpointError(f"{what} {path}: cannot open: {error.strerror or error}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise CheckpointError(f"{what} {path}: is a folder, not a file")
        if not stat.S_ISREG(mode):
            raise CheckpointError(f"{what} {path}: is not a regular file")
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return f.read()
    except OSError as error:
        raise CheckpointError(f"{what} {path}: cannot read: {error.strerror or error}") from None
    finally:
        if fd >= 0:
            os.close(fd)


def looks_like(data: bytes) -> str | None:
    """A short description of a known non-safetensors format, or None."""
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        return "a pickle file (starts with 0x80)"
    for magic, description in _OTHER_FORMATS:
        if data.startswith(magic):
            return description
    return None


def parse_safetensors(
    data: bytes, path: Path, what: str = "checkpoint"
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Check ``data`` as a safetensors file; return its tensor entries and its ``__metadata__``.

    ``what`` names the file in errors ("checkpoint", "model"): ``model runs/x/model.safetensors: ...``.
    """

    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"{what} {path}: {problem}")

    if not data:
        raise fail("the file is empty")
    plausible = len(data) >= 9 and data[8:9] == b"{"  # a safetensors header is a JSON object
    other = looks_like(data)
    if other is not None and not plausible:
        raise fail(f"looks like {other}; minidl only loads safetensors {what}s and never unpickles")
    if len(data) < 8:
        raise fail(f"truncated: {len(data)} bytes, too short for the 8-byte header length of a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise fail(f"absurd safetensors header length {n} (over the 100 MB limit): not a safetensors file, or corrupt")
    if n > len(data) - 8:
        raise fail(f"safetensors header length {n} is more than the file's {len(data)} bytes: truncated or corrupt")
    if not plausible:
        raise fail("not a safetensors file (its header does not start with '{')")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise fail(f"the safetensors header is not valid UTF-8 JSON ({error})") from None
    if not isinstance(header, dict):
        raise fail("the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise fail("the safetensors __metadata__ is not a mapping of strings")
    spans = []
    for name, entry in header.items():
        spans.append((*_check_entry(name, entry, fail), name))
    position, size = 0, len(data) - 8 - n
    for begin, end, name in sorted(spans):
        if begin != position:
            raise fail(f"tensor {name!r} starts at data offset {begin}, expected {position} (a gap or an overlap)")
        position = end
    if position != size:
        raise fail(f"the tensors cover {position} bytes of data but the file holds {size}: truncated or corrupt")
    return header, metadata


def _check_entry(name: str, entry: Any, fail) -> tuple[int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise fail(f"tensor {name!r}: expected keys dtype, shape, data_offsets in the header, got {entry!r:.80}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in ITEM_SIZES:
        raise fail(f"tensor {name!r}: unsupported dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise fail(f"tensor {name!r}: invalid shape {shape!r:.80}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise fail(f"tensor {name!r}: invalid data_offsets {offsets!r:.80}")
    begin, end = offsets
    if end < begin or end - begin != math.prod(shape) * ITEM_SIZES[dtype]:
        raise fail(f"tensor {name!r}: data_offsets {offsets} do not fit shape {shape} of dtype {dtype}")
    return begin, end


def _is_count(value: Any) -> bool:
    return is_int(value) and value >= 0


def load_tensors(data: bytes, path: Path, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of checked safetensors ``data``, as fresh (writable, unshared) CPU tensors."""
    from safetensors.torch import load  # lazily: only checkpoints need it

    try:
        tensors = load(data)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # incl. the Rust library's PanicException, a BaseException
        raise CheckpointError(f"{what} {path}: the safetensors library refused it: {error}") from None
    return {name: tensor.clone() for name, tensor in tensors.items()}
