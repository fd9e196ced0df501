"""PRIVATE STAND-IN, to be deleted: the step-by-step trainer interface of issue 13 (PROTOCOL.md).

Until ``minidl.train.Trainer`` has ``start``/``run``, the playground steps a ``minidl.train.Trainer`` with
this wrapper, which repeats what ``Trainer.fit`` does, batch for batch: the same ``DataLoader`` (seeded
shuffling), the trainer's own ``_train_step``, and at each epoch's end the same evaluation, scheduler step
and ``EpochResult``. So ``fit`` for E epochs and ``start`` + ``run(epochs=E)`` give the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from minidl.data.loader import DataLoader
from minidl.train.schedule import step_scheduler
from minidl.train.trainer import EpochResult
from minidl.train.trainer import Trainer as _FitTrainer


@dataclass
class Loop:
    epoch: int = 1  # the epoch being trained (1-based, as fit numbers them)
    step: int = 0  # steps done in this epoch
    steps_per_epoch: int = 0
    global_step: int = 0


class Trainer(_FitTrainer):
    """``Trainer(model, loss_fn, optimizer, task=..., scheduler=...)`` with ``start`` and ``run``."""

    def start(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        epochs: int | None = None,
    ) -> None:
        self._x, self._y, self._val, self._epochs = x, y, validation_data, epochs
        self._loader = DataLoader(x, self._targets(y, x.dtype), batch_size, shuffle=shuffle, seed=seed)
        self.loop = Loop(steps_per_epoch=len(self._loader))
        self._batches: Any = None
        self._total = torch.zeros((), dtype=x.dtype)
        self.stop_training = False

    def run(self, steps: int | None = None, epochs: int | None = None) -> int:
        """Advance ``steps`` optimizer steps, or to the end of ``epochs`` more epochs; the steps done."""
        loop, done = self.loop, 0
        target_epoch = loop.epoch + epochs - 1 if epochs is not None else None
        self.model.train()
        while not self.stop_training:
            if self._epochs is not None and loop.epoch > self._epochs:
                break
            if steps is not None and done >= steps:
                break
            if target_epoch is not None and loop.epoch > target_epoch:
                break
            if self._batches is None:
                self._batches = iter(self._loader)
                self._total.zero_()
            xb, tb = next(self._batches)
            value, weight = self._train_step(xb, tb)
            self._total.add_(value, alpha=weight)
            loop.step += 1
            loop.global_step += 1
            done += 1
            if loop.step == loop.steps_per_epoch:
                self._end_epoch()
        return done

    def _end_epoch(self) -> None:
        loop = self.loop
        lr = self.optimizer.param_groups[0]["lr"]  # what this epoch used, before the scheduler steps
        train = self.evaluate(self._x, self._y)
        val = self.evaluate(*self._val) if self._val is not None else None
        step_scheduler(self.scheduler, val.loss if val else train.loss)
        result = EpochResult(
            epoch=loop.epoch,
            loss=self._epoch_loss(self._total, len(self._x)),
            accuracy=train.accuracy,
            lr=lr,
            seconds=0.0,
            val_loss=val.loss if val else None,
            val_accuracy=val.accuracy if val else None,
        )
        self.history.append(result)
        for callback in self.callbacks:
            callback(result)
        self._batches = None
        loop.epoch += 1
        loop.step = 0
        self.model.train()
