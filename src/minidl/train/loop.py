"""Loop: where training stands, kept between ``Trainer.run`` calls (the loader, the epoch, the step)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from minidl.checks import is_int
from minidl.data.loader import DataLoader
from minidl.errors import ConfigError
from minidl.train.evaluation import Evaluation


@dataclass
class Loop:
    """``epoch`` (from 1) is the epoch in progress, or the next one between epochs; ``step`` the steps done in it.

    ``loss_sum`` is the weighted sum of the epoch's batch losses so far (a tensor: no sync per step);
    ``loader_state`` is the loader's RNG state from before the epoch's permutation (what a mid-epoch
    checkpoint saves, so that a resumed run draws the same permutation and skips the steps done).
    """

    loader: DataLoader
    x: torch.Tensor
    y: torch.Tensor
    validation_data: tuple[torch.Tensor, torch.Tensor] | None
    epochs: int | None  # None: no end
    epoch: int = 1
    step: int = 0
    loss_sum: torch.Tensor | None = None
    loader_state: torch.Tensor | None = None
    lr: float = 0.0  # the learning rate the epoch in progress started with
    began: float = 0.0  # time.perf_counter() when the epoch began
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None  # None between epochs
    evaluations: dict[str, Evaluation | None] = field(default_factory=dict)  # the last epoch's, by split
    ended: bool = False  # on_fit_end has been called

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    @property
    def global_step(self) -> int:
        """Optimizer steps done since the run began (a resumed run counts those before the checkpoint too)."""
        return (self.epoch - 1) * len(self.loader) + self.step

    @property
    def epochs_done(self) -> int:
        return self.epoch - 1

    @property
    def finished(self) -> bool:
        return self.epochs is not None and self.epoch > self.epochs

    @property
    def in_epoch(self) -> bool:
        """True between an epoch's begin and its end (steps may still be 0 right after it began)."""
        return self.batches is not None


def check_run(loop: Loop | None, steps: int | None, epochs: int | None) -> Loop:
    """The loop ``Trainer.run(steps, epochs)`` advances; a ``ConfigError`` for arguments it cannot take."""
    if loop is None:
        raise ConfigError("Trainer.run: call start(x, y, batch_size=...) first")
    for name, value in (("steps", steps), ("epochs", epochs)):
        if value is not None and (not is_int(value) or value < 0):
            raise ConfigError(f"Trainer.run: {name} must be an integer >= 0, got {value!r}")
    if steps is not None and epochs is not None:
        raise ConfigError("Trainer.run: give steps or epochs, not both")
    return loop


def run_compiled_epoch(trainer: Any, n: int) -> bool:
    """``Trainer(compile=True)``: the epoch in progress as one compiled loop (``minidl.train.compiled``), if the
    ``n`` steps asked are all of it and no callback wants a step event inside it; False: run them eagerly."""
    if not (n == trainer.loop.steps_per_epoch == n + trainer.loop.step and trainer._due > n):
        return False
    if getattr(trainer, "_compiled", None) is None:  # kept for the trainer's life: its cache of compiled epochs
        from minidl.train.compiled import CompiledEpochs  # torch.compile's machinery only when asked for

        trainer._compiled = CompiledEpochs()
    return trainer._compiled.run_epoch(trainer)
