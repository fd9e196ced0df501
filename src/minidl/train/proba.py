"""Class probabilities from a model's outputs, for the losses that model them; ROC curve and its AUC."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError
from minidl.nn.bce import BCELoss, BCEWithLogitsLoss
from minidl.nn.cross_entropy import CrossEntropyLoss
from minidl.nn.loss import Loss


def gives_probabilities(loss_fn: Loss) -> bool:
    """BCE (sigmoid outputs), BCE with logits and cross-entropy model probabilities; MSE and friends do not."""
    return isinstance(loss_fn, BCELoss | BCEWithLogitsLoss | CrossEntropyLoss)


def probabilities(output: torch.Tensor, loss_fn: Loss, num_classes: int) -> torch.Tensor:
    """``(N, num_classes)`` class probabilities, rows summing to 1.

    One output (binary): ``[1 - p, p]`` with ``p`` the sigmoid of a logit, or the output itself after
    BCE's sigmoid layer. Several outputs: softmax of cross-entropy's logits; sigmoid outputs
    (one-vs-rest BCE) are normalised to sum to 1, as scikit-learn does for one-vs-rest models.
    """
    if not gives_probabilities(loss_fn):
        raise ConfigError(
            f"a model trained with {type(loss_fn).__name__} gives scores, not probabilities "
            "(train with cross-entropy, bce-logits or bce to get them)"
        )
    # output: (N, 1) or (N, num_classes) -> (N, num_classes)
    if isinstance(loss_fn, CrossEntropyLoss):
        shifted = output - output.amax(-1, keepdim=True)  # softmax without overflow
        exp = shifted.exp()
        return exp / exp.sum(-1, keepdim=True)
    p = output.sigmoid() if isinstance(loss_fn, BCEWithLogitsLoss) else output.clamp(0.0, 1.0)
    if p.shape[-1] == 1 and num_classes == 2:
        return torch.cat([1 - p, p], dim=-1)
    return p / p.sum(-1, keepdim=True).clamp_min(torch.finfo(p.dtype).tiny)


def roc_curve(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """False and true positive rates, from (0, 0) to (1, 1), one point per distinct score (descending).

    ``labels`` are 0/1; class 1 is the positive one. Needs both classes present.
    """
    order = torch.argsort(scores.double(), descending=True, stable=True)
    s, y = scores.double()[order], labels.long()[order]
    tp, fp = y.cumsum(0).double(), (1 - y).cumsum(0).double()
    last = torch.ones(len(s), dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # the last sample of each run of equal scores is a threshold
    fpr = torch.cat([torch.zeros(1, dtype=torch.float64), fp[last] / fp[-1]])
    tpr = torch.cat([torch.zeros(1, dtype=torch.float64), tp[last] / tp[-1]])
    return fpr, tpr


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Area under the ROC curve (trapezoids, so ties count one half); None without both classes."""
    positives = int(labels.long().sum())
    if positives == 0 or positives == len(labels):
        return None
    fpr, tpr = roc_curve(scores, labels)
    return float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2).sum())


def binary_scores(output: torch.Tensor, loss_fn: Loss) -> torch.Tensor | None:
    """P(class 1) of a binary model whose loss gives probabilities (else None): what ROC and AUC rank."""
    if not gives_probabilities(loss_fn) or output.dim() != 2 or output.shape[-1] > 2:
        return None
    return probabilities(output, loss_fn, 2)[:, 1]
