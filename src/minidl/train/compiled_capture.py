"""Capture minidl's own training step as one pure aten graph (``make_fx``), for ``Trainer(compile=True)``.

The step is the Trainer's: ``loss_fn(model(x), t)``, ``optimizer.zero_grad()``,
``model.backward_parameters(loss_fn.backward())``, ``optimizer.step()``, run on a throwaway deep copy of
the model, loss and optimizer. Before it runs, the copy's flat buffers (``minidl.optim.flat``: every
parameter's data and grad are views into one buffer per dtype and device) and the optimizer's flat state
are rebound to clones of the graph's inputs, so every in-place update hits an intermediate and the graph
is pure::

    (data buffers, grad buffers, state tensors, lrs, x, t) -> (data buffers, grad buffers, state tensors, loss)

Each group's ``lr`` is a 0-dim tensor input (a scheduler changes it without a new trace); the optimizers
take it through their tensor-lr form (``SGD``: ``θ − g·lr``, see ``minidl.optim.sgd``).

``make_fx`` records the tensor operations that ran, with every Python number and branch as it was. What
that would get wrong is refused with ``NotCapturable`` (the trainer then trains eagerly): a value read out
of a tensor (``.item()``, ``if tensor:``; make_fx itself raises), random operations (Dropout: inductor's
random stream is not torch's eager one), buffers the graph would not carry (BatchNorm's running
statistics), optimizer state that the step creates or counts in Python numbers (SGD's momentum buffer on
the first step, Adam's step count), frozen parameters, a layer defined outside minidl that does not
declare ``capturable = True``, and a trainer subclass with its own step.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils._pytree as pytree


class NotCapturable(Exception):
    """This training step cannot be captured without changing its results; train eagerly."""


@dataclass
class Layout:
    """Where the graph's carried tensors live in the real optimizer: what write-back copies into."""

    data: list[torch.Tensor]  # each flat group's data buffer
    grads: list[torch.Tensor]  # each flat group's grad buffer
    state: list[torch.Tensor]  # each flat group's state tensors, by sorted name
    names: list[list[str]]  # those names, per flat group
    flats: list[Any]  # the optimizer's FlatState objects, per flat group

    def carry(self) -> list[torch.Tensor]:
        """The graph's carried inputs, as the real state holds them now (clones: the graph may not alias)."""
        return [t.clone() for t in (*self.data, *self.grads, *self.state)]

    def write_back(self, carried: list[torch.Tensor]) -> None:
        """Copy the carried tensors into the real buffers: the Parameters and optimizer state see them."""
        torch._foreach_copy_([*self.data, *self.grads, *self.state], list(carried))
        for flat in self.flats:
            for p in flat.params:  # as after an eager step: every grad holds the last batch's gradient
                p._has_grad, p._zeroed = True, False


def _flat_states(optimizer: Any) -> list[Any]:
    flats = [flat for group in optimizer._flat for flat in group]
    if not flats or not all(flat.group is not None and flat.usable() for flat in flats):
        raise NotCapturable("the parameters are not packed in the optimizer's flat buffers")
    return flats


def layout_of(optimizer: Any) -> Layout:
    """The real optimizer's flat buffers and state, in the graph's carry order."""
    if optimizer._state_edited:
        optimizer._adopt()  # a user's edit of optimizer.state takes effect first, as at an eager step
    flats = _flat_states(optimizer)
    names = [sorted(flat.tensors) for flat in flats]
    state = [flat.tensors[n] for flat, ns in zip(flats, names, strict=True) for n in ns]
    if state:  # made by a first step the trace cannot replay (momentum's clone, Adam's zeros and Python count):
        # refused always, so that a run and its resume (which finds the state made) take the same path
        found = sorted({n for ns in names for n in ns})
        raise NotCapturable(f"{type(optimizer).__name__} keeps per-parameter state ({', '.join(found)})")
    return Layout([f.group.data for f in flats], [f.group.grad for f in flats], state, names, flats)


def refuse_early(trainer: Any) -> None:
    """Raise NotCapturable for what must not be traced at all (before anything is copied or run)."""
    for name in ("train_step", "gradients"):
        method = getattr(type(trainer), name)
        if (method.__module__, method.__qualname__) != ("minidl.train.trainer", f"Trainer.{name}"):
            raise NotCapturable(f"{type(trainer).__name__} has its own {name}")
    devices = {p.device.type for p in trainer.model.parameters()}
    if devices != {"cpu"}:
        raise NotCapturable(f"compiled training runs on the CPU only, the model is on {sorted(devices)}")
    for module in [*trainer.model.modules(), trainer.loss_fn]:
        own = type(module).__module__.startswith("minidl.")
        if not own and not getattr(module, "capturable", False):
            raise NotCapturable(f"layer {type(module).__name__} is not minidl's and does not declare capturable = True")
    frozen = [name for name, p in trainer.model.named_parameters() if not p.requires_grad]
    if frozen:  # the optimizer then steps one by one, and their grads stay None: not what write-back restores
        raise NotCapturable(f"parameter {frozen[0]} is frozen (requires_grad=False)")
    buffers = [name for name, _ in trainer.model.named_buffers()]
    if buffers:
        raise NotCapturable(f"the model keeps buffers the compiled epoch would not carry ({buffers[0]})")


