"""Schedulers that move the lr over a horizon: LinearLR (warm-up or decay) and CosineAnnealingLR.

Both use torch's recursive (chainable) updates, not the closed forms in their docstrings, so the lrs
equal torch's to the last bit.
"""

from __future__ import annotations

import math

from minidl.errors import ConfigError
from minidl.optim.lr_scheduler import LRScheduler, _check_positive_int
from minidl.optim.optimizer import Optimizer


class LinearLR(LRScheduler):
    """lr_e = base_lr · (s + (f − s) · min(e, total_iters) / total_iters), computed recursively::

    lr₀ = base_lr · s                                         (start_factor s, end_factor f)
    lr_e = lr_{e−1} · (1 + (f − s) / (total_iters · s + (e − 1)(f − s)))     for 1 ≤ e ≤ total_iters
    """

    _hyperparameters = ("start_factor", "end_factor", "total_iters")

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ) -> None:
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def _validate(self) -> None:
        if not 0 < self.start_factor <= 1.0:
            raise ConfigError(
                "LinearLR: Starting multiplicative factor expected to be greater than 0 and less or equal to 1, "
                f"got {self.start_factor}"
            )
        if not 0 <= self.end_factor <= 1.0:
            raise ConfigError(
                f"LinearLR: Ending multiplicative factor expected to be between 0 and 1, got {self.end_factor}"
            )
        _check_positive_int(self, "total_iters")

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._lrs()
        delta = self.end_factor - self.start_factor
        factor = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * factor for lr in self._lrs()]


class CosineAnnealingLR(LRScheduler):
    """lr_e ≈ η_min + (base_lr − η_min)(1 + cos(π e / T_max)) / 2, computed recursively as torch does::

    lr_e = η_min + (lr_{e−1} − η_min) · (1 + cos(π e / T_max)) / (1 + cos(π (e − 1) / T_max))
    lr_e = lr_{e−1} + (base_lr − η_min)(1 − cos(π / T_max)) / 2    when (e − 1 − T_max) % 2T_max = 0

    Past T_max the lr climbs back along the cosine (no restarts), as torch's does.
    """

    _hyperparameters = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _validate(self) -> None:
        _check_positive_int(self, "T_max")
        if not self.eta_min >= 0:
            raise ConfigError(f"CosineAnnealingLR: Invalid eta_min value: {self.eta_min} (expected >= 0)")

    def get_lr(self) -> list[float]:
        e, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._lrs()
        if (e - 1 - t_max) % (2 * t_max) == 0:  # the trough: the ratio below would be 0/0
            return [
                lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                for base_lr, lr in zip(self.base_lrs, self._lrs(), strict=True)
            ]
        ratio = (1 + math.cos(math.pi * e / t_max)) / (1 + math.cos(math.pi * (e - 1) / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._lrs()]
