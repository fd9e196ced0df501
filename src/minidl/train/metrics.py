"""Metrics: confusion matrix, accuracy, precision, recall, F1 and (binary, with probabilities) ROC AUC;
MSE, RMSE, MAE, R² and the baseline MSE of predicting the training mean for regression."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from minidl.train.proba import roc_auc


def confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``m[i, j]`` counts samples of true class ``i`` predicted as class ``j``."""
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


@dataclass
class ClassificationMetrics:
    """Counts and scores. For two classes, class 1 is the positive one (TP, TN, FP, FN).

    ``per_class`` and ``auc`` are worked out when first read: ``Trainer.fit`` measures the training and
    validation sets after every epoch and reads only the accuracy there (ranking the scores for the AUC
    was ~1 % of benchmarks case 2)."""

    confusion: torch.Tensor
    loss: float | None = None
    # binary: P(class 1) per sample, for the AUC, or a function that makes them when the AUC is first read
    scores: torch.Tensor | Callable[[], torch.Tensor | None] | None = field(default=None, repr=False)
    labels: torch.Tensor | None = field(default=None, repr=False)  # the true classes, with ``scores``

    @classmethod
    def from_predictions(
        cls,
        predicted: torch.Tensor,
        labels: torch.Tensor,
        num_classes: int,
        loss: float | None = None,
        scores: torch.Tensor | Callable[[], torch.Tensor | None] | None = None,
    ) -> ClassificationMetrics:
        """``scores``: P(class 1) per sample of a binary task (or a function giving them), for the ROC AUC."""
        m = confusion_matrix(predicted, labels, num_classes)
        if scores is None or num_classes != 2:
            return cls(m, loss)
        return cls(m, loss, scores, labels.cpu())

    @functools.cached_property
    def per_class(self) -> list[dict[str, float]]:
        """Precision, recall, F1 and support of each class, from the confusion matrix."""
        m, per_class = self.confusion, []
        for c in range(m.shape[0]):
            tp, predicted_c, actual_c = int(m[c, c]), int(m[:, c].sum()), int(m[c].sum())
            precision, recall = _ratio(tp, predicted_c), _ratio(tp, actual_c)
            f1 = _ratio(2 * precision * recall, precision + recall)
            per_class.append({"precision": precision, "recall": recall, "f1": f1, "support": actual_c})
        return per_class

    @functools.cached_property
    def auc(self) -> float | None:
        """Binary, where the model gives P(class 1): the area under the ROC curve; else None."""
        scores = self.scores() if callable(self.scores) else self.scores
        return None if scores is None else roc_auc(scores.detach().cpu(), self.labels)

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
        if self.auc is not None:
            out["auc"] = self.auc
        return out


@dataclass
class RegressionMetrics:
    """Errors over every output element; R² as scikit-learn's ``r2_score`` (averaged over outputs).

    ``baseline_mse`` is the MSE of always predicting the training targets' mean: a model that does not
    beat it has learnt nothing. It is known where the training mean is (``with_baseline``).
    """

    mse: float
    mae: float
    loss: float | None = None
    r2: float = 0.0
    baseline_mse: float | None = None

    @classmethod
    def from_outputs(cls, output: torch.Tensor, target: torch.Tensor, loss: float | None = None) -> RegressionMetrics:
        diff = (output - target).double()
        return cls(diff.pow(2).mean().item(), diff.abs().mean().item(), loss, r2_score(output, target))

    @property
    def rmse(self) -> float:
        return math.sqrt(self.mse)

    def with_baseline(self, target: torch.Tensor, train_mean: torch.Tensor) -> RegressionMetrics:
        """These metrics and the MSE of predicting ``train_mean`` for every row of ``target``."""
        t = target.detach().cpu().double()
        t = t if t.dim() == 2 else t.unsqueeze(1)
        baseline = (t - train_mean.double().reshape(1, -1)).pow(2).mean().item()
        return dataclasses.replace(self, baseline_mse=baseline)

    def as_dict(self) -> dict[str, float | None]:
        out = {"loss": self.loss, "mse": self.mse, "rmse": self.rmse, "mae": self.mae, "r2": self.r2}
        if self.baseline_mse is not None:
            out["baseline_mse"] = self.baseline_mse
        return out


def target_mean(y: torch.Tensor) -> torch.Tensor:
    """The mean of regression targets per output column, in float64 on the CPU: shape (k,)."""
    y = y.detach().cpu().double()
    return (y if y.dim() == 2 else y.unsqueeze(1)).mean(0)


def r2_score(output: torch.Tensor, target: torch.Tensor) -> float:
    """1 - SS_res / SS_tot per output column, averaged; a constant column scores 1 if predicted exactly, else 0."""
    o, t = output.detach().double(), target.detach().double()
    o, t = (o if o.dim() == 2 else o.unsqueeze(1)), (t if t.dim() == 2 else t.unsqueeze(1))
    ss_res = (t - o).pow(2).sum(0)
    ss_tot = (t - t.mean(0)).pow(2).sum(0)
    exact = torch.where(ss_res == 0, 1.0, 0.0).to(ss_res)
    r2 = torch.where(ss_tot > 0, 1 - ss_res / ss_tot.clamp_min(torch.finfo(torch.float64).tiny), exact)
    return r2.mean().item()
