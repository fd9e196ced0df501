"""Trainer: the loop that ties a model, a loss and an optimizer together (Keras-style ``fit``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from minidl.data.loader import DataLoader
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.optim.optimizer import Optimizer
from minidl.train.metrics import ClassificationMetrics
from minidl.train.task import Task


@dataclass
class EpochResult:
    """One epoch: ``loss`` is the mean batch loss during the epoch; ``accuracy`` is measured on the
    whole training set after the epoch, in eval mode (None for regression)."""

    epoch: int
    loss: float
    accuracy: float | None
    lr: float
    seconds: float
    val_loss: float | None = None
    val_accuracy: float | None = None


@dataclass
class Evaluation:
    """Loss over a data set and, for classification, the metrics."""

    loss: float
    metrics: ClassificationMetrics | None

    @property
    def accuracy(self) -> float | None:
        return self.metrics.accuracy if self.metrics is not None else None


class Trainer:
    """``Trainer(model, loss, optimizer).fit(x, y, epochs=..., batch_size=...)``.

    ``y`` holds integer class labels (classification) or floating targets (regression); the trainer
    turns labels into whatever the loss expects (a 0/1 column, one-hot rows or class indices).
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Loss,
        optimizer: Optimizer,
        *,
        task: Task | None = None,
        callbacks: Sequence[Callable[[EpochResult], None]] = (),
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.task = task
        self.callbacks = list(callbacks)
        self.history: list[EpochResult] = []

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
    ) -> list[EpochResult]:
        loader = DataLoader(x, self._targets(y, x.dtype), batch_size, shuffle=shuffle, seed=seed)
        model, loss_fn, optimizer = self.model, self.loss_fn, self.optimizer
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            model.train()
            total = torch.zeros((), dtype=x.dtype, device=x.device)
            for xb, tb in loader:
                value = loss_fn(model(xb), tb)
                optimizer.zero_grad()
                model.backward(loss_fn.backward())
                optimizer.step()
                total.add_(value, alpha=len(xb))
            train = self.evaluate(x, y)
            val = self.evaluate(*validation_data) if validation_data is not None else None
            result = EpochResult(
                epoch=epoch,
                loss=total.item() / len(x),
                accuracy=train.accuracy,
                lr=optimizer.param_groups[0]["lr"],
                seconds=time.perf_counter() - start,
                val_loss=val.loss if val else None,
                val_accuracy=val.accuracy if val else None,
            )
            self.history.append(result)
            for callback in self.callbacks:
                callback(result)
        return self.history

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        """Loss and metrics over ``(x, y)`` in eval mode, in one batch."""
        was_training = self.model.training
        self.model.eval()
        try:
            output = self.model(x)
            loss = self.loss_fn(output, self._targets(y, output.dtype)).item()
        finally:
            self.model.train(was_training)
        if not self.task.is_classification:
            return Evaluation(loss, None)
        predicted = self.task.predict(output, self.loss_fn)
        return Evaluation(loss, ClassificationMetrics.from_predictions(predicted, y, self.task.num_classes, loss))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels (classification) or outputs (regression), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            output = self.model(x)
        finally:
            self.model.train(was_training)
        return self.task.predict(output, self.loss_fn) if self.task is not None else output
