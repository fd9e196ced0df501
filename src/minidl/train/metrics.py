"""Metrics: confusion matrix, accuracy, precision, recall and F1; MSE and MAE for regression."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``m[i, j]`` counts samples of true class ``i`` predicted as class ``j``."""
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass
class ClassificationMetrics:
    """Counts and scores. For two classes, class 1 is the positive one (TP, TN, FP, FN)."""

    confusion: torch.Tensor
    loss: float | None = None
    per_class: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def from_predictions(
        cls, predicted: torch.Tensor, labels: torch.Tensor, num_classes: int, loss: float | None = None
    ) -> ClassificationMetrics:
        m = confusion_matrix(predicted, labels, num_classes)
        per_class = []
        for c in range(num_classes):
            tp, predicted_c, actual_c = int(m[c, c]), int(m[:, c].sum()), int(m[c].sum())
            precision, recall = _ratio(tp, predicted_c), _ratio(tp, actual_c)
            f1 = _ratio(2 * precision * recall, precision + recall)
            per_class.append({"precision": precision, "recall": recall, "f1": f1, "support": actual_c})
        return cls(m, loss, per_class)

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return _ratio(int(self.confusion.diagonal().sum()), self.total)

    @property
    def tp(self) -> int:
        return int(self.confusion[1, 1])

    @property
    def tn(self) -> int:
        return int(self.confusion[0, 0])

    @property
    def fp(self) -> int:
        return int(self.confusion[0, 1])

    @property
    def fn(self) -> int:
        return int(self.confusion[1, 0])

    def _positive(self, key: str) -> float:
        """Binary: the score of class 1. Multi-class: the macro average over classes."""
        if len(self.per_class) == 2:
            return self.per_class[1][key]
        return sum(c[key] for c in self.per_class) / len(self.per_class)

    @property
    def precision(self) -> float:
        return self._positive("precision")

    @property
    def recall(self) -> float:
        return self._positive("recall")

    @property
    def f1(self) -> float:
        return self._positive("f1")

    def as_dict(self) -> dict[str, float | int | None]:
        out: dict[str, float | int | None] = {"loss": self.loss, "accuracy": self.accuracy}
        if len(self.per_class) == 2:
            out.update(tp=self.tp, tn=self.tn, fp=self.fp, fn=self.fn)
        out.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return out


@dataclass
class RegressionMetrics:
    """Mean squared and mean absolute error over every output element."""

    mse: float
    mae: float
    loss: float | None = None

    @classmethod
    def from_outputs(cls, output: torch.Tensor, target: torch.Tensor, loss: float | None = None) -> RegressionMetrics:
        diff = (output - target).double()
        return cls(diff.pow(2).mean().item(), diff.abs().mean().item(), loss)

    def as_dict(self) -> dict[str, float | None]:
        return {"loss": self.loss, "mse": self.mse, "mae": self.mae}
