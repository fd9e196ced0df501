"""Callbacks: objects that follow training (progress bars, log files) without touching the loop.

A plain function ``f(result)`` is called at the end of every epoch. A ``Callback`` may also hear about
the start of each epoch and, every ``step_every`` steps, about progress inside it; the trainer checks
one counter per step and calls nothing in between, so the hot loop stays lean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minidl.train.trainer import EpochResult


class Callback:
    """Override any of the hooks; ``step_every = 0`` means ``on_steps`` is never called."""

    step_every: int = 0

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        """Epoch ``epoch`` (from 1) starts and will take ``steps`` optimizer steps."""

    def on_steps(self, steps: int) -> None:
        """``steps`` more optimizer steps are done (called every ``step_every`` steps)."""

    def on_epoch_end(self, result: EpochResult) -> None:
        """An epoch is done and measured."""

    def __call__(self, result: EpochResult) -> None:
        self.on_epoch_end(result)
