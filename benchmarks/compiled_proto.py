"""A prototype of ``Trainer(..., compile=True)`` for the benchmarks' "minidl compiled" column (issue 15).

Not library code: it shows the design of docs/performance.md on minidl's real layers. minidl's own step
(``loss_fn(model(x), t)``, ``zero_grad``, ``backward_parameters``, ``optimizer.step()``) is traced once
by ``make_fx`` into one aten graph, on a throwaway copy of the model whose ``Parameter``s are rebound to
fresh copies of the carried weights, so the graph is pure: ``(weights, x, t) -> (weights, loss)``. An
epoch's full batches run as one ``torch._higher_order_ops.scan`` of that graph, compiled by inductor with
``cpp_wrapper=True`` (the loop is generated C++); a short last batch runs the traced graph once more.

Only optimizers without per-parameter state are captured: a Python number in the state (Adam's step
count) or state created on the first step (SGD's momentum buffer) would be baked into the graph as it was
at tracing time, a silent difference. Those raise ``NotCapturable``, the point where the real feature
falls back to eager with one line on stderr.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.utils._pytree as pytree
from torch import Tensor


class NotCapturable(Exception):
    """This step cannot be captured without changing its results; train eagerly."""


def trace_step(model, loss_fn, optimizer, x: Tensor, t: Tensor) -> Callable:
    """``make_fx`` of one minidl training step of ``model`` (a throwaway copy: its Parameters are rebound)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    if _has_state_rule(optimizer):
        raise NotCapturable(f"{type(optimizer).__name__} keeps per-parameter state the trace would freeze")
    parameters = list(model.parameters())

    def step(weights: list[Tensor], x: Tensor, t: Tensor):
        for p, w in zip(parameters, weights, strict=True):
            p.data, p.grad = w.clone(), torch.zeros_like(w)  # intermediates: the inputs are never mutated
        # forward, not loss_fn(...): outside inference mode __call__ wraps the value in LossValue (for its
        # teaching backward()), and as_subclass aliases outside the dispatcher, so make_fx would lose track
        # of it and return the first step's loss as a constant of the graph
        value = loss_fn.forward(model(x), t)
        optimizer.zero_grad()
        model.backward_parameters(loss_fn.backward())
        optimizer.step()
        return [p.data for p in parameters], value

    with torch.inference_mode(False):
        traced = make_fx(step)([p.data.clone() for p in parameters], x.clone(), t.clone())
    # an output that is a constant of the graph is a tensor the trace lost track of, baked in with its value
    # at tracing time (kept inputs of ops, as a loss's 0-dim 2/N or Linear's ones, are constants by design:
    # the graph is specialised to the batch shape it was traced with, as the Python numbers it records)
    (outputs,) = [node.args[0] for node in traced.graph.nodes if node.op == "output"]
    frozen = [leaf.target for leaf in pytree.tree_leaves(outputs) if getattr(leaf, "op", None) == "get_attr"]
    if frozen:
        raise NotCapturable(f"the trace froze output tensor(s) {frozen} into the graph as constants")
    return traced


def _has_state_rule(optimizer) -> bool:
    """SGD without momentum is the one stateless rule among minidl's optimizers."""
    if type(optimizer).__name__ != "SGD":
        return True
    return any(group.get("momentum", 0) for group in optimizer.param_groups)


def compile_epoch(traced: Callable, batch_size: int) -> Callable:
    """``run_epoch(weights, x, t) -> (weights, summed loss)`` over the epoch's batches in order."""
    import torch._inductor.config as inductor_config
    from torch._higher_order_ops.scan import scan

    inductor_config.cpp_wrapper = True  # the scan loop in generated C++, not Python: 6-7x instead of 2x

    def combine(carry, batch):
        new, loss = traced(list(carry), *batch)
        return tuple(new), loss

    def epoch(weights: tuple[Tensor, ...], xs: Tensor, ts: Tensor):
        return scan(combine, weights, (xs, ts))

    compiled = torch.compile(epoch, backend="inductor", dynamic=False, fullgraph=True)

    def run_epoch(weights: list[Tensor], x: Tensor, t: Tensor) -> tuple[list[Tensor], Tensor]:
        full = len(x) // batch_size * batch_size
        xs = x[:full].view(-1, batch_size, *x.shape[1:])
        ts = t[:full].view(-1, batch_size, *t.shape[1:])
        new, losses = compiled(tuple(weights), xs, ts)
        new, total = list(new), losses.sum() * batch_size
        if full < len(x):  # the short last batch
            new, value = traced(new, x[full:], t[full:])
            total = total + value * (len(x) - full)
        return new, total

    return run_epoch
