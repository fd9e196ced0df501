"""A run's per-epoch logs, metrics.csv and timings.csv: one durable row per epoch, and their repair on resume.

metrics.csv holds only what training computes, so an interrupted and resumed run writes the same bytes;
wall-clock time goes to timings.csv. Each row is a function of the epoch's ``EpochResult``, and every
checkpoint holds the run's history (those records, exactly), so ``restore_logs`` can bring the logs back
to exactly the checkpoint's epochs: rows of later epochs and a torn last line (a run killed after writing
them) are dropped as a matter of course; a log that was deleted, truncated or edited is rebuilt from the
history, written atomically, and the caller says so.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from minidl.errors import CheckpointError
from minidl.persist.durable import append_line_durable, atomic_write_text, truncate_to_epoch
from minidl.train.callbacks import Callback
from minidl.train.trainer import EpochResult


class RunFolder(Protocol):
    """What the logs use of ``run_dir.RunDir`` (which imports this module): a file's path in the folder."""

    def file(self, name: str) -> Path: ...


METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
TIMINGS_COLUMNS = ("epoch", "seconds")
LOGS = ("metrics.csv", "timings.csv")


def _cell(value: float | int | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def metrics_row(result: EpochResult) -> list[str]:
    return [
        str(result.epoch),
        _cell(result.loss, ".8g"),
        _cell(result.accuracy, ".6f"),
        _cell(result.val_loss, ".8g"),
        _cell(result.val_accuracy, ".6f"),
        _cell(result.lr, ".8g"),
    ]


def timings_row(result: EpochResult) -> list[str]:
    return [str(result.epoch), _cell(result.seconds, ".4f")]


FORMATS: dict[str, tuple[tuple[str, ...], Callable[[EpochResult], list[str]]]] = {
    "metrics.csv": (METRICS_COLUMNS, metrics_row),
    "timings.csv": (TIMINGS_COLUMNS, timings_row),
}


def append_row(path: Path, columns: tuple[str, ...], row: list[str]) -> None:
    """Append one CSV row durably, after the header line if the file is new (or was trimmed to nothing)."""
    if not path.exists() or path.stat().st_size == 0:
        append_line_durable(path, ",".join(columns))
    append_line_durable(path, ",".join(row))


class MetricsLog(Callback):
    """After every epoch, appends its row to ``metrics.csv`` and its wall time to ``timings.csv``, durably."""

    def __init__(self, run_dir: RunFolder, filename: str = "metrics.csv", timings: str = "timings.csv") -> None:
        self.run_dir, self.filename, self.timings = run_dir, filename, timings

    def on_epoch_end(self, result: EpochResult) -> None:
        append_row(self.run_dir.file(self.filename), METRICS_COLUMNS, metrics_row(result))
        append_row(self.run_dir.file(self.timings), TIMINGS_COLUMNS, timings_row(result))


def log_text(name: str, history: Sequence[EpochResult]) -> str:
    """The whole text of log ``name`` for ``history``: what the run wrote, row by row."""
    columns, row = FORMATS[name]
    return "".join(",".join(line) + "\n" for line in [list(columns), *map(row, history)])


def restore_logs(run_dir: RunFolder, history: Sequence[EpochResult] | None, epochs_done: int) -> list[str]:
    """Bring each log to exactly epochs ``1..epochs_done``; return the names of those rebuilt from ``history``.

    A log that begins with the history's rows keeps them and loses the rest (rows after the checkpoint, a
    torn line); any other is rebuilt (atomically). Without a history (a checkpoint of an older minidl) the
    rows of later epochs are dropped as before, and a log that cannot be read that way is an error.
    """
    if history is None:
        for name in LOGS:
            try:
                truncate_to_epoch(run_dir.file(name), epochs_done)
            except ValueError:
                raise CheckpointError(
                    f"{run_dir.file(name)} has no epoch column, and the checkpoint (of an older minidl) holds no "
                    "history to rebuild it from; move the file away to resume"
                ) from None
        return []
    rebuilt = []
    for name in LOGS:
        path = run_dir.file(name)
        current = _read_log(path)
        if current is None and epochs_done == 0:
            continue
        expected = log_text(name, history)
        if current is not None and current.startswith(expected):
            if current != expected:  # rows after the checkpoint, or a torn last line: a run that was stopped
                atomic_write_text(path, expected)
            continue
        atomic_write_text(path, expected)
        rebuilt.append(name)
    return rebuilt


def _read_log(path: Path) -> str | None:
    """The log's text, or None if it is missing or not a readable regular text file (never a FIFO)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
