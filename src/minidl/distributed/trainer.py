"""DistributedTrainer: ``Trainer`` where every global batch is shared among the ranks.

``batch_size`` is the global batch size. Every rank draws the same permutation (the loader's own seeded
generator), takes rows ``shard_bounds(len(batch), world_size, rank)`` of each global batch, and the
gradients are all-reduced once per step and param group, on the optimizer's own flat gradient buffer
(``flat_gradients`` finds the packing the optimizer made; it packs only grads no optimizer packed), so
the run is the same training for any number of processes, up to floating-point summation order. Everything else (the
step in inference mode, the scheduler, callbacks, learning-rate reporting, checkpoints) is ``Trainer``'s
own: this class overrides what differs, ``start`` (rank 0's weights everywhere), ``gradients`` (this
rank's share, then the all-reduce) and ``epoch_loss`` (summed over the ranks).
"""

from __future__ import annotations

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
from minidl.errors import ConfigError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.optim.optimizer import Optimizer
from minidl.train.evaluation import EpochResult
from minidl.train.loop import Loop
from minidl.train.task import Task
from minidl.train.trainer import Trainer


class DistributedTrainer(Trainer):
    """``DistributedTrainer(model, loss, optimizer, context=init_from_env()).fit(x, y, ...)``.

    Every rank passes the whole ``(x, y)``. Parameters are broadcast from rank 0 when training starts,
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

    def start(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> Loop:
        broadcast_parameters(self.model)
        return super().start(x, y, **kwargs)

    def gradients(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's loss on its share of the global batch, its weight in the epoch's sum, and in every
        parameter's ``grad`` the gradient over the whole global batch.

        The weights add up over the ranks to ``Trainer``'s ``len(xb) * batch loss``: a mean over ``n_r``
        rows counts ``n_r`` times, a sum over the share ``len(xb)`` times.
        """
        lo, hi = shard_bounds(len(xb), self.context.world_size, self.context.rank)
        value, weight = torch.zeros((), dtype=xb.dtype, device=xb.device), 0
        if hi > lo:
            value, _ = super().gradients(xb[lo:hi], tb[lo:hi])
            weight = hi - lo if self._mean else len(xb)
        else:
            self.optimizer.zero_grad()
        for group in self.optimizer.param_groups:  # every rank, even one with no rows
            all_reduce_gradients(group["params"], hi - lo, len(xb), mean=self._mean)  # the optimizer's own buffer
        return value, weight

    def epoch_loss(self, total: torch.Tensor, n: int) -> float:
        return all_reduce_sum(total).item() / n
