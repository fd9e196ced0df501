"""Layers that only move data around: Identity and Flatten."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError, ShapeError
from minidl.nn.module import Module


class Identity(Module):
    """y = x; accepts and ignores any constructor arguments, as PyTorch's nn.Identity."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.save_for_backward()  # nothing to keep, but backward still pairs with a forward
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        self.saved_for_backward()
        return grad_output


class Flatten(Module):
    """Merge dimensions ``start_dim`` … ``end_dim`` into one: (N, C, L) -> (N, C·L) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"Flatten: {name} must be an integer, got {value!r}")
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ndim = max(x.dim(), 1)
        start = self.start_dim % ndim if -ndim <= self.start_dim < ndim else None
        end = self.end_dim % ndim if -ndim <= self.end_dim < ndim else None
        if start is None or end is None or start > end:
            raise ShapeError(
                f"{self._name()}: cannot flatten dimensions {self.start_dim} to {self.end_dim} "
                f"of an input of shape {tuple(x.shape)}"
            )
        self.save_for_backward(x.shape)
        return x.flatten(self.start_dim, self.end_dim)  # (*, d_start, …, d_end, *) -> (*, Π d, *)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        (shape,) = self.saved_for_backward()
        return grad_output.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
