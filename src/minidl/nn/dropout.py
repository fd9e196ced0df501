"""Dropout: zero each element with probability p in training, scale the survivors by 1/(1 − p)."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError
from minidl.nn.module import Module


class Dropout(Module):
    """Inverted dropout: y = x · m / (1 − p), m ~ Bernoulli(1 − p) per element, in train mode only.

    In eval mode (``model.eval()``) it is the identity. The mask drawn in forward is the one backward
    uses. ``generator`` is a ``torch.Generator``, or an int seed for a new CPU generator of its own, or
    None to draw from torch's global RNG exactly as PyTorch's ``nn.Dropout`` does (the same
    ``torch.manual_seed`` then gives the same mask). The generator is kept as the ``generator``
    attribute so its state can be saved and restored.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | int | None = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"Dropout: dropout probability p must be in [0, 1], got p={p!r}")
        if isinstance(generator, int) and not isinstance(generator, bool):
            generator = torch.Generator().manual_seed(generator)
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise ConfigError(f"Dropout: generator must be a torch.Generator, an int seed or None, got {generator!r}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.numel() == 0:
            self.save_for_backward(None)  # identity, and no random number drawn (as torch)
            return x
        if self.p == 1:
            noise = torch.zeros((), dtype=x.dtype, device=x.device)  # every element dropped, nothing drawn (as torch)
        else:
            gen = self.generator
            if gen is None or gen.device == x.device:
                noise = torch.empty_like(x).bernoulli_(1 - self.p, generator=gen)
            else:  # a CPU generator drives a mask on another device: draw on the CPU, then move it
                noise = torch.empty(x.shape, dtype=x.dtype).bernoulli_(1 - self.p, generator=gen).to(x.device)
            noise.div_(1 - self.p)  # m / (1 − p), in x's dtype, as torch
        self.save_for_backward(noise)
        return x * noise

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        (noise,) = self.saved_for_backward()
        # dL/dx = g · m / (1 − p), the mask of this call's forward
        return grad_output if noise is None else grad_output * noise

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"
