"""Piecewise element-wise activations: ReLU, LeakyReLU, ELU, and the saturating Tanh and Sigmoid.

Each caches what its derivative needs (a mask, its input or its own output), and each stays finite at
±1e4 in float32 and float64, in forward and backward.
"""

from __future__ import annotations

import torch

from minidl.errors import ConfigError
from minidl.nn.module import Module


def _check_number(layer: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{layer}: {name} must be a number, got {value!r}")
    return float(value)


class ReLU(Module):
    """max(0, x); the gradient at 0 is 0, as in torch."""

    def __init__(self) -> None:
        self._mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._mask = x > 0
        return x * self._mask

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output * self._cached(self._mask)


class LeakyReLU(Module):
    """x for x > 0, negative_slope · x otherwise; the gradient at 0 is negative_slope, as in torch."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = _check_number("LeakyReLU", "negative_slope", negative_slope)
        self._mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._mask = x > 0
        return torch.where(self._mask, x, x * self.negative_slope)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        mask = self._cached(self._mask)
        return torch.where(mask, grad_output, grad_output * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x for x > 0, α(eˣ − 1) otherwise (computed with expm1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = _check_number("ELU", "alpha", alpha)
        self._input: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._input = x
        # expm1 of min(x, 0): the branch that is not taken never overflows
        return torch.where(x > 0, x, self.alpha * torch.expm1(x.clamp(max=0)))

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self._cached(self._input)
        # d/dx = 1 for x > 0, α eˣ for x ≤ 0 (so α at 0, as torch)
        return torch.where(x > 0, grad_output, grad_output * (self.alpha * torch.exp(x.clamp(max=0))))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Tanh(Module):
    """tanh(x)."""

    def __init__(self) -> None:
        self._output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.tanh(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._cached(self._output)
        return grad_output * (1 - y * y)  # d tanh(x)/dx = 1 - tanh(x)², from the cached output


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^(-x)), computed without overflow by torch.sigmoid."""

    def __init__(self) -> None:
        self._output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.sigmoid(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._cached(self._output)
        return grad_output * y * (1 - y)  # dσ/dx = σ(x)(1 - σ(x)), from the cached output
