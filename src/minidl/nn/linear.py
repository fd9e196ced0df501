"""Linear: y = x Wᵀ + b."""

from __future__ import annotations

import math

import torch

from minidl.errors import ConfigError, ShapeError
from minidl.nn import init
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter


class Linear(Module):
    """Affine map ``y = x Wᵀ + b`` with ``weight`` of shape (out_features, in_features).

    Initialised as torch.nn.Linear (weight, then bias, uniform in ±1/√in_features, drawn in the same
    order), so the same ``torch.manual_seed`` gives the same weights in minidl and torch.nn.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"Linear: {name} must be a positive integer, got {value!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(torch.empty(out_features, in_features, device=device, dtype=dtype))
        self.bias = Parameter(torch.empty(out_features, device=device, dtype=dtype)) if bias else None
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # = U(±1/√in_features), as torch.nn
        if self.bias is not None:
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound)
        self._input: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (*, in_features) -> (*, out_features)
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(f"{self._name()}: expected input of shape (N, {self.in_features}), got {tuple(x.shape)}")
        x2 = x.reshape(-1, self.in_features)
        self._input = x2
        if self.bias is None:
            y = x2 @ self.weight.data.t()
        else:
            y = torch.addmm(self.bias.data, x2, self.weight.data.t())
        return y.reshape(*x.shape[:-1], self.out_features)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x = self._cached(self._input)
        g = grad_output.reshape(-1, self.out_features)
        # dL/dW = gᵀ x, dL/db = Σ_n g, dL/dx = g W
        self.weight.grad.addmm_(g.t(), x)
        if self.bias is not None:
            self.bias.grad += g.sum(0)
        return (g @ self.weight.data).reshape(*grad_output.shape[:-1], self.in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
