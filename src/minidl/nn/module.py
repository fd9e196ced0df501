"""Module: the base class of every layer, loss and model.

A module finds its parameters, buffers and submodules by walking its own attributes, in the order they
were assigned, so a user's layer needs no registration: assign ``Parameter`` objects and modules as
attributes. Tensors that are state but not trained (BatchNorm's running statistics) are declared with
``register_buffer``. Dotted names are torch.nn's (``0.weight``, ``2.bias``), so state_dicts move both ways.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import torch

from minidl.errors import StateDictError
from minidl.nn.parameter import Parameter
from minidl.nn.records import Records, to_arguments


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module(Records):
    """Base class: subclasses implement ``forward(x)`` and ``backward(grad_output) -> grad_input``.

    ``forward`` records what the derivative needs with ``self.save_for_backward(...)``; ``backward`` takes
    it back with ``self.saved_for_backward()``, adds into the ``grad`` of every parameter it owns and
    returns the gradient of the loss with respect to the input of the matching ``forward``. Records are
    per call and used last-in first-out, so a module called twice in one forward (a shared activation,
    tied weights) gets one backward per call, in reverse order, as autograd would. A forward in another
    mode (eval while a training forward waits, or the reverse) or inside ``minidl.no_grad()`` leaves the
    pending records alone.
    """

    training: bool = True

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no backward: minidl has no autograd, so a model class writes "
            "backward(self, grad_output) returning the gradient of its forward's input, for example by "
            "delegating to the submodule that did the work: `return self.layers.backward(grad_output)` "
            "(an inner Sequential runs its layers' backward in reverse)"
        )

    def backward_parameters(self, grad_output: torch.Tensor) -> None:
        """``backward``'s parameter gradients, for an input that needs none (the data), returning nothing.

        By default ``backward`` with its result dropped, so every layer supports it; a layer may skip its
        grad_input's work (as autograd does for an input that does not require grad).
        """
        self.backward(grad_output)

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.forward(*inputs)

    # -- walking the attributes ---------------------------------------------------------------
    def _own_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield name, value

    def _own_buffers(self) -> Iterator[tuple[str, torch.Tensor]]:
        for name in vars(self).get("_buffer_names", ()):
            value = getattr(self, name)
            if value is not None:
                yield name, value

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """This module and every submodule, depth first, in assignment order; a shared one once (as torch.nn)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, param in module._own_parameters():
                if not remove_duplicate or id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
        for module_name, module in self.named_modules(prefix=prefix):
            for name, buffer in module._own_buffers():
                yield (f"{module_name}.{name}" if module_name else name), buffer

    def register_buffer(self, name: str, tensor: torch.Tensor | None) -> None:
        """Declare ``tensor`` as state that is saved in the state_dict but not trained."""
        names = vars(self).setdefault("_buffer_names", [])
        if name not in names:
            names.append(name)
        setattr(self, name, tensor)

    def param(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The course convention: a list of ``(tensor, grad)`` pairs, empty without parameters."""
        return [(p.data, p.grad) for p in self.parameters()]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every parameter's grad to None (torch's default), or to zeros with ``set_to_none=False``."""
        for p in self.parameters():
            p.zero_grad(set_to_none)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter: backward then adds nothing into it, no optimizer moves it."""
        for p in self.parameters():
            setattr(p, "requires_grad", bool(requires_grad))  # noqa: B010 - minidl's flag (see Parameter)
        return self

    # -- modes and devices --------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
            pending = vars(module).get("_pending")
            if pending is not None and not mode:
                pending[0].clear()  # a new eval session: eval-mode records of the last one are not needed
        return self

    def eval(self) -> Module:
        return self.train(False)

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move parameters, gradients and buffers in place, as torch.nn's ``Module.to``.

        ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)`` (its device and dtype) and the
        keywords ``device``, ``dtype``, ``non_blocking``; ``dtype`` applies to floating tensors only.
        """
        device, dtype = to_arguments(self._name(), args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"{self._name()}.to: dtype must be a floating-point dtype, got {dtype}")
        for module in self.modules():
            for _, p in module._own_parameters():
                p.data = p.data.to(device=device, dtype=dtype)
                p._grad = p._grad.to(device=device, dtype=dtype)
            for name, buffer in module._own_buffers():
                buffer_dtype = dtype if buffer.is_floating_point() else None
                setattr(module, name, buffer.to(device=device, dtype=buffer_dtype))
        return self

    def double(self) -> Module:
        return self.to(dtype=torch.float64)

    def float(self) -> Module:
        return self.to(dtype=torch.float32)

    # -- state_dict ---------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, torch.Tensor]:
        """Parameters and buffers by dotted name, in torch.nn's order; the tensors share storage."""
        state: OrderedDict[str, torch.Tensor] = OrderedDict()
        for module_name, module in self.named_modules(remove_duplicate=False):  # a shared module under each name
            dot = f"{module_name}." if module_name else ""
            for name, param in module._own_parameters():
                state[dot + name] = param.data
            for name, buffer in module._own_buffers():
                state[dot + name] = buffer
        return state

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True) -> IncompatibleKeys:
        """Copy tensors into this module's parameters and buffers in place.

        Missing keys, unexpected keys and shape mismatches are collected and raised as one
        ``StateDictError``; with ``strict=False`` only shape mismatches raise.
        """
        own = self.state_dict()
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        problems = [
            f"size mismatch for {key}: copying a tensor of shape {tuple(state_dict[key].shape)}, "
            f"the shape in this model is {tuple(tensor.shape)}"
            for key, tensor in own.items()
            if key in state_dict and tuple(state_dict[key].shape) != tuple(tensor.shape)
        ]
        if strict:
            if missing:
                problems.insert(0, "missing key(s): " + ", ".join(missing))
            if unexpected:
                problems.insert(len(missing) > 0, "unexpected key(s): " + ", ".join(unexpected))
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems))
        for key, tensor in own.items():
            if key in state_dict:  # detached: a tensor that requires grad brings no autograd history along
                value = state_dict[key]
                tensor.copy_(value.detach() if isinstance(value, torch.Tensor) else value)
        return IncompatibleKeys(missing, unexpected)

    # -- repr ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def _name(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return self._name()
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
