"""Robust regression losses: HuberLoss and SmoothL1Loss, quadratic near zero and linear beyond."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError
from minidl.nn.loss import Loss


class HuberLoss(Loss):
    """½d² for |d| < δ, δ(|d| − ½δ) otherwise, with d = x − y; δ = ``delta`` > 0."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ConfigError(f"HuberLoss: delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check_same_shape(input, target)
        diff = input - target
        self.save_for_backward(diff)
        z = diff.abs()
        return self._reduce(torch.where(z < self.delta, 0.5 * z * z, self.delta * (z - 0.5 * self.delta)))

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        # dL/dx = d clipped to [−δ, δ]
        (diff,) = self.saved_for_backward()
        return self._chain(diff.clamp(-self.delta, self.delta), grad_output)

    def extra_repr(self) -> str:
        return ", ".join(part for part in (super().extra_repr(), f"delta={self.delta}") if part)


class SmoothL1Loss(Loss):
    """½d²/β for |d| < β, |d| − ½β otherwise (HuberLoss divided by β); β = 0 is the L1 loss, as torch."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
            raise ConfigError(f"SmoothL1Loss: beta must be a non-negative number, got {beta!r}")
        self.beta = float(beta)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check_same_shape(input, target)
        diff = input - target
        self.save_for_backward(diff)
        z = diff.abs()
        if self.beta == 0:
            return self._reduce(z)
        return self._reduce(torch.where(z < self.beta, 0.5 * z * z / self.beta, z - 0.5 * self.beta))

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        (d,) = self.saved_for_backward()
        if self.beta == 0:
            return self._chain(torch.sign(d), grad_output)  # the L1 gradient, 0 at d = 0
        # dL/dx = d/β inside the quadratic zone, sign(d) outside it
        return self._chain(torch.where(d.abs() < self.beta, d / self.beta, torch.sign(d)), grad_output)

    def extra_repr(self) -> str:
        return ", ".join(part for part in (super().extra_repr(), f"beta={self.beta}") if part)
