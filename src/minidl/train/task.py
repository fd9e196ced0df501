"""Task: what the targets are (binary, multiclass or regression) and how outputs become predictions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minidl.errors import DataError, ShapeError
from minidl.nn.loss import Loss

KINDS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Task:
    """``kind`` is one of binary, multiclass, regression; ``num_classes`` is 0 for regression."""

    kind: str
    num_classes: int = 0

    @staticmethod
    def infer(y: torch.Tensor) -> Task:
        """Integer labels are classification (binary with 2 classes), floating targets regression."""
        if y.is_floating_point():
            return Task("regression")
        if len(y) == 0 or int(y.min()) < 0:
            raise DataError("class labels must be non-negative integers")
        num_classes = max(int(y.max()) + 1, 2)
        return Task("binary" if num_classes == 2 else "multiclass", num_classes)

    @property
    def is_classification(self) -> bool:
        return self.kind != "regression"

    def out_features(self, loss: Loss, target_width: int = 1) -> int:
        """Output units the model needs: one for a binary task unless the loss takes class indices."""
        if self.kind == "regression":
            return target_width
        if self.kind == "binary" and not loss.class_index_target:
            return 1
        return self.num_classes

    def targets(self, y: torch.Tensor, loss: Loss, out_features: int, dtype: torch.dtype) -> torch.Tensor:
        """What the loss compares the model's output with: labels, a column of 0/1, or one-hot rows."""
        if self.kind == "regression":
            return (y if y.dim() == 2 else y.unsqueeze(1)).to(dtype)
        self.check_labels(y)
        if loss.class_index_target:
            return y.long()
        if out_features == 1:
            return y.to(dtype).unsqueeze(1)
        return _one_hot(y, out_features, dtype)

    def predict(self, output: torch.Tensor, loss: Loss) -> torch.Tensor:
        """Class labels from model outputs (threshold for one output, argmax for several)."""
        if self.kind == "regression":
            return output
        if output.shape[-1] == 1:
            return (output.squeeze(-1) > loss.decision_threshold).long()
        return output.argmax(-1)

    def check_labels(self, y: torch.Tensor) -> None:
        if y.is_floating_point() or y.dim() != 1:
            raise ShapeError(f"class labels must be a 1-D integer tensor, got {y.dtype} of shape {tuple(y.shape)}")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise DataError(
                f"class labels must lie in [0, {self.num_classes - 1}], "
                f"got values from {int(y.min())} to {int(y.max())}"
            )


def _one_hot(y: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    out = torch.zeros(len(y), num_classes, dtype=dtype, device=y.device)
    return out.scatter_(1, y.long().unsqueeze(1), 1.0)
