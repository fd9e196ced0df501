"""Softmax and LogSoftmax along one dimension, both shifted by the maximum so nothing overflows."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError, ShapeError
from minidl.nn.module import Module


def log_softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """x − logsumexp(x) with the maximum subtracted first, so large logits keep their precision."""
    shifted = x - x.amax(dim, keepdim=True)
    return shifted - torch.log(torch.exp(shifted).sum(dim, keepdim=True))


class _AlongDim(Module):
    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ConfigError(f"{type(self).__name__}: dim must be an integer, got {dim!r}")
        self.dim = dim

    def _check(self, x: torch.Tensor) -> None:
        if not -max(x.dim(), 1) <= self.dim < max(x.dim(), 1):
            raise ShapeError(f"{self._name()}: dim {self.dim} is out of range for input of shape {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """y_i = e^(x_i − m) / Σ_j e^(x_j − m) along ``dim``, m the maximum (the result is the same for any m)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        e = torch.exp(x - x.amax(self.dim, keepdim=True))
        y = e / e.sum(self.dim, keepdim=True)
        self.save_for_backward(y)
        return y

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        (y,) = self.saved_for_backward()
        # dL/dx_i = y_i (g_i − Σ_j g_j y_j): the Jacobian diag(y) − y yᵀ applied to g
        return y * (grad_output - (grad_output * y).sum(self.dim, keepdim=True))


class LogSoftmax(_AlongDim):
    """y_i = x_i − log Σ_j e^(x_j) = (x_i − m) − log Σ_j e^(x_j − m), m the maximum."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        y = log_softmax(x, self.dim)
        self.save_for_backward(y)
        return y

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        (y,) = self.saved_for_backward()
        # dL/dx_i = g_i − softmax(x)_i Σ_j g_j, with softmax(x) = e^y from the cached output
        return grad_output - torch.exp(y) * grad_output.sum(self.dim, keepdim=True)
