"""DistributedTrainer: ``Trainer.fit`` where every global batch is shared among the ranks.

``batch_size`` is the global batch size. Every rank draws the same permutation (the loader's own seeded
generator), takes rows ``shard_bounds(len(batch), world_size, rank)`` of each global batch, and the
gradients are all-reduced once per step (``all_reduce_gradients``), so the run is the same training for
any number of processes, up to floating-point summation order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from minidl.data.loader import DataLoader
from minidl.distributed import DistContext, all_reduce_gradients, all_reduce_sum, broadcast_parameters, shard_bounds
from minidl.errors import ConfigError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.optim.optimizer import Optimizer
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Trainer


class DistributedTrainer(Trainer):
    """``DistributedTrainer(model, loss, optimizer, context=init_from_env()).fit(x, y, ...)``.

    Every rank passes the whole ``(x, y)``. Parameters are broadcast from rank 0 before the first step,
    so ranks need not share a seed. Epoch losses are reduced over the ranks; evaluation runs on the whole
    set on every rank (their parameters are identical), so every rank sees the same ``EpochResult`` and
    callbacks may make decisions; wrap printing or file-writing callbacks with ``context.main_only``.
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Loss,
        optimizer: Optimizer,
        *,
        context: DistContext | None = None,
        task: Task | None = None,
        callbacks: Sequence[Callable[[EpochResult], None]] = (),
    ) -> None:
        super().__init__(model, loss_fn, optimizer, task=task, callbacks=callbacks)
        if loss_fn.reduction not in ("mean", "sum"):
            raise ConfigError(f"{loss_fn._name()}: data-parallel training needs reduction 'mean' or 'sum'")
        self.context = context if context is not None else DistContext()
        self._synced = False

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        epochs: int,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> list[EpochResult]:
        loader = DataLoader(x, self._targets(y, x.dtype), batch_size, shuffle=shuffle, seed=seed)
        if not self._synced:
            broadcast_parameters(self.model)
            self._synced = True
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            self.model.train()
            total = torch.zeros((), dtype=x.dtype, device=x.device)  # Σ per-sample loss over this rank's rows
            for xb, tb in loader:
                value, weight = self._train_step(xb, tb)
                total.add_(value, alpha=weight)
            train = self.evaluate(x, y)
            val = self.evaluate(*validation_data) if validation_data is not None else None
            result = EpochResult(
                epoch=epoch,
                loss=all_reduce_sum(total).item() / len(x),
                accuracy=train.accuracy,
                lr=self.optimizer.param_groups[0]["lr"],
                seconds=time.perf_counter() - start,
                val_loss=val.loss if val else None,
                val_accuracy=val.accuracy if val else None,
            )
            self.history.append(result)
            for callback in self.callbacks:
                callback(result)
        return self.history

    def _train_step(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, int]:
        """One optimizer step on a global batch: this rank's loss and its weight in the epoch's sum."""
        lo, hi = shard_bounds(len(xb), self.context.world_size, self.context.rank)
        mean = self.loss_fn.reduction == "mean"
        self.optimizer.zero_grad()
        value, weight = torch.zeros((), dtype=xb.dtype, device=xb.device), 0
        if hi > lo:
            value, weight = self.loss_fn(self.model(xb[lo:hi]), tb[lo:hi]), (hi - lo) if mean else 1
            self.model.backward(self.loss_fn.backward())
        params = [p for group in self.optimizer.param_groups for p in group["params"]]  # the grads it steps with
        all_reduce_gradients(params, hi - lo, len(xb), mean=mean)  # every rank, even one with no rows
        self.optimizer.step()
        return value, weight
