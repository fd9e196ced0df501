"""Check that bytes or a file are a real PNG image, by its signature and its IHDR chunk."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes | Path) -> tuple[int, int]:
    """(width, height) of a PNG; fails the test if the signature or the IHDR chunk (and its CRC) is wrong."""
    data = Path(data).read_bytes() if isinstance(data, Path) else data
    assert data[:8] == SIGNATURE, "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    (crc,) = struct.unpack(">I", data[29:33])
    assert zlib.crc32(data[12:29]) == crc, "IHDR checksum mismatch"
    assert data.endswith(b"IEND\xaeB`\x82"), "no IEND chunk: truncated"
    return struct.unpack(">II", data[16:24])


def assert_sensible_png(data: bytes | Path, min_width: int = 400, min_height: int = 300) -> None:
    width, height = png_size(data)
    assert min_width <= width <= 4000 and min_height <= height <= 4000, (width, height)
