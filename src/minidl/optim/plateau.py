"""ReduceLROnPlateau: cut the lr by ``factor`` when a metric stops improving (torch's semantics)."""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

from minidl.errors import ConfigError
from minidl.optim.lr_scheduler import LRScheduler
from minidl.optim.optimizer import Optimizer


class ReduceLROnPlateau(LRScheduler):
    """``step(metric)`` once per epoch; after more than ``patience`` epochs without improvement::

    improved ⇔ metric < best · (1 − threshold)   (mode 'min', threshold_mode 'rel'; 'abs': best − threshold)
    lr ← max(lr · factor, min_lr)                 unless that changes lr by no more than eps
    then wait ``cooldown`` epochs (bad epochs are not counted) before counting again.
    """

    _hyperparameters = (
        "factor", "patience", "threshold", "threshold_mode", "mode", "cooldown", "min_lrs", "default_min_lr", "eps"
    )  # fmt: skip
    _counters = ("last_epoch", "_last_lr", "best", "num_bad_epochs", "cooldown_counter")

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: {type(optimizer).__name__} is not a minidl Optimizer")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience, self.threshold = mode, factor, patience, threshold
        self.threshold_mode, self.cooldown, self.eps = threshold_mode, cooldown, eps
        n_groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n_groups:
                raise ConfigError(f"ReduceLROnPlateau: expected {n_groups} min_lrs, got {len(min_lr)}")
            self.default_min_lr, self.min_lrs = None, list(min_lr)
        else:
            self.default_min_lr, self.min_lrs = min_lr, [min_lr] * n_groups
        self._validate()
        self.last_epoch = 0
        self._last_lr = self._lrs()
        self.best = self._worst()
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _validate(self) -> None:
        if self.mode not in ("min", "max"):
            raise ConfigError(f"ReduceLROnPlateau: mode {self.mode!r} is unknown! (expected 'min' or 'max')")
        if self.threshold_mode not in ("rel", "abs"):
            raise ConfigError(
                f"ReduceLROnPlateau: threshold mode {self.threshold_mode!r} is unknown! (expected 'rel' or 'abs')"
            )
        if not 0.0 <= self.factor < 1.0:
            raise ConfigError(f"ReduceLROnPlateau: Factor should be < 1.0 (and >= 0), got {self.factor}")
        for name in ("patience", "cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"ReduceLROnPlateau: {name} must be a non-negative integer, got {value!r}")
        for name, value in (("threshold", self.threshold), ("eps", self.eps), *(("min_lr", m) for m in self.min_lrs)):
            if not value >= 0.0:
                raise ConfigError(f"ReduceLROnPlateau: Invalid {name} value: {value}")

    def _worst(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def _is_better(self, metric: float) -> bool:
        best, threshold = self.best, self.threshold
        if self.mode == "min":
            return metric < (best * (1.0 - threshold) if self.threshold_mode == "rel" else best - threshold)
        return metric > (best * (threshold + 1.0) if self.threshold_mode == "rel" else best + threshold)

    def step(self, metrics: SupportsFloat) -> None:  # type: ignore[override]
        """Record this epoch's metric (a float or a 0-dim tensor) and cut the lrs on a plateau."""
        metric = float(metrics)
        self.last_epoch += 1
        if self._is_better(metric):
            self.best, self.num_bad_epochs = metric, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = self._lrs()

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise ConfigError(
                    f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, min_lr has "
                    f"{len(self.min_lrs)} values (a group was added after the scheduler was made)"
                )
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs, strict=True):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def _state_keys(self) -> tuple[str, ...]:
        return (*self._counters, *self._hyperparameters)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.best = float(self.best)
