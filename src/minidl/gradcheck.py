"""gradcheck: compare a module's hand-written backward with central differences in float64.

Use it on every layer you write::

    layer = MyLayer(3, 4).double()
    minidl.gradcheck(layer, torch.randn(5, 3, dtype=torch.float64))

The scalar checked is ``L = Σ output · g`` for a fixed random ``g``, so every output element counts.
For a loss with a 0-dim output, ``L`` is the loss itself. Randomness and state are frozen: before every
forward the global RNG, every ``torch.Generator`` held by a submodule (Dropout's ``generator``) and every
buffer (BatchNorm's running statistics) are restored, so Dropout draws the same mask each time and
BatchNorm1d can be checked in train mode. The module's buffers, gradients and the RNG states are left
as they were found.
"""

from __future__ import annotations

import itertools
import math
import warnings

import torch

from minidl.errors import MinidlError
from minidl.nn.grad_mode import no_grad
from minidl.nn.loss import Loss
from minidl.nn.module import Module


class GradientCheckError(MinidlError, AssertionError):
    """The analytical gradient disagrees with the numerical one."""


class _Frozen:
    """Snapshot of everything a forward may read or change besides its inputs: RNGs and buffers."""

    def __init__(self, module: Module, tensors: list[torch.Tensor]) -> None:
        self.cpu_rng = torch.get_rng_state()
        cuda = torch.cuda.is_available() and any(t.is_cuda for t in tensors)
        self.cuda_rng = torch.cuda.get_rng_state_all() if cuda else None
        self.generators = [
            (g, g.get_state()) for m in module.modules() for g in vars(m).values() if isinstance(g, torch.Generator)
        ]
        self.buffers = [(b, b.clone()) for _, b in module.named_buffers()]

    def restore(self) -> None:
        torch.set_rng_state(self.cpu_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        for generator, state in self.generators:
            generator.set_state(state)
        for buffer, saved in self.buffers:
            buffer.copy_(saved)


def _indices(shape: torch.Size):
    return itertools.product(*(range(n) for n in shape))


def _first_bad(bad: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in bad.nonzero()[0])


def gradcheck(
    module: Module,
    *inputs: torch.Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the input gradient and every parameter gradient of ``module`` at ``inputs``.

    Returns True, or raises ``GradientCheckError`` naming the module, the input or the parameter (by
    its dotted name), the first index that disagrees and both values. For a ``Loss``, ``inputs`` is
    ``(prediction, target)`` and only the prediction's gradient is checked. Warns when an input or a
    parameter is not float64, where central differences give false alarms.
    """
    params = list(module.named_parameters())
    floats = [t for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point()]
    if any(t.dtype != torch.float64 for t in floats) or any(p.dtype != torch.float64 for _, p in params):
        warnings.warn(
            f"gradcheck {module._name()}: inputs or parameters are not float64; central differences in lower "
            "precision give false alarms. Call module.double() and pass float64 inputs.",
            stacklevel=2,
        )
    inputs = tuple(t.clone() if isinstance(t, torch.Tensor) else t for t in inputs)  # never touch the caller's
    frozen = _Frozen(module, [t for t in inputs if isinstance(t, torch.Tensor)] + [p.data for _, p in params])
    saved_grads = [None if p.grad is None else p.grad.clone() for _, p in params]
    try:
        return _check(module, inputs, params, frozen, eps, atol, rtol, seed)
    finally:
        frozen.restore()
        for (_, p), grad in zip(params, saved_grads, strict=True):
            if grad is None:
                p.grad = None
            else:
                p.grad_buffer().copy_(grad)


def _check(module, inputs, params, frozen: _Frozen, eps, atol, rtol, seed) -> bool:
    where = f"gradcheck {module._name()}"
    frozen.restore()
    with no_grad():  # forwards that no backward uses record nothing
        output = module(*inputs)
    g = None
    if not isinstance(module, Loss) or output.dim() > 0:
        gen = torch.Generator().manual_seed(seed)
        g = torch.randn(output.shape, generator=gen, dtype=torch.float64).to(output.dtype).to(output.device)

    def scalar() -> float:
        frozen.restore()
        with no_grad():
            out = module(*inputs)
        return float(out.sum() if g is None else (out * g).sum())

    first_value, second_value = scalar(), scalar()
    if not math.isclose(first_value, second_value, rel_tol=1e-12, abs_tol=1e-12) and not (
        math.isnan(first_value) and math.isnan(second_value)
    ):
        raise GradientCheckError(
            f"{where}: two forwards at the same point differ ({first_value!r} and {second_value!r}); the module "
            "draws random numbers from a generator gradcheck cannot see (keep it as an attribute of the "
            "module) or keeps state that is not a buffer"
        )
    module.zero_grad()
    frozen.restore()
    module(*inputs)
    grad_input = module.backward() if g is None else module.backward(g)

    checks: list[tuple[str, torch.Tensor, object]] = []
    first = inputs[0]
    if isinstance(first, torch.Tensor) and first.is_floating_point():
        checks.append(("input (prediction)" if isinstance(module, Loss) else "input 0", first, grad_input))
    checks += [
        (f"parameter {name!r}", p.data, torch.zeros_like(p.data) if p.grad is None else p.grad.clone())
        for name, p in params
        if p.requires_grad
    ]
    for place, tensor, analytical in checks:
        _compare(f"{where}: {place}", tensor, analytical, scalar, eps, atol, rtol)
    return True


def _compare(
    where: str, tensor: torch.Tensor, analytical: object, scalar, eps: float, atol: float, rtol: float
) -> None:
    """Central differences of ``scalar`` over every element of ``tensor`` against the ``analytical`` gradient."""
    if not isinstance(analytical, torch.Tensor) or analytical.shape != tensor.shape:
        got = tuple(analytical.shape) if isinstance(analytical, torch.Tensor) else type(analytical).__name__
        raise GradientCheckError(f"{where}: analytical gradient has shape {got}, expected {tuple(tensor.shape)}")
    numerical = torch.zeros(tensor.shape, dtype=torch.float64)
    for index in _indices(tensor.shape):
        original = tensor[index].item()
        tensor[index] = original + eps
        plus = scalar()
        tensor[index] = original - eps
        minus = scalar()
        tensor[index] = original
        numerical[index] = (plus - minus) / (2 * eps)
    analytical = analytical.detach().to(device="cpu", dtype=torch.float64)
    bad = ~torch.isclose(analytical, numerical, rtol=rtol, atol=atol)
    if bad.any():
        index = _first_bad(bad)
        raise GradientCheckError(
            f"{where} disagrees at index {index}: numerical {numerical[index].item():.10g}, "
            f"analytical {analytical[index].item():.10g} ({int(bad.sum())} of {bad.numel()} elements differ)"
        )
