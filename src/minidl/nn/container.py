"""Sequential: modules applied in order; backward runs them in reverse."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from minidl.nn.module import Module


class Sequential(Module):
    """``Sequential(m0, m1, ...)``: submodules are named ``0``, ``1``, … as in PyTorch."""

    def __init__(self, *modules: Module) -> None:
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is not a minidl Module: {module!r}")
            setattr(self, str(index), module)
        self._layers = list(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._layers:
            x = layer.forward(x)  # what layer(x) calls, one Python call less per layer
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self._layers):
            grad_output = layer.backward(grad_output)
        return grad_output

    def backward_parameters(self, grad_output: torch.Tensor) -> None:
        """Every layer's backward, except that the first one need not compute its grad_input (the data's)."""
        for layer in reversed(self._layers[1:]):
            grad_output = layer.backward(grad_output)
        if self._layers:
            self._layers[0].backward_parameters(grad_output)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> Module:
        return self._layers[index]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)
