"""What the loop measures: an epoch's record (``EpochResult``) and a model's loss and metrics (``Evaluation``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics
from minidl.train.proba import binary_scores
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

    def __str__(self) -> str:
        """A table: one metric a row (``print(trainer.evaluate(x, y))``)."""
        values = self.metrics.as_dict() if self.metrics is not None else {}
        values["loss"] = self.loss
        rows = [(name, _cell(value)) for name, value in values.items() if value is not None]
        width = max(len(name) for name, _ in rows)
        return "\n".join([f"{'metric':<{width}}  value", *(f"{name:<{width}}  {cell}" for name, cell in rows)])


def _cell(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6f}"


@contextlib.contextmanager
def eval_mode(model: Module) -> Iterator[Module]:
    """``with eval_mode(model):`` the model in eval mode, put back in the mode it had afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def evaluate_model(model: Module, loss_fn: Loss, task: Task, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
    """Loss and metrics of ``model`` over ``(x, y)`` in eval mode, in one batch."""
    with eval_mode(model):
        output = model(x)
        width = y.shape[1] if y.dim() == 2 else 1
        target = task.targets(y, loss_fn, task.out_features(loss_fn, width), output.dtype)
        loss = loss_fn(output, target).item()
    if not task.is_classification:
        return Evaluation(loss, RegressionMetrics.from_outputs(output, target, loss))
    predicted = task.predict(output, loss_fn)
    # for the ROC AUC, made if it is read (Trainer.fit reads only the accuracy after each epoch)
    scores = (lambda: binary_scores(output, loss_fn)) if task.kind == "binary" else None
    return Evaluation(loss, ClassificationMetrics.from_predictions(predicted, y, task.num_classes, loss, scores))
