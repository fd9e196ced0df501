"""Smooth activations: GELU (exact and tanh approximation), Softplus and SiLU.

Each is written so that nothing overflows at ±1e4 in float32 and float64, in forward and backward.
"""

from __future__ import annotations

import math

import torch

from minidl.errors import ConfigError
from minidl.nn.activation import _check_number
from minidl.nn.module import Module

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_KAPPA = 0.044715


class GELU(Module):
    """x·Φ(x), Φ the standard normal CDF; ``approximate="tanh"`` uses ½x(1 + tanh(√(2/π)(x + 0.044715x³)))."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise ConfigError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.approximate == "tanh":
            t = torch.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x * x * x))
            self.save_for_backward(x, t)
            return 0.5 * x * (1 + t)
        cdf = 0.5 * (1 + torch.erf(x * math.sqrt(0.5)))
        self.save_for_backward(x, cdf)
        return x * cdf

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x, cached = self.saved_for_backward()
        if self.approximate == "tanh":
            t = cached
            # d/dx = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²); (1 − t²) is exactly 0 for large |x|
            inner_grad = _SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x * x)
            return grad_output * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_grad)
        # d/dx = Φ(x) + x φ(x), φ(x) = e^(−x²/2) / √(2π)
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return grad_output * (cached + x * pdf)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + e^(βx)) / β, and x itself where βx > threshold (torch's linear region)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        self.beta = _check_number("Softplus", "beta", beta)
        if self.beta == 0:
            raise ConfigError("Softplus: beta must be non-zero (the output is log(1 + e^(βx)) / β), got 0")
        self.threshold = _check_number("Softplus", "threshold", threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x * self.beta
        linear = z > self.threshold
        # log(1 + eᶻ) = max(z, 0) + log1p(e^(−|z|)): never overflows, whatever the threshold
        soft = (z.clamp(min=0) + torch.log1p(torch.exp(-z.abs()))) / self.beta
        self.save_for_backward(z, linear)
        return torch.where(linear, x, soft)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        z, linear = self.saved_for_backward()
        # d/dx = σ(βx) in the soft region, 1 in the linear one
        return torch.where(linear, grad_output, grad_output * torch.sigmoid(z))

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(Module):
    """x·σ(x) (also called Swish with β = 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(x)
        self.save_for_backward(x, s)
        return x * s

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x, s = self.saved_for_backward()
        return grad_output * (s * (1 + x * (1 - s)))  # d/dx = σ(x)(1 + x(1 − σ(x)))
