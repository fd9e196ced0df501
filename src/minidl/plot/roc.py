"""The ROC curve of a binary classifier: true against false positive rate, its area (AUC) in the legend."""

from __future__ import annotations

from typing import Any

import torch

from minidl.plot.style import class_color, new_figure, png_bytes


def roc_png(fpr: torch.Tensor, tpr: torch.Tensor, *, auc: float, title: str) -> bytes:
    return png_bytes(roc_figure(fpr, tpr, auc=auc, title=title))


def roc_figure(fpr: torch.Tensor, tpr: torch.Tensor, *, auc: float, title: str) -> Any:
    """The curve through ``(fpr, tpr)`` (from ``minidl.train.proba.roc_curve``) and the chance diagonal."""
    figure = new_figure(5.8, 5.4)
    ax = figure.subplots()
    ax.plot(fpr.double().numpy(), tpr.double().numpy(), color=class_color(0), linewidth=2, label=f"ROC (AUC {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="chance (AUC 0.5)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return figure
