"""LRSchedule: the callback that steps a learning-rate scheduler once per epoch.

A scheduler whose ``step`` takes a metric (``ReduceLROnPlateau.step(metrics)``) watches a loss, named by
``monitor``: ``"val_loss"`` (the validation loss, measured after the epoch in eval mode) when the run has
validation data, else ``"train_loss"`` (the training set's loss, measured the same way). Any other
scheduler steps without one (``StepLR``, ``CosineAnnealingLR``, ...).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from minidl.errors import ConfigError
from minidl.train.callbacks import Callback, TrainerView

if TYPE_CHECKING:
    from minidl.train.evaluation import EpochResult

MONITORS = ("auto", "val_loss", "train_loss")


def takes_metric(scheduler: Any) -> bool:
    """Whether ``scheduler.step`` needs the metric it watches."""
    parameters = inspect.signature(scheduler.step).parameters
    return "metrics" in parameters or "metric" in parameters


class LRSchedule(Callback):
    """``scheduler.step()`` (or ``scheduler.step(loss)``, see the module) at the end of every epoch."""

    def __init__(self, scheduler: Any, monitor: str = "auto") -> None:
        if monitor not in MONITORS:
            raise ConfigError(f"LRSchedule: monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
        self.scheduler = scheduler
        self.monitor = monitor if takes_metric(scheduler) else None  # None: a schedule by epoch alone
        self.trainer: TrainerView | None = None

    @staticmethod
    def of(scheduler: Any) -> list[LRSchedule]:
        """``[LRSchedule(scheduler)]``, or no callback without a scheduler."""
        return [] if scheduler is None else [LRSchedule(scheduler)]

    def on_fit_begin(self, trainer: TrainerView) -> None:
        self.trainer = trainer

    def on_epoch_end(self, result: EpochResult) -> None:
        if self.monitor is None:
            self.scheduler.step()
            return
        evaluations = self.trainer.loop.evaluations
        watch = self.monitor
        if watch == "auto":
            watch = "val_loss" if evaluations.get("val") is not None else "train_loss"
        self.scheduler.step(evaluations[watch.removesuffix("_loss")].loss)

    def __repr__(self) -> str:
        watching = f", monitor={self.monitor!r}" if self.monitor else ""
        return f"LRSchedule({type(self.scheduler).__name__}{watching})"
