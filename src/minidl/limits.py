"""Bounds on what a user's file or value can make minidl do: read, allocate or print.

- ``short_repr(value)``: the ``repr`` an error message quotes, cut to a short prefix, so that a
  10^7-item list in a config gives a one-line error, not a 50 MB line;
- ``read_small_file(path, what, limit)``: the bytes of a regular file of at most ``limit`` bytes; a FIFO,
  a device (``/dev/zero``), a folder or a larger file is refused in one line, never waited on or read
  without end.

Standard library only, so any layer may import it.
"""

from __future__ import annotations

import os
import reprlib
import stat
from pathlib import Path
from typing import Any

from minidl.errors import ConfigError

QUOTE_CHARS = 80  # an error message quotes at most this many characters of a value
CONFIG_BYTES = 1 << 20  # a config of 1 MiB is ~20,000 lines of TOML: far more than any real one


class _ShortRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:  # repr of a 5000-digit int raises (and would be long): say its size instead
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_REPR = _ShortRepr()
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = _REPR.maxfrozenset = 8
_REPR.maxstring = _REPR.maxother = QUOTE_CHARS
_REPR.maxlevel = 3


def short_repr(value: Any, limit: int = QUOTE_CHARS) -> str:
    """``repr(value)`` cut to about ``limit`` characters (``...`` marks the cut); never builds a huge string."""
    text = _REPR.repr(value)  # bounded by construction: at most 8 items per level, 3 levels, short strings
    return text if len(text) <= limit else text[: max(limit - 3, 1)] + "..."


def clip_line(text: str, limit: int = 2000) -> str:
    """An error line cut to ``limit`` characters, saying how much was left out (the CLI's safety net)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def read_small_file(path: str | os.PathLike[str], what: str = "config file", limit: int = CONFIG_BYTES) -> bytes:
    """The bytes of ``path``: a regular file of at most ``limit`` bytes, else a ``ConfigError`` naming it.

    Opened with ``O_NONBLOCK`` (opening a FIFO with no writer would wait forever) and checked with
    ``fstat`` on that descriptor (no gap between the check and the read); at most ``limit + 1`` bytes
    are read, so a file that grows meanwhile is refused too.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot open the {what}: {error.strerror or error}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigError(f"{path}: is a folder, not a {what}")
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{path}: not a regular file (a pipe or a device is never read as a {what})")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 16, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise ConfigError(f"{path}: the {what} is larger than {limit} bytes; refusing to read it")
        return b"".join(chunks)
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the {what}: {error.strerror or error}") from None
    finally:
        os.close(fd)
