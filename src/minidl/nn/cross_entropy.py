"""CrossEntropyLoss: log-softmax and negative log-likelihood in one step, on logits and class indices."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError, DataError, ShapeError
from minidl.nn.loss import Loss, check_weight
from minidl.nn.softmax import log_softmax


class CrossEntropyLoss(Loss):
    """Cross-entropy of logits x against class indices t or class probabilities, as nn.CrossEntropyLoss.

    Shapes as torch: logits (N, C) with targets (N,), (N, C, d1, …) with (N, d1, …), or one sample (C,)
    with a 0-dim target; probability targets have the logits' shape. With log p = x − logsumexp(x) (the
    maximum subtracted first), class weights w (default 1), smoothing ε and valid elements (t_i ≠ ignore_index)::

        ℓ_i = (1 − ε)·(−w_{t_i} log p_{i,t_i}) + (ε/C)·(−Σ_c w_c log p_{i,c})     (0 for ignored elements)
        mean: Σ_i ℓ_i / Σ_{valid i} w_{t_i}      sum: Σ_i ℓ_i      none: ℓ
        probabilities y (smoothed to (1 − ε)y + ε/C): ℓ_i = −Σ_c w_c y_{i,c} log p_{i,c}, mean: Σ_i ℓ_i / M

    (M the number of elements i.) The class-index mean divides by the summed weights of the targets, as torch.
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

    def _flatten(self, input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Logits as (M, C) rows and targets as (M,) indices or (M, C) probabilities; True for probabilities."""
        probabilities = target.is_floating_point()
        batch_shape = tuple(input.shape[:1] + input.shape[2:]) if input.dim() > 1 else ()
        if probabilities and tuple(target.shape) != tuple(input.shape):
            raise ShapeError(
                f"{self._name()}: expected floating logits and integer class indices, got {input.dtype} input "
                f"{tuple(input.shape)} and {target.dtype} target {tuple(target.shape)} (class probabilities "
                "need the input's shape)"
            )
        if input.dim() == 0 or not input.is_floating_point() or target.dtype == torch.bool:
            raise ShapeError(
                f"{self._name()}: expected floating logits and integer class indices, got {input.dtype} input "
                f"{tuple(input.shape)} and {target.dtype} target {tuple(target.shape)}"
            )
        if not probabilities and tuple(target.shape) != batch_shape:
            raise ShapeError(
                f"{self._name()}: expected logits of shape (N, C) and class indices of shape (N,), got input "
                f"{tuple(input.shape)} and target {tuple(target.shape)} (also accepted: (N, C, d1, ...) with "
                "(N, d1, ...), and (C,) with ())"
            )
        num_classes = input.shape[0] if input.dim() == 1 else input.shape[1]
        if self.weight is not None and self.weight.shape != (num_classes,):
            raise ShapeError(
                f"{self._name()}: weight of shape {tuple(self.weight.shape)} does not give one weight to each "
                f"of the {num_classes} classes of input {tuple(input.shape)}"
            )
        rows = input.reshape(1, -1) if input.dim() == 1 else input.movedim(1, -1).reshape(-1, num_classes)
        if probabilities:
            return (
                rows,
                (target.reshape(1, -1) if input.dim() == 1 else target.movedim(1, -1).reshape(-1, num_classes)),
                True,
            )
        index = target.reshape(-1)
        bad = (index != self.ignore_index) & ((index < 0) | (index >= num_classes))
        if bad.any():
            raise DataError(
                f"{self._name()}: target {int(index[bad][0])} is out of bounds for {num_classes} classes "
                f"(valid: 0 to {num_classes - 1}, or ignore_index={self.ignore_index})"
            )
        return rows, index, False

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # input: (N, C, *) logits, target: (N, *) indices or (N, C, *) probabilities -> 0-dim (or (N, *) for "none")
        x, t, probabilities = self._flatten(input, target)
        num_classes, eps = x.shape[1], self.label_smoothing
        log_p = log_softmax(x, 1)
        w = None if self.weight is None else self.weight.to(device=x.device, dtype=x.dtype)
        if probabilities:
            y = t.to(x.dtype) * (1 - eps) + eps / num_classes if eps > 0 else t.to(x.dtype)
            wy = y if w is None else y * w
            loss = -(log_p * wy).sum(1)
            self.save_for_backward(input.shape, torch.exp(log_p), wy, None, None, None, w)
            total = loss.sum() / max(loss.numel(), 1) if self.reduction == "mean" else self._reduce(loss)
            return (
                total
                if self.reduction != "none"
                else loss.reshape(input.shape[:1] + input.shape[2:] if input.dim() > 1 else ())
            )
        valid = t != self.ignore_index
        index = torch.where(valid, t, 0).long().unsqueeze(1)  # ignored rows point at class 0, then masked
        w_target = valid.to(x.dtype) if w is None else w[index.squeeze(1)] * valid
        loss = -log_p.gather(1, index).squeeze(1) * w_target
        if eps > 0:
            smooth = -(log_p.sum(1) if w is None else (log_p * w).sum(1)) * valid
            loss = (1 - eps) * loss + (eps / num_classes) * smooth
        total_weight = w_target.sum()
        self.save_for_backward(input.shape, torch.exp(log_p), index, valid, w_target, total_weight, w)
        if self.reduction == "mean":
            return loss.sum() / total_weight
        return self._reduce(loss) if self.reduction == "sum" else loss.reshape(target.shape)

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        shape, p, index, valid, w_target, total_weight, w = self.saved_for_backward()
        num_classes, eps = p.shape[1], self.label_smoothing
        if valid is None:  # probabilities wy = w·y (index holds them): d(−Σ_c wy_c log p_c)/dx = (Σ_c wy_c) p − wy
            wy = index
            grad = wy.sum(1, keepdim=True) * p - wy
            if self.reduction == "mean":
                grad = grad / max(p.shape[0], 1)
        else:
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
            grad = grad * (grad_output.reshape(-1, 1) if self.reduction == "none" else grad_output)
        if len(shape) == 1:
            return grad.reshape(shape)
        return grad.reshape(shape[:1] + shape[2:] + shape[1:2]).movedim(-1, 1)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(part for part in parts if part)


def _rows(t: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C,) -> (1, C); (N, C, d1, ...) -> (N·d1·..., C), the class dimension last."""
    return t.reshape(1, -1) if t.dim() == 1 else t.movedim(1, -1).reshape(-1, num_classes)
