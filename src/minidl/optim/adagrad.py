"""Adagrad (with lr decay and weight decay): torch's Adagrad single-tensor rule (dense gradients)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter
from minidl.optim.implementation import implementation_flags
from minidl.optim.optimizer import Optimizer


class Adagrad(Optimizer):
    """Adagrad, step by step as torch's Adagrad (t counts this parameter's steps from 1)::

    g ← ∇θ + λ θ                                    (weight_decay λ)
    s ← s + g²                                      (s starts at initial_accumulator_value)
    θ ← θ − lr / (1 + (t − 1) · lr_decay) · g / (√s + ε)
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
        **implementation: Any,
    ) -> None:
        implementation_flags(type(self).__name__, implementation)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if not group["lr_decay"] >= 0.0:
            raise ConfigError(f"Invalid lr_decay value: {group['lr_decay']}")
        if not group["initial_accumulator_value"] >= 0.0:
            raise ConfigError(f"Invalid initial_accumulator_value value: {group['initial_accumulator_value']}")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._closure(closure)
        for index, group in enumerate(self.param_groups):
            lr, lr_decay, eps, weight_decay = group["lr"], group["lr_decay"], group["eps"], group["weight_decay"]
            for data, grad, state in self._targets(index):  # a flat buffer of parameters, or one parameter
                g = -grad if group["maximize"] else grad
                if not state:
                    state["step"] = 0.0
                    state["sum"] = torch.full_like(data, group["initial_accumulator_value"])
                state["step"] += 1
                if weight_decay != 0:
                    g = g.add(data, alpha=weight_decay)
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                s = state["sum"].addcmul_(g, g, value=1)
                data.addcdiv_(g, s.sqrt().add_(eps), value=-clr)
        return loss