def trace_step(trainer: Any, layout: Layout, x: torch.Tensor, t: torch.Tensor) -> Callable:
    """``make_fx`` of one training step of ``trainer`` on a batch shaped like ``(x, t)``: a GraphModule."""
    from torch.fx.experimental.proxy_tensor import make_fx

    model, loss_fn, optimizer = copy.deepcopy((trainer.model, trainer.loss_fn, trainer.optimizer))
    flats = _flat_states(optimizer)
    names, groups = layout.names, optimizer.param_groups
    sizes = (len(flats), len(flats), sum(map(len, names)), len(groups))
    before = _python_state(flats)

    def step(*inputs: torch.Tensor):
        data, grads, state, lrs = _split(list(inputs[:-2]), sizes)
        states = iter(state)
        for flat, d, g, ns in zip(flats, data, grads, names, strict=True):
            _rebind(flat, d.clone(), g.clone(), {n: next(states).clone() for n in ns})
        for group, lr in zip(groups, lrs, strict=True):
            group["lr"] = lr  # a 0-dim tensor: the optimizers' tensor-lr form
        value = loss_fn.forward(model(inputs[-2]), inputs[-1])  # forward: __call__ would wrap it (LossValue)
        optimizer.zero_grad()
        model.backward_parameters(loss_fn.backward())
        optimizer.step()
        out_state = [flat.tensors[n] for flat, ns in zip(flats, names, strict=True) for n in ns]
        return [f.group.data for f in flats], [f.group.grad for f in flats], out_state, value

    lrs = [torch.tensor(float(g["lr"]), dtype=x.dtype) for g in trainer.optimizer.param_groups]
    rng = torch.get_rng_state()  # a random op in the copy must not move the real run's generator
    try:
        with torch.inference_mode(False):
            graph = make_fx(step)(*layout.carry(), *lrs, x.clone(), t.clone())
    except Exception:
        _check_state(flats, names, before, type(optimizer).__name__)  # the reason, where it is the optimizer's
        raise
    finally:
        torch.set_rng_state(rng)
    _check_state(flats, names, before, type(optimizer).__name__)
    _check_graph(graph)
    return graph


def _split(values: list, sizes: tuple[int, ...]) -> list[list]:
    out, start = [], 0
    for n in sizes:
        out.append(values[start : start + n])
        start += n
    return out


def _rebind(flat: Any, data: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
    """Point the copy's flat group, its parameters' views and its optimizer state at new tensors."""
    group = flat.group
    group.data, group.grad = data, grad
    for p, d, g in zip(flat.params, group.views(data), group.views(grad), strict=True):
        p.data, p._grad = d, g
    group._bound = ([p.data for p in flat.params], [p._grad for p in flat.params])
    flat.tensors = {**flat.tensors, **state}


def _python_state(flats: list[Any]) -> list[dict[str, Any]]:
    return [{n: v for n, v in flat.tensors.items() if not isinstance(v, torch.Tensor)} for flat in flats]


def _check_state(flats: list[Any], names: list[list[str]], before: list, optimizer: str) -> None:
    """NotCapturable where the step made optimizer state or changed a Python number in it (Adam's count)."""
    if [sorted(flat.tensors) for flat in flats] != names or _python_state(flats) != before:
        raise NotCapturable(f"{optimizer} creates its state or counts steps in Python numbers during the step")


def _check_graph(graph: Any) -> None:
    """NotCapturable where the traced graph would silently differ from the eager step."""
    for node in graph.graph.nodes:
        tags = getattr(node.target, "tags", ()) if node.op == "call_function" else ()
        if torch.Tag.nondeterministic_seeded in tags:
            raise NotCapturable(f"the step draws random numbers ({node.target}; Dropout)")
    (outputs,) = [node.args[0] for node in graph.graph.nodes if node.op == "output"]
    leaves = pytree.tree_leaves(outputs)
    frozen = [leaf.target for leaf in leaves if getattr(leaf, "op", None) == "get_attr"]
    if frozen:
        raise NotCapturable(f"the trace froze output tensor(s) {frozen} into the graph as constants")
