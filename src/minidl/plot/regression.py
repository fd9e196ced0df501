"""Regression: predicted against true values on the test set, with the line of perfect predictions."""

from __future__ import annotations

from typing import Any

import torch

from minidl.plot.style import class_color, new_figure, png_bytes


def regression_png(predicted: torch.Tensor, target: torch.Tensor, *, title: str, target_name: str = "target") -> bytes:
    return png_bytes(regression_figure(predicted, target, title=title, target_name=target_name))


def regression_figure(
    predicted: torch.Tensor,
    target: torch.Tensor,
    *,
    title: str,
    target_name: str = "target",
    label: str = "test samples",
) -> Any:
    """Predicted (y axis) against true values (x axis), and the diagonal of perfect predictions."""
    p, t = predicted.double().flatten(), target.double().flatten()
    figure = new_figure(6.0, 5.6)
    ax = figure.subplots()
    ax.scatter(t.numpy(), p.numpy(), s=12, alpha=0.7, color=class_color(0), label=label)
    low, high = float(torch.minimum(p.min(), t.min())), float(torch.maximum(p.max(), t.max()))
    ax.plot([low, high], [low, high], color="black", linestyle="--", linewidth=1.2, label="perfect prediction")
    ax.set_xlabel(f"true {target_name}")
    ax.set_ylabel(f"predicted {target_name}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return figure
