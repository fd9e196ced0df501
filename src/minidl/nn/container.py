"""Sequential: modules applied in order; backward runs them in reverse.

Its children are its attributes, as for every module, and nothing else: ``m[1] = layer``,
``setattr(m, "1", layer)``, ``append``, ``insert`` and ``del m[0]`` change what forward and backward run,
the repr, ``parameters()`` and ``state_dict()`` alike.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from minidl.nn.module import Module


class IndexedModules(Module):
    """Children named ``0``, ``1``, …, indexed, sliced and edited as a list (Sequential and ModuleList)."""

    def _items(self) -> list[tuple[str, Module]]:
        return list(self.named_children())

    def _index(self, index: int) -> str:
        items = self._items()
        if isinstance(index, bool) or not isinstance(index, int) or not -len(items) <= index < len(items):
            raise IndexError(f"{type(self).__name__}: index {index!r} is out of range for {len(items)} modules")
        return items[index % len(items)][0]

    def _renumber(self, modules: list[Module]) -> None:
        for name, _ in self._items():
            delattr(self, name)
        for i, module in enumerate(modules):
            self._add(str(i), module)

    def _add(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {name!r} is not a minidl Module: {module!r}")
        setattr(self, name, module)

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[Module]:
        return iter([module for _, module in self._items()])

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):  # a new container of the same modules, their names kept (as torch)
            return type(self)(OrderedDict(self._items()[index]))
        return getattr(self, self._index(index))

    def __setitem__(self, index: int, module: Module) -> None:
        self._add(self._index(index), module)

    def __delitem__(self, index: int | slice) -> None:
        items = self._items()
        doomed = {name for name, _ in (items[index] if isinstance(index, slice) else [(self._index(index), None)])}
        self._renumber([module for name, module in items if name not in doomed])  # renumbered, as torch

    def append(self, module: Module) -> IndexedModules:
        self._add(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> IndexedModules:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self)
        modules.insert(index, module)
        self._renumber(modules)


class Sequential(IndexedModules):
    _layers: list[Module] | None = None  # the children in order, cached; any attribute assignment clears it

    """``Sequential(m0, m1, ...)`` or ``Sequential(OrderedDict(name=module, ...))``: named ``0``, ``1``, … or by key."""

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self._add(str(name), module)
            return
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {index} is not a minidl Module: {module!r}")
            self._add(str(index), module)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "_layers":
            object.__setattr__(self, "_layers", None)  # children may have changed: forward re-reads them

    def __delattr__(self, name: str) -> None:
        object.__delattr__(self, name)
        object.__setattr__(self, "_layers", None)

    def _children_now(self) -> list[Module]:
        layers = self._layers
        if layers is None:  # the children changed since the last call
            layers = [module for _, module in self.named_children()]
            object.__setattr__(self, "_layers", layers)
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._layers or self._children_now():
            x = layer.forward(x)  # what layer(x) calls, one Python call less per layer
        return x

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self._layers or self._children_now()):
            grad_output = layer.backward(grad_output)
        return grad_output

    def backward_parameters(self, grad_output: torch.Tensor) -> None:
        """Every layer's backward, except that the first one need not compute its grad_input (the data's)."""
        layers = self._layers or self._children_now()
        for layer in reversed(layers[1:]):
            grad_output = layer.backward(grad_output)
        if layers:
            layers[0].backward_parameters(grad_output)
