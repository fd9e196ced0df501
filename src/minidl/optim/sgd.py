"""SGD with momentum, dampening, Nesterov and weight decay: torch's SGD rule."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter
from minidl.optim.implementation import implementation_flags
from minidl.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, step by step as torch's SGD::

    g ← ∇θ + λ θ                                   (weight_decay λ)
    b ← g                     on the first step    (no dampening then)
    b ← μ b + (1 − τ) g       after it             (momentum μ, dampening τ)
    g ← g + μ b  if nesterov  else  g ← b          (only when μ ≠ 0)
    θ ← θ − lr · g
    """

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
        **implementation: Any,
    ) -> None:
        implementation_flags(type(self).__name__, implementation)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _validate(self, group: dict[str, Any]) -> None:
        super()._validate(group)
        if group["momentum"] < 0.0:
            raise ConfigError(f"Invalid momentum value: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ConfigError("Nesterov momentum requires a momentum and zero dampening")

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = self._closure(closure)
        for index, group in enumerate(self.param_groups):
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            made = set()  # states whose buffer this step made: a parameter listed twice makes two, as torch
            for data, grad, state in self._targets(index):  # a flat buffer of parameters, or one parameter
                g = -grad if group["maximize"] else grad
                if weight_decay != 0:
                    g = g.add(data, alpha=weight_decay)
                if momentum != 0:
                    buf = None if id(state) in made else state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = g.clone()
                        made.add(id(state))
                    else:
                        buf.mul_(momentum).add_(g, alpha=1 - dampening)
                    g = g.add(buf, alpha=momentum) if nesterov else buf
                if isinstance(lr, torch.Tensor):  # the captured step (train/compiled_capture.py): lr is a
                    data.sub_(g * lr)  # graph input; g·lr rounds once more than add_'s alpha (≤ 1 ulp of it)
                else:
                    data.add_(g, alpha=-lr)
        return loss
