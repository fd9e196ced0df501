"""Trainer: the loop that ties a model, a loss and an optimizer together (Keras-style ``fit``)."""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minidl.data.loader import DataLoader
from minidl.errors import CheckpointError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.optim.optimizer import Optimizer
from minidl.persist.checkpoint import Checkpoint
from minidl.persist.rng import module_generators, restore_rng_states
from minidl.train.callbacks import Callback
from minidl.train.divergence import DivergenceError, all_finite, locate
from minidl.train.interrupt import StopRequest, TrainingInterrupted
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics
from minidl.train.proba import binary_scores
from minidl.train.schedule import step_scheduler
from minidl.train.state import LOADER, FitStart, capture_state
from minidl.train.task import Task


@dataclass
class EpochResult:
    """One epoch: ``loss`` is the mean batch loss during the epoch; ``accuracy`` is measured on the
    whole training set after the epoch, in eval mode (None for regression); ``lr`` is the learning rate
    the epoch used; ``val_*`` are measured on the validation data after the epoch, if there is any."""

    epoch: int
    loss: float
    accuracy: float | None
    lr: float
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class Evaluation:
    """Loss over a data set and the metrics: classification (counts, scores) or regression (MSE, MAE)."""

    loss: float
    metrics: ClassificationMetrics | RegressionMetrics | None

    @property
    def accuracy(self) -> float | None:
        return self.metrics.accuracy if isinstance(self.metrics, ClassificationMetrics) else None


