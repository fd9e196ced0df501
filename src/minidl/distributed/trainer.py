"""DistributedTrainer: ``Trainer`` where every global batch is shared among the ranks.

``batch_size`` is the global batch size. Every rank draws the same permutation (the loader's own seeded
generator), takes rows ``shard_bounds(len(batch), world_size, rank)`` of each global batch, and the
gradients are all-reduced once per step (``all_reduce_gradients``), so the run is the same training for
any number of processes, up to floating-point summation order. Everything else (scheduler, callbacks,
learning-rate reporting, checkpoints) is ``Trainer``'s own loop: this class overrides its three hooks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch

from minidl.distributed.context import (
    DistContext,
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_parameters,
    shard_bounds,
)
from minidl.distributed.stop import AgreedStop
from minidl.errors import ConfigError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter
from minidl.optim.optimizer import Optimizer
from minidl.train.state import FitStart
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Trainer


class DistributedTrainer(Trainer):
    """``DistributedTrainer(model, loss, optimizer, context=init_from_env()).fit(x, y, ...)``.

    Every rank passes the whole ``(x, y)``. Parameters are broadcast from rank 0 when ``fit`` starts,
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
        scheduler: Any = None,
    ) -> None:
        super().__init__(model, loss_fn, optimizer, task=task, callbacks=callbacks, scheduler=scheduler)
        if loss_fn.reduction not in ("mean", "sum"):
            raise ConfigError(f"{loss_fn._name()}: data-parallel training needs reduction 'mean' or 'sum'")
        self.context = context if context is not None else DistContext()
        self._mean = loss_fn.reduction == "mean"
        self._params: list[Parameter] = []
        self.interrupt = AgreedStop(self.context.rank)  # a signal stops every rank after the same step (stop.py)

    def fit(self, x: torch.Tensor, y: torch.Tensor, *, start: FitStart | None = None, **kwargs: Any) -> Any:
        """``Trainer.fit``; resuming mid-epoch, rank 0 carries the checkpoint's loss sum (over every rank's rows)
        and the other ranks start that epoch's sum from zero, so the epoch's all-reduced loss counts it once."""
        if start is not None and start.loss_sum is not None and not self.context.is_main:
            start = dataclasses.replace(start, loss_sum=torch.zeros_like(start.loss_sum))
        return super().fit(x, y, start=start, **kwargs)

    def _stop(self, loader: Any, snapshot: Any, state: Any) -> None:
        """Stopping mid-epoch (every rank after the same step): the checkpoint holds the loss sum of every rank."""
        state.metadata["loss_sum"] = all_reduce_sum(state.metadata["loss_sum"])
        super()._stop(loader, snapshot, state)

    def _fit_begin(self) -> None:
        broadcast_parameters(self.model)
        self._params = [p for group in self.optimizer.param_groups for p in group["params"]]  # the grads it steps

    def _train_step(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]:
        """One optimizer step on a global batch: this rank's loss and its weight in the epoch's sum.

        The weights add up over the ranks to ``Trainer``'s ``len(xb) * batch loss``: a mean over ``n_r``
        rows counts ``n_r`` times, a sum over the share ``len(xb)`` times.
        """
        lo, hi = shard_bounds(len(xb), self.context.world_size, self.context.rank)
        self.optimizer.zero_grad()
        value, weight = torch.zeros((), dtype=xb.dtype, device=xb.device), 0
        if hi > lo:
            value = self.loss_fn(self.model(xb[lo:hi]), tb[lo:hi])
            weight = hi - lo if self._mean else len(xb)
            self.model.backward(self.loss_fn.backward())
        all_reduce_gradients(self._params, hi - lo, len(xb), mean=self._mean)  # every rank, even one with no rows
        self.optimizer.step()
        self.interrupt.after_step()
        return value, weight

    def _epoch_loss(self, total: torch.Tensor, n: int) -> float:
        return all_reduce_sum(total).item() / n
