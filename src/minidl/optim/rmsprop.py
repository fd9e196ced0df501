"""RMSprop (centered, with momentum and weight decay): torch's RMSprop single-tensor rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter
from minidl.optim.implementation import implementation_flags
from minidl.optim.optimizer import Optimizer


class RMSprop(Optimizer):
    """RMSprop, step by step as torch's RMSprop::

    g ← ∇θ + λ θ,   v ← α v + (1 − α) g²             (weight_decay λ, smoothing α)
    ḡ ← ḡ + (1 − α)(g − ḡ),   d ← √(v − ḡ²) + ε     if centered, else d ← √v + ε
    b ← μ b + g / d,   θ ← θ − lr · b                 if momentum μ > 0
    θ ← θ − lr · g / d                                otherwise
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
        **implementation: Any,
    ) -> None:
        implementation_flags(type(self).__name__, implementation)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not group["momentum"] >= 0.0:
            raise ConfigError(f"Invalid momentum value: {group['momentum']}")
        if not group["alpha"] >= 0.0:
            raise ConfigError(f"Invalid alpha value: {group['alpha']}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._closure(closure)
        for index, group in enumerate(self.param_groups):
            lr, alpha, eps, weight_decay, momentum = (
                group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
            )  # fmt: skip
            for data, grad, state in self._targets(index):  # a flat buffer of parameters, or one parameter
                g = -grad if group["maximize"] else grad
                if not state:
                    state["step"] = 0.0
                    state["square_avg"] = torch.zeros_like(data)
                    if momentum > 0:
                        state["momentum_buffer"] = torch.zeros_like(data)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(data)
                state["step"] += 1
                if weight_decay != 0:
                    g = g.add(data, alpha=weight_decay)
                v = state["square_avg"].mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    g_avg = state["grad_avg"].lerp_(g, 1 - alpha)
                    d = v.addcmul(g_avg, g_avg, value=-1).sqrt_().add_(eps)
                else:
                    d = v.sqrt().add_(eps)
                if momentum > 0:
                    b = state["momentum_buffer"].mul_(momentum).addcdiv_(g, d)
                    data.add_(b, alpha=-lr)
                else:
                    data.addcdiv_(g, d, value=-lr)
        return loss
