"""Training progress on the console: a tqdm bar per epoch on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from minidl.train.callbacks import Callback
from minidl.train.evaluation import EpochResult


def epoch_summary(r: EpochResult) -> str:
    """``loss 0.024346  acc 0.9780  val_loss 0.030000  val_acc 0.9700``; absent values are left out."""
    parts = [f"loss {r.loss:.6f}"]
    if r.accuracy is not None:
        parts.append(f"acc {r.accuracy:.4f}")
    if r.val_loss is not None:
        parts.append(f"val_loss {r.val_loss:.6f}")
    if r.val_accuracy is not None:
        parts.append(f"val_acc {r.val_accuracy:.4f}")
    return "  ".join(parts)


class PlainProgress(Callback):
    """``epoch  7/50  loss ...  acc ...  (0.15s)``, flushed, one line per epoch (logs, pipes, CI)."""

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        self.epochs, self.width = epochs, len(str(epochs))
        self.stream = stream

    def on_epoch_end(self, r: EpochResult) -> None:
        stream = self.stream or sys.stdout
        print(f"epoch {r.epoch:>{self.width}}/{self.epochs}  {epoch_summary(r)}  ({r.seconds:.2f}s)", file=stream)
        stream.flush()


class BarProgress(Callback):
    """A tqdm bar while each epoch runs (advanced every ``step_every`` steps), replaced at the end of the
    epoch by the same line ``PlainProgress`` prints, so the finished epochs read like a log."""

    def __init__(self, epochs: int, stream: TextIO | None = None, updates_per_epoch: int = 50) -> None:
        self.line = PlainProgress(epochs, stream)
        self.epochs, self.width = epochs, len(str(epochs))
        self.stream, self.updates = stream, updates_per_epoch
        self.bar = None

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        from tqdm import tqdm

        self.step_every = max(1, steps // self.updates)
        size = shutil.get_terminal_size((100, 24))
        self.bar = tqdm(
            total=steps,
            desc=f"epoch {epoch:>{self.width}}/{self.epochs}",
            unit="step",
            file=self.stream or sys.stdout,
            leave=False,
            # a terminal that reports a 0×0 size (a bare pty) would hide the bar; fall back to 100×24
            ncols=min(size.columns, 120),
            nrows=size.lines,
        )

    def on_steps(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def on_epoch_end(self, r: EpochResult) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.line.on_epoch_end(r)


def progress_for(epochs: int, *, quiet: bool, stream: TextIO | None = None) -> list[Callback]:
    """No progress when quiet; a bar when the stream is a terminal; plain lines otherwise."""
    if quiet:
        return []
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    return [BarProgress(epochs, stream) if isatty is not None and isatty() else PlainProgress(epochs, stream)]
