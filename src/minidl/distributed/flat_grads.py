"""flat_gradients: every parameter's grad as a view into one flat buffer, all-reduced in one collective.

Layers update ``Parameter.grad`` in place and never rebind it, so rebinding each grad to a slice of one
buffer is invisible to them. If an optimizer packed the grads already (minidl.optim.flat, aligned with
zero padding), that packing is reused, never replaced: its update reads the same memory.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter


def flat_gradients(params: Iterable[Parameter]) -> torch.Tensor:
    """One flat tensor that covers every parameter's ``grad``, packing the grads on the first call.

    Grads that already are views into one storage (packed here earlier, or by an optimizer, in any
    order and with zero padding between them) are reused: the tensor returned spans them, padding
    included. Otherwise a buffer is allocated, the grads are copied in and each ``Parameter.grad`` is
    rebound to its view; layers update grads in place, so the views stay live. Pass the same parameters
    every step (the optimizer's, so that a packing it made is the one reduced).
    """
    params = list(params)
    if not params:
        return torch.zeros(0)
    for p in params:
        p.grad_buffer()  # a grad that is None (zero_grad, or a rank with no rows) takes part as zeros
    kinds = {(p.grad.dtype, p.grad.device) for p in params}
    if len(kinds) > 1:
        found = ", ".join(sorted(f"{dtype} on {device}" for dtype, device in kinds))
        raise ConfigError(f"data-parallel training needs every parameter in one dtype and device, got {found}")
    span = _packed_span(params)
    if span is not None:
        return span
    if any(p.grad.untyped_storage().nbytes() > p.grad.numel() * p.grad.element_size() for p in params):
        raise ConfigError(
            "some gradients are views into a buffer that does not hold all of these parameters' gradients "
            "(packed by an optimizer over other parameters?): reduce the optimizer's parameters"
        )
    first = params[0].grad
    flat = torch.empty(sum(p.numel() for p in params), dtype=first.dtype, device=first.device)
    offset = 0
    for p in params:
        view = flat[offset : offset + p.numel()].view(p.shape)
        view.copy_(p.grad)
        p.grad = view
        offset += p.numel()
    return flat


def _packed_span(params: list[Parameter]) -> torch.Tensor | None:
    """The 1-D view from the first to the last grad when all grads tile one storage without overlap."""
    grads = sorted((p.grad for p in params if p.numel()), key=lambda g: g.storage_offset())
    if not grads:
        return None
    storage = grads[0].untyped_storage().data_ptr()
    end = grads[0].storage_offset()
    for g in grads:
        if g.untyped_storage().data_ptr() != storage or not g.is_contiguous() or g.storage_offset() < end:
            return None
        end = g.storage_offset() + g.numel()
    start = grads[0].storage_offset()
    return grads[0].as_strided((end - start,), (1,), start)
