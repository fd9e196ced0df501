"""gradcheck: compare a module's hand-written backward with central differences in float64.

Use it on every layer you write::

    layer = MyLayer(3, 4).double()
    minidl.gradcheck(layer, torch.randn(5, 3, dtype=torch.float64))

The scalar checked is ``L = Σ output · g`` for a fixed random ``g``, so every output element counts.
For a loss, ``L`` is the loss itself and only the gradient with respect to the prediction is checked.
"""

from __future__ import annotations

import warnings

import torch

from minidl.errors import MinidlError
from minidl.nn.loss import Loss
from minidl.nn.module import Module


class GradientCheckError(MinidlError, AssertionError):
    """The analytical gradient disagrees with the numerical one."""


def _scalar(module: Module, inputs: tuple[torch.Tensor, ...], g: torch.Tensor | None) -> float:
    out = module(*inputs)
    return float(out.sum() if g is None else (out * g).sum())


def _numerical(module, inputs, g, tensor: torch.Tensor, eps: float) -> torch.Tensor:
    """(L(t + eps) - L(t - eps)) / 2eps for every element of ``tensor``, perturbed in place."""
    flat = tensor.view(-1)
    grad = torch.zeros(flat.numel(), dtype=torch.float64)
    for i in range(flat.numel()):
        original = flat[i].item()
        flat[i] = original + eps
        plus = _scalar(module, inputs, g)
        flat[i] = original - eps
        minus = _scalar(module, inputs, g)
        flat[i] = original
        grad[i] = (plus - minus) / (2 * eps)
    return grad.view(tensor.shape)


def gradcheck(
    module: Module,
    *inputs: torch.Tensor,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the input gradients and every parameter gradient of ``module`` at ``inputs``.

    Returns True, or raises ``GradientCheckError`` naming the module, the input or the parameter (by
    its dotted name), the first index that disagrees and both values. For a ``Loss``, ``inputs`` is
    ``(prediction, target)`` and only the prediction's gradient is checked. The module must be
    deterministic: put layers such as Dropout in eval mode first.
    """
    tensors = [t for t in inputs if isinstance(t, torch.Tensor)]
    params = list(module.named_parameters())
    if any(t.is_floating_point() and t.dtype != torch.float64 for t in tensors) or any(
        p.dtype != torch.float64 for _, p in params
    ):
        warnings.warn(
            "gradcheck: inputs or parameters are not float64; central differences in lower precision "
            "give false alarms. Call module.double() and pass float64 inputs.",
            stacklevel=2,
        )
    is_loss = isinstance(module, Loss)
    output = module(*inputs)
    g = None
    if not is_loss or output.dim() > 0:
        gen = torch.Generator().manual_seed(seed)
        g = torch.randn(output.shape, generator=gen, dtype=torch.float64).to(output.dtype)
    module.zero_grad()
    module(*inputs)
    grad_input = module.backward() if is_loss and g is None else module.backward(g)

    checks: list[tuple[str, torch.Tensor, torch.Tensor]] = []
    first = inputs[0]
    if first.is_floating_point():
        checks.append(("input 0" if not is_loss else "input (prediction)", first, grad_input))
    checks += [(f"parameter {name!r}", p.data, p.grad.clone()) for name, p in params]
    for place, tensor, analytical in checks:
        numerical = _numerical(module, inputs, g, tensor, eps)
        analytical = analytical.to(torch.float64).cpu()
        if analytical.shape != numerical.shape:
            raise GradientCheckError(
                f"gradcheck {module._name()}: {place}: analytical gradient has shape {tuple(analytical.shape)}, "
                f"expected {tuple(numerical.shape)}"
            )
        bad = ~torch.isclose(analytical, numerical, rtol=rtol, atol=atol)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            raise GradientCheckError(
                f"gradcheck {module._name()}: {place} disagrees at index {index}: "
                f"numerical {numerical[index].item():.10g}, analytical {analytical[index].item():.10g} "
                f"({int(bad.sum())} of {bad.numel()} elements differ)"
            )
    return True
