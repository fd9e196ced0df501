"""Element-wise activations: each caches what its derivative needs (a mask or its own output)."""

from __future__ import annotations

import torch

from minidl.nn.module import Module


class ReLU(Module):
    """max(0, x); the gradient at 0 is 0, as in torch."""

    def __init__(self) -> None:
        self._mask: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._mask = x > 0
        return x * self._mask

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output * self._cached(self._mask)


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
