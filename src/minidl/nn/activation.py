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
        self._output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = x.relu()
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        # d relu/dx = 1 where y > 0, else 0: y.sign() is that mask, without a comparison to a Python number;
        # it is a new tensor, so it takes the product in place (one allocation less on large batches)
        return self._cached(self._output).sign().mul_(grad_output)


class LeakyReLU(Module):
    """x for x > 0, negative_slope · x otherwise; the gradient at 0 is negative_slope, as in torch."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = _check_number("LeakyReLU", "negative_slope", negative_slope)
        self._slope = torch.tensor(self.negative_slope, dtype=torch.float64)  # 0-dim: cheaper than a float per op
        self._mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positive = x.relu()
        self._mask = positive.sign()  # 1 where x > 0, else 0
        return torch.add(positive, x.clamp(max=0), alpha=self.negative_slope)  # max(x, 0) + slope · min(x, 0)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        mask = self._cached(self._mask)
        # d/dx = 1 where x > 0, slope elsewhere: lerp from slope · g (mask 0) to g (mask 1), exact at both ends
        return torch.lerp(grad_output * self._slope, grad_output, mask)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x for x > 0, α(eˣ − 1) otherwise (computed with expm1)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = _check_number("ELU", "alpha", alpha)
        self._alpha = torch.tensor(self.alpha, dtype=torch.float64)  # 0-dim: cheaper than a float per op
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positive = x.relu()
        # expm1 of min(x, 0): the branch that is not taken never overflows
        negative = torch.expm1(x.clamp(max=0))
        self._cache = (positive.sign(), negative)  # the mask of x > 0, and eˣ − 1 where x ≤ 0 (0 elsewhere)
        return torch.add(positive, negative, alpha=self.alpha)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        mask, negative = self._cached(self._cache)
        # d/dx = 1 for x > 0, α eˣ = α(eˣ − 1) + α for x ≤ 0 (so α at 0, as torch)
        g_alpha = grad_output * self._alpha
        return torch.lerp(torch.addcmul(g_alpha, g_alpha, negative), grad_output, mask)

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
        # d tanh(x)/dx = 1 - tanh(x)², from the cached output: g(1 - y²) = g - (g y) y, no Python number
        return torch.addcmul(grad_output, grad_output * y, y, value=-1)


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^(-x)), computed without overflow by torch.sigmoid."""

    def __init__(self) -> None:
        self._output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._output = torch.sigmoid(x)
        return self._output

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        y = self._cached(self._output)
        # dσ/dx = σ(x)(1 - σ(x)), from the cached output: g σ(1 - σ) = gσ - (gσ)σ, no Python number
        g_y = grad_output * y
        return torch.addcmul(g_y, g_y, y, value=-1)
