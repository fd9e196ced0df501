"""AdamW: Adam with decoupled weight decay, torch's AdamW rule (default weight_decay 1e-2)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from minidl.nn.parameter import Parameter
from minidl.optim.adam import Adam


class AdamW(Adam):
    """Adam whose weight decay shrinks θ directly instead of entering the moments::

    θ ← θ (1 − lr · λ)                              (decoupled weight_decay λ)
    m ← m + (1 − β₁)(∇θ − m),   v ← β₂ v + (1 − β₂) (∇θ)²
    v̂ ← max(v̂, v) if amsgrad else v
    θ ← θ − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Parameter] | Iterable[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        **implementation: Any,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, **implementation)
