"""Training steps for a session: the trainer's ``run``, with the session's own RNG state and L1."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from minidl.playground.model import Built


def advance(built: Built, rng: torch.Tensor, steps: int | None = None, epochs: int | None = None) -> torch.Tensor:
    """``trainer.run(steps=...)`` or ``run(epochs=...)`` with torch's global RNG set to ``rng`` (dropout draws
    from it); returns the RNG state after, and puts the process's own state back.

    With L1 on, the steps go one at a time, each followed by its proximal step (``proximal_l1``).
    """
    setup, trainer = built.setup, built.trainer
    l1 = setup.reg_rate if setup.reg == "l1" else 0.0
    saved = torch.get_rng_state()
    torch.set_rng_state(rng)
    try:
        with torch.no_grad():
            if not l1:
                trainer.run(steps=steps) if epochs is None else trainer.run(epochs=epochs)
            else:
                goal = len(trainer.history) + (epochs or 0)
                for _ in range(steps or 10**9):
                    if trainer.run(steps=1) == 0:
                        break
                    proximal_l1(built, l1)
                    if epochs is not None and len(trainer.history) >= goal:
                        break
        return torch.get_rng_state()
    finally:
        torch.set_rng_state(saved)


def proximal_l1(built: Built, rate: float) -> None:
    """L1 on the weights as a proximal step: w <- sign(w) max(|w| - lr * rate, 0) (biases untouched).

    The soft threshold is the exact minimiser of lr * rate * |w| + (w - w_after_step)^2 / 2, so weights that
    the loss does not hold away from zero become exactly zero, as L1 promises.
    """
    lr = built.optimizer.param_groups[0]["lr"]
    for layer in built.linears:
        w = layer.weight.data
        w.copy_(w.sign() * (w.abs() - lr * rate).clamp_min(0))
