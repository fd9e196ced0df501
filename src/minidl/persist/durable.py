"""Crash-safe file writes: atomic replacement, durable appends, and trimming a CSV log back to an epoch.

``atomic_open(path)`` writes a temporary file next to ``path`` (``.NAME.<16 hex>.tmp``), flushes and fsyncs
it, ``os.replace``-s it onto ``path`` and fsyncs the folder. A crash at any moment leaves either the old
file or the new one, never a torn one; at worst a stray temporary file, which ``remove_temp_files``
deletes. If the body raises, the temporary file is removed and ``path`` is untouched.

Standard library only (no torch, no minidl), so a subprocess can load it quickly.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{16}\.tmp$")


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a folder; its rename is durable enough
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """``with atomic_open(path) as f: f.write(...)``: ``path`` gets all of it or none of it, durably.

    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8, newlines written as given).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    while True:  # O_EXCL: never reuse (or follow a link at) an existing name
        temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": ""} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path``'s content with ``data`` atomically and durably."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path``'s content with ``text`` (UTF-8) atomically and durably."""
    with atomic_open(path, "w") as f:
        f.write(text)


def remove_temp_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files a crashed ``atomic_open`` left in ``folder``; return those removed."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(Path(folder).iterdir()):
            if _TEMP_NAME.match(entry.name) and entry.is_file():
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
                    removed.append(entry)
    return removed


def append_line_durable(path: str | os.PathLike[str], line: str) -> None:
    """Append ``line`` (a newline is added if missing) and fsync, so it survives a crash once this returns.

    A crash *during* the call can leave a partial last line without its newline; ``truncate_to_epoch``
    drops such a line.
    """
    if not line.endswith("\n"):
        line += "\n"
    target = Path(path)
    created = not target.exists()
    with open(target, "a", encoding="utf-8", newline="") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    if created:
        fsync_dir(target.parent)


def truncate_to_epoch(path: str | os.PathLike[str], epoch: int, *, column: str = "epoch") -> int:
    """Keep the header and the complete rows of the CSV log ``path`` whose ``column`` is <= ``epoch``.

    Used on resume from a checkpoint taken after ``epoch``: rows written after it, and a torn last line
    from a crash mid-append, are dropped atomically, so the resumed run writes each epoch once. A row
    whose field count differs from the header's, or whose epoch is not an integer, counts as torn. A
    missing file stays missing. Returns the number of data rows kept. Assumes no quoted commas or
    newlines in the log (minidl's metrics have none).
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    lines = text.split("\n")
    complete = lines[:-1]  # lines[-1] follows the last newline: "" or a torn line
    if not complete:
        if text:  # only a torn header: nothing worth keeping
            atomic_write_text(target, "")
        return 0
    header = complete[0].split(",")
    if column not in header:
        raise ValueError(f"truncate_to_epoch: {target} has no {column!r} column (header: {complete[0]!r})")
    index = header.index(column)
    epochs = [(row, _epoch_of(row, index, len(header))) for row in complete[1:]]
    kept = [row for row, row_epoch in epochs if row_epoch is not None and row_epoch <= epoch]
    new_text = "".join(line + "\n" for line in [complete[0], *kept])
    if new_text != text:
        atomic_write_text(target, new_text)
    return len(kept)


def _epoch_of(row: str, index: int, n_fields: int) -> int | None:
    fields = row.split(",")
    if len(fields) != n_fields:
        return None
    try:
        return int(fields[index])
    except ValueError:
        return None