def evaluate_model(model: Module, loss_fn: Loss, task: Task, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Loss and metrics of ``model`` over ``(x, y)`` in eval mode, in one batch."""
    was_training = model.training
    model.eval()
    try:
        output = model(x)
        width = y.shape[1] if y.dim() == 2 else 1
        target = task.targets(y, loss_fn, task.out_features(loss_fn, width), output.dtype)
        loss = loss_fn(output, target).item()
    finally:
        model.train(was_training)
    if not task.is_classification:
        return Evaluation(loss, RegressionMetrics.from_outputs(output, target, loss))
    predicted = task.predict(output, loss_fn)
    scores = binary_scores(output, loss_fn) if task.kind == "binary" else None  # for the ROC AUC
    return Evaluation(loss, ClassificationMetrics.from_predictions(predicted, y, task.num_classes, loss, scores))


class Trainer:
    """``Trainer(model, loss, optimizer).fit(x, y, epochs=..., batch_size=...)``.

    ``y`` holds integer class labels (classification) or floating targets (regression); the trainer
    turns labels into whatever the loss expects (a 0/1 column, one-hot rows or class indices). A
    ``scheduler`` steps once per epoch (with the validation loss, or the training loss without
    validation data, if it watches a metric). ``callbacks`` are functions of an ``EpochResult`` or
    ``Callback`` objects. A ``checkpointer`` (``minidl.train.checkpointer``) saves the run as it goes;
    ``interrupt`` is the flag ``stop_on_signals`` sets to stop at the next step boundary.
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Loss,
        optimizer: Optimizer,
        *,
        task: Task | None = None,
        callbacks: Sequence[Callable[[EpochResult], None]] = (),
        scheduler: Any = None,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.task = task
        self.scheduler = scheduler
        self.callbacks = list(callbacks)
        self.history: list[EpochResult] = []
        self.checkpointer: Any = None
        self.interrupt = StopRequest()

    def _targets(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.task is None:
            self.task = Task.infer(y)
        width = y.shape[1] if y.dim() == 2 else 1
        return self.task.targets(y, self.loss_fn, self.task.out_features(self.loss_fn, width), dtype)

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
        start: FitStart | None = None,
    ) -> list[EpochResult]:
        """Train epochs ``start.epoch`` to ``epochs``; ``start`` (``fit_state.restore_state``) resumes a checkpoint.

        A resumed run is bit for bit the run that was never stopped: the same batches (the loader's RNG),
        dropout masks (torch's and the layers' RNGs), lrs and optimizer state. When ``interrupt.signum`` is
        set, training stops at the step boundary with a checkpoint and ``TrainingInterrupted``. A non-finite
        loss or weight raises ``DivergenceError`` naming the step and layer (``divergence``); the bad state
        is never saved, and the model is left with the weights the bad epoch started from.
        """
        loader = DataLoader(x, self._targets(y, x.dtype), batch_size, shuffle=shuffle, seed=seed)
        model, optimizer, train_step, interrupt = self.model, self.optimizer, self._train_step, self.interrupt
        hooks = [c for c in self.callbacks if isinstance(c, Callback)]
        start = start if start is not None else FitStart()
        if start.step >= len(loader):
            raise CheckpointError(f"cannot resume at step {start.step} of an epoch of {len(loader)} steps")
        self._fit_begin()
        if start.rng_states:
            restore_rng_states(start.rng_states, {LOADER: loader.generator, **module_generators(model)})
        snapshot: Checkpoint | None = None  # the state the epoch started from: replayed if it diverges
        for epoch in range(start.epoch, epochs + 1):
            begin = time.perf_counter()
            done = start.step if epoch == start.epoch else 0  # batches of this epoch trained before a resume
            total = torch.zeros((), dtype=x.dtype, device=x.device)
            if done:
                total.copy_(start.loss_sum)
            loader_state = loader.generator.get_state()  # before this epoch's permutation
            if snapshot is None:
                snapshot = capture_state(self, epoch, done, total, loader_state)
            lr = optimizer.param_groups[0]["lr"]
            for hook in hooks:
                hook.on_epoch_begin(epoch, len(loader) - done)
            step_hooks = [c.on_steps for c in hooks if c.step_every > 0]
            every = min((c.step_every for c in hooks if c.step_every > 0), default=sys.maxsize)
            model.train()
            batches = itertools.islice(enumerate(loader, 1), done, None) if done else enumerate(loader, 1)
            for step, (xb, tb) in batches:
                value, weight = train_step(xb, tb)
                total.add_(value, alpha=weight)
                if (step - done) % every == 0:
                    for on_steps in step_hooks:
                        on_steps(every)
                if interrupt.signum and step < len(loader):
                    self._stop(loader, snapshot, capture_state(self, epoch, step, total, loader_state))
            for on_steps in step_hooks:
                if (len(loader) - done) % every:
                    on_steps((len(loader) - done) % every)
            loss = self._epoch_loss(total, len(x))
            if not math.isfinite(loss) or not all_finite(p.data for p in model.parameters()):
                raise self._diverged(loader, snapshot)
            train = self.evaluate(x, y)
            val = self.evaluate(*validation_data) if validation_data is not None else None
            step_scheduler(self.scheduler, val.loss if val else train.loss)
            result = EpochResult(
                epoch=epoch,
                loss=loss,
                accuracy=train.accuracy,
                lr=lr,
                seconds=time.perf_counter() - begin,
                val_loss=val.loss if val else None,
                val_accuracy=val.accuracy if val else None,
            )
            self.history.append(result)
            for callback in self.callbacks:
                callback(result)
            snapshot = capture_state(self, epoch, None, None, loader.generator.get_state())
            saver = self.checkpointer
            if saver is not None and (interrupt.signum or saver.due(epoch, epochs)):
                saver.save(self, snapshot)  # after the callbacks: metrics.csv has this epoch's row first
            if interrupt.signum:
                raise TrainingInterrupted(interrupt.signum, epoch, None, len(loader), saver.last if saver else None)
        return self.history

    def _stop(self, loader: DataLoader, snapshot: Checkpoint, state: Checkpoint) -> None:
        """Save the mid-epoch ``state`` (unless it has diverged) and raise ``TrainingInterrupted``."""
        params = (p.data for p in self.model.parameters())
        if not all_finite([state.metadata["loss_sum"], *params]):
            raise self._diverged(loader, snapshot)
        saver = self.checkpointer
        path = saver.save(self, state) if saver is not None else None
        epoch, step = state.metadata["epoch"], state.metadata["step"]
        raise TrainingInterrupted(self.interrupt.signum, epoch, step, len(loader), path)

    def _diverged(self, loader: DataLoader, snapshot: Checkpoint) -> DivergenceError:
        """Find the bad step by replaying the epoch from ``snapshot`` (which the trainer is left at)."""
        step, loss, layer = locate(self, loader, snapshot)
        last = self.checkpointer.last if self.checkpointer is not None else None
        epoch = snapshot.metadata["epoch"] + (snapshot.metadata["step"] is None)
        return DivergenceError(epoch, step, len(loader), loss, layer, last)

    # -- the hooks a subclass overrides (DistributedTrainer); called from fit ------------------------
    def _fit_begin(self) -> None:
        """Called once when ``fit`` starts, before the first step (DistributedTrainer broadcasts weights)."""

    def _train_step(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]:
        """One optimizer step on a batch: the batch's loss and its weight in the epoch's sum.

        The loss stays a tensor (no ``.item()``: no sync per step); ``fit`` adds ``value * weight`` into
        the epoch total, which ``_epoch_loss`` turns into the epoch's loss. It runs in inference mode
        (no autograd bookkeeping on any op: ~15 % of a small step); the optimizer makes its state outside it.
        """
        with torch.inference_mode():
            value = self.loss_fn(self.model(xb), tb)
            self.optimizer.zero_grad()
            self.model.backward_parameters(self.loss_fn.backward())  # no gradient for the data: skipped
            self.optimizer.step()
        return value, len(xb)

    def _epoch_loss(self, total: torch.Tensor, n: int) -> float:
        """The epoch's loss from the weighted sum of its batch losses over ``n`` samples."""
        return total.item() / n

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        """Loss and metrics over ``(x, y)`` in eval mode, in one batch."""
        if self.task is None:
            self.task = Task.infer(y)
        return evaluate_model(self.model, self.loss_fn, self.task, x, y)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels (classification) or outputs (regression), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            output = self.model(x)
        finally:
            self.model.train(was_training)
        return self.task.predict(output, self.loss_fn) if self.task is not None else output
