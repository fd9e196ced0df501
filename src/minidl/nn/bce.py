"""Binary cross-entropy, on probabilities (BCELoss) and on logits (BCEWithLogitsLoss)."""

from __future__ import annotations

import torch

from minidl.errors import DataError
from minidl.nn.loss import Loss, check_weight

# torch clamps BCELoss's gradient denominator at 1e-12 as a float32 constant: 9.99999996e-13 in every dtype
_EPSILON = float(torch.tensor(1e-12, dtype=torch.float32))


class BCELoss(Loss):
    """−w·[y·log x + (1 − y)·log(1 − x)] on probabilities x ∈ [0, 1]; each log is clamped at −100, as torch.

    ``weight`` (optional) rescales each element and must broadcast to the input's shape.
    """

    def __init__(self, weight: torch.Tensor | None = None, *, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", check_weight("BCELoss", "weight", weight))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check_same_shape(input, target)
        self._check_floating(input, target)
        for name, tensor in (("input", input), ("target", target)):
            outside = (tensor < 0) | (tensor > 1) | torch.isnan(tensor)
            if outside.any():
                raise DataError(
                    f"{self._name()}: every {name} element must be a probability in [0, 1], "
                    f"got {tensor[outside][0].item()!r} (pass logits to BCEWithLogitsLoss instead)"
                )
        w = self._broadcast("weight", self.weight, input)
        loss = (target - 1) * torch.log1p(-input).clamp(min=-100) - target * torch.log(input).clamp(min=-100)
        self.save_for_backward(input, target, w)
        return self._reduce(loss if w is None else loss * w)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        x, y, w = self.saved_for_backward()
        # dL/dx = w (x − y) / (x (1 − x)), the denominator clamped at torch's EPSILON (finite at x = 0 or 1)
        local = (x - y) / (x * (1 - x)).clamp(min=_EPSILON)
        return self._chain(local if w is None else local * w, grad_output)


class BCEWithLogitsLoss(Loss):
    """−w·[p·y·log σ(x) + (1 − y)·log(1 − σ(x))] on logits x, p the ``pos_weight`` (default 1).

    Written as (1 − y)·x − (1 + (p − 1)·y)·log σ(x) with log σ(x) = −softplus(−x), which is finite for
    any x. ``weight`` and ``pos_weight`` must broadcast to the input's shape (``pos_weight`` of shape
    (C,) weighs the positives of each of C outputs). A single output above 0 means class 1.
    """

    decision_threshold = 0.0

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        pos_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", check_weight("BCEWithLogitsLoss", "weight", weight))
        self.register_buffer("pos_weight", check_weight("BCEWithLogitsLoss", "pos_weight", pos_weight))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._check_same_shape(input, target)
        self._check_floating(input, target)
        w = self._broadcast("weight", self.weight, input)
        pw = self._broadcast("pos_weight", self.pos_weight, input)
        if pw is None:
            # (1 − y)x − log σ(x) = max(x, 0) − x·y + log(1 + e^(−|x|)): the same value, no Python number
            loss = torch.addcmul(input.relu(), input, target, value=-1) + torch.log1p(torch.exp(-input.abs()))
            self.save_for_backward(torch.sigmoid(input), target, w)
        else:
            log_sigmoid = -(torch.clamp(-input, min=0) + torch.log1p(torch.exp(-input.abs())))  # −softplus(−x)
            log_weight = 1 + (pw - 1) * target
            loss = (1 - target) * input - log_weight * log_sigmoid
            self.save_for_backward(torch.sigmoid(input), target, w, log_weight, pw * target)
        return self._reduce(loss if w is None else loss * w)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        s, y, w, *pos = self.saved_for_backward()
        # dL/dx = σ(x) − y, or (1 + (p − 1) y) σ(x) − p y with pos_weight p; times w
        local = s - y if not pos else pos[0] * s - pos[1]
        return self._chain(local if w is None else local * w, grad_output)
