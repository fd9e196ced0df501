"""ModuleList, ModuleDict and ParameterList: containers that hold, name and register, but run nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from minidl.nn.container import IndexedModules
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter


class ModuleList(IndexedModules):
    """A list of modules named ``0``, ``1``, …; the model that holds it writes forward and backward."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        if isinstance(modules, Mapping):  # a slice of another ModuleList: names kept, as torch
            for name, module in modules.items():
                self._add(str(name), module)
        elif modules is not None:
            self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList([*self, *other])

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward: iterate over it in your model's forward and backward")

    def backward(self, grad_output: Any) -> Any:
        raise NotImplementedError("ModuleList has no backward: call each module's backward in reverse order")


class ModuleDict(Module):
    """Modules by string key, in insertion order, as torch's ModuleDict."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not isinstance(module, Module):
            raise TypeError(f"ModuleDict: expected a str key and a minidl Module, got {key!r}: {module!r}")
        setattr(self, key, module)

    def __delitem__(self, key: str) -> None:
        self[key]
        delattr(self, key)

    def __contains__(self, key: object) -> bool:
        return any(name == key for name, _ in self.named_children())

    def __len__(self) -> int:
        return len(list(self.named_children()))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def keys(self) -> list[str]:
        return [name for name, _ in self.named_children()]

    def values(self) -> list[Module]:
        return [module for _, module in self.named_children()]

    def items(self) -> list[tuple[str, Module]]:
        return list(self.named_children())

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        for key, module in modules.items() if isinstance(modules, Mapping) else modules:
            self[key] = module

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in self.keys():
            del self[key]

    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward: call its modules from your model's forward")


class ParameterList(Module):
    """Parameters named ``0``, ``1``, …, found by ``parameters()`` and saved in the state_dict."""

    def __init__(self, values: Iterable[Parameter] | None = None) -> None:
        for p in values or ():
            self.append(p)

    def _params(self) -> list[Parameter]:
        return [p for _, p in self._own_parameters()]

    def append(self, value: Parameter) -> ParameterList:
        if not isinstance(value, Parameter):
            raise TypeError(f"ParameterList: expected a minidl Parameter, got {type(value).__name__}")
        setattr(self, str(len(self)), value)
        return self

    def extend(self, values: Iterable[Parameter]) -> ParameterList:
        for p in values:
            self.append(p)
        return self

    def __len__(self) -> int:
        return len(self._params())

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params())

    def __getitem__(self, index: int) -> Parameter:
        return self._params()[index]

    def __setitem__(self, index: int, value: Parameter) -> None:
        if not isinstance(value, Parameter):
            raise TypeError(f"ParameterList: expected a minidl Parameter, got {type(value).__name__}")
        name = [n for n, _ in self._own_parameters()][index]
        setattr(self, name, value)

    def extra_repr(self) -> str:
        return ", ".join(f"({i}): Parameter of shape {tuple(p.shape)}" for i, p in enumerate(self))
