"""Adam (with AMSGrad and L2 weight decay): torch's Adam single-tensor rule, operation for operation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter
from minidl.optim.implementation import implementation_flags
from minidl.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam, step by step as torch's Adam (t counts this parameter's steps from 1)::

    g ← ∇θ + λ θ                                    (L2 weight_decay λ; AdamW decays θ instead)
    m ← m + (1 − β₁)(g − m),   v ← β₂ v + (1 − β₂) g²
    v̂ ← max(v̂, v) if amsgrad else v
    θ ← θ − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
    """

    decoupled_weight_decay = False  # AdamW sets it: θ ← θ(1 − lr·λ) replaces the L2 term in g

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        **implementation: Any,
    ) -> None:
        implementation_flags(type(self).__name__, implementation)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ConfigError(f"Invalid betas: expected a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ConfigError(f"Invalid beta parameter at index {i}: {beta}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._closure(closure)
        for index, group in enumerate(self.param_groups):
            lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for data, grad, state in self._targets(index):  # a flat buffer of parameters, or one parameter
                g = -grad if group["maximize"] else grad
                if not state:
                    state["step"] = 0.0
                    state["exp_avg"] = torch.zeros_like(data)
                    state["exp_avg_sq"] = torch.zeros_like(data)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(data)
                state["step"] += 1
                t = state["step"]
                if weight_decay != 0:
                    if self.decoupled_weight_decay:
                        data.mul_(1 - lr * weight_decay)
                    else:
                        g = g.add(data, alpha=weight_decay)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.lerp_(g, 1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                if group["amsgrad"]:
                    v = torch.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
                step_size = lr / (1 - beta1**t)
                denom = (v.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
                data.addcdiv_(m, denom, value=-step_size)
        return loss
