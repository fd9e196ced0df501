"""EarlyStopping: stop when a monitored quantity has stopped improving, and go back to the best weights.

Keras' semantics: after every epoch the ``monitor``ed value (``val_loss`` by default; ``val_accuracy``,
``loss``, ``accuracy``: the fields of ``EpochResult``) is compared with the best so far. It improves when it
beats the best by more than ``min_delta`` (lower for a loss, higher for an accuracy: ``mode="auto"``).
``wait`` counts the epochs since the last improvement; when it reaches ``patience`` training stops. With
``restore_best_weights`` the model gets the weights of the best epoch back when training ends (stopped by
this callback or run to its last epoch; not when a signal interrupted it, so that a checkpoint written then
resumes exactly). Its state (best value, wait, best weights) lives in checkpoints: a resumed run stops where
the uninterrupted one would, and a run that stopped early stays stopped.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from minidl.checks import is_int, is_number
from minidl.errors import ConfigError
from minidl.train.callbacks import Callback, TrainerView

if TYPE_CHECKING:
    from minidl.train.evaluation import EpochResult

MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")
MODES = ("auto", "min", "max")


class EarlyStopping(Callback):
    """``EarlyStopping(monitor="val_loss", patience=0, min_delta=0.0, mode="auto", restore_best_weights=False)``."""

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        if monitor not in MONITORS:
            raise ConfigError(f"EarlyStopping: monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
        if not is_int(patience) or patience < 0:
            raise ConfigError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        if not is_number(min_delta) or not math.isfinite(min_delta):
            raise ConfigError(f"EarlyStopping: min_delta must be a finite number, got {min_delta!r}")
        if mode not in MODES:
            raise ConfigError(f"EarlyStopping: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)  # Keras takes |min_delta|
        self.mode = ("max" if "accuracy" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait, self.best_epoch, self.stopped_epoch = 0, 0, 0  # epochs from 1; 0: none yet
        self.best_weights: dict[str, Any] | None = None
        self.trainer: TrainerView | None = None

    def improved(self, current: float) -> bool:
        """Whether ``current`` beats the best by more than ``min_delta``."""
        if self.mode == "min":
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best

    def on_fit_begin(self, trainer: TrainerView) -> None:
        self.trainer = trainer
        loop = trainer.loop
        if self.monitor.startswith("val_") and loop is not None and loop.validation_data is None:
            raise ConfigError(f"EarlyStopping: monitor {self.monitor!r} needs validation data, and there is none")
        if self.stopped_epoch:  # a run that stopped early, resumed: it stays stopped
            trainer.stop_training = True

    def on_epoch_end(self, result: EpochResult) -> None:
        current = getattr(result, self.monitor)
        if current is None:
            raise ConfigError(f"EarlyStopping: epoch {result.epoch} has no {self.monitor} (a regression task?)")
        self.wait += 1
        if self.improved(current):
            self.best, self.best_epoch, self.wait = current, result.epoch, 0
            if self.restore_best_weights:
                self.best_weights = {name: t.detach().clone() for name, t in self.trainer.model.state_dict().items()}
            return
        if self.wait >= self.patience:
            self.stopped_epoch = result.epoch
            self.trainer.stop_training = True

    def on_fit_end(self, trainer: TrainerView) -> None:
        ended = self.stopped_epoch or trainer.loop.finished  # not an interruption: that run resumes
        if self.restore_best_weights and self.best_weights is not None and ended:
            trainer.model.load_state_dict(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        state = {"best": self.best, "wait": self.wait, "best_epoch": self.best_epoch}
        state["stopped_epoch"] = self.stopped_epoch
        if self.best_weights is not None:
            state["best_weights"] = self.best_weights
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.wait = float(state["best"]), int(state["wait"])
        self.best_epoch, self.stopped_epoch = int(state["best_epoch"]), int(state["stopped_epoch"])
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else {k: v.clone() for k, v in weights.items()}

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta}, "
            f"mode={self.mode!r}, restore_best_weights={self.restore_best_weights})"
        )
