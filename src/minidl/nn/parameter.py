"""Parameter: a tensor that is trained, with the gradient that accumulates into it."""

from __future__ import annotations

import torch


class Parameter:
    """A trainable tensor ``data`` and its gradient ``grad`` of the same shape.

    ``grad`` starts at zero and accumulates (``+=``) over backward passes until ``zero_grad``.
    Layers update ``grad`` in place and never rebind it, so an optimizer may keep ``data`` and
    ``grad`` as views into one flat buffer.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: torch.Tensor) -> None:
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Parameter expects a torch.Tensor, got {type(data).__name__}")
        if not data.is_floating_point():
            raise TypeError(f"Parameter expects a floating-point tensor, got dtype {data.dtype}")
        self.data = data
        self.grad = torch.zeros_like(data)

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    def numel(self) -> int:
        return self.data.numel()

    def zero_grad(self) -> None:
        self.grad.zero_()

    def __repr__(self) -> str:
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, device={self.data.device})"
