"""CrossEntropyLoss: log-softmax and negative log-likelihood in one step, on logits and class indices."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError, DataError, ShapeError
from minidl.nn.loss import Loss, check_weight
from minidl.nn.softmax import log_softmax


class CrossEntropyLoss(Loss):
    """Cross-entropy of logits x (N, C) against class indices t (N,), as PyTorch's nn.CrossEntropyLoss.

    With log p = x − logsumexp(x) (the maximum subtracted first), class weights w (default 1),
    smoothing ε and valid rows (t_i ≠ ignore_index)::

        ℓ_i = (1 − ε)·(−w_{t_i} log p_{i,t_i}) + (ε/C)·(−Σ_c w_c log p_{i,c})     (0 for ignored rows)
        mean: Σ_i ℓ_i / Σ_{valid i} w_{t_i}      sum: Σ_i ℓ_i      none: ℓ

    The mean divides both terms by the summed weights of the targets, as torch does.
    """

    class_index_target = True

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        *,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        ignore_index: int = -100,
    ) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", check_weight("CrossEntropyLoss", "weight", weight))
        if self.weight is not None and self.weight.dim() != 1:
            raise ConfigError(f"CrossEntropyLoss: weight must be 1-D (one per class), got shape {tuple(weight.shape)}")
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)):
            raise ConfigError(f"CrossEntropyLoss: label_smoothing must be a number, got {label_smoothing!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ConfigError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise ConfigError(f"CrossEntropyLoss: ignore_index must be an integer, got {ignore_index!r}")
        self.label_smoothing, self.ignore_index = float(label_smoothing), ignore_index
        self._cache: tuple[torch.Tensor, ...] | None = None

    def _check(self, input: torch.Tensor, target: torch.Tensor) -> None:
        if input.dim() != 2 or target.dim() != 1 or len(target) != len(input):
            raise ShapeError(
                f"{self._name()}: expected logits of shape (N, C) and class indices of shape (N,), "
                f"got input {tuple(input.shape)} and target {tuple(target.shape)}"
            )
        if not input.is_floating_point() or target.is_floating_point() or target.dtype == torch.bool:
            raise ShapeError(
                f"{self._name()}: expected floating logits and integer class indices, got {input.dtype} input "
                f"{tuple(input.shape)} and {target.dtype} target {tuple(target.shape)}"
            )
        num_classes = input.shape[1]
        if self.weight is not None and self.weight.shape != (num_classes,):
            raise ShapeError(
                f"{self._name()}: weight of shape {tuple(self.weight.shape)} does not give one weight to each "
                f"of the {num_classes} classes of input {tuple(input.shape)}"
            )
        bad = (target != self.ignore_index) & ((target < 0) | (target >= num_classes))
        if bad.any():
            raise DataError(
                f"{self._name()}: target {int(target[bad][0])} is out of bounds for {num_classes} classes "
                f"(valid: 0 to {num_classes - 1}, or ignore_index={self.ignore_index})"
            )

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # input: (N, C) logits, target: (N,) class indices -> 0-dim (or (N,) for reduction="none")
        self._check(input, target)
        num_classes, eps = input.shape[1], self.label_smoothing
        log_p = log_softmax(input, 1)
        valid = target != self.ignore_index
        index = torch.where(valid, target, 0).long().unsqueeze(1)  # ignored rows point at class 0, then masked
        w = None if self.weight is None else self.weight.to(device=input.device, dtype=input.dtype)
        w_target = valid.to(input.dtype) if w is None else w[index.squeeze(1)] * valid
        loss = -log_p.gather(1, index).squeeze(1) * w_target
        if eps > 0:
            smooth = -(log_p.sum(1) if w is None else (log_p * w).sum(1)) * valid
            loss = (1 - eps) * loss + (eps / num_classes) * smooth
        total_weight = w_target.sum()
        self._cache = (torch.exp(log_p), index, valid, w_target, total_weight, w)
        if self.reduction == "mean":
            return loss.sum() / total_weight
        return self._reduce(loss)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        p, index, valid, w_target, total_weight, w = self._cached(self._cache)
        num_classes, eps = p.shape[1], self.label_smoothing
        # d(−log p_c)/dx = p − onehot(c): the NLL term gives w_t (p − onehot(t)),
        # the smoothing term Σ_c w_c (p − onehot(c)) = (Σ_c w_c) p − w
        grad = (p - torch.zeros_like(p).scatter_(1, index, 1.0)) * w_target.unsqueeze(1)
        if eps > 0:
            smooth = num_classes * p - 1 if w is None else w.sum() * p - w
            grad = (1 - eps) * grad + (eps / num_classes) * smooth * valid.unsqueeze(1)
        if self.reduction == "mean":
            # ignored rows stay exactly 0, even when every row is ignored (total weight 0), as torch
            grad = torch.where(valid.unsqueeze(1), grad / total_weight, 0.0)
        if grad_output is not None:
            grad = grad * (grad_output.unsqueeze(1) if self.reduction == "none" else grad_output)
        return grad

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(part for part in parts if part)
