"""The confusion matrix as an image, counts written in every cell."""

from __future__ import annotations

from typing import Any

import torch

from minidl.plot.style import new_figure, png_bytes


def confusion_png(confusion: torch.Tensor, *, classes: list[Any], title: str) -> bytes:
    return png_bytes(confusion_figure(confusion, classes=classes, title=title))


def confusion_figure(confusion: torch.Tensor, *, classes: list[Any], title: str, unit: str = "test samples") -> Any:
    """Rows are true classes, columns predicted classes; darker means more samples."""
    k = confusion.shape[0]
    names = [str(c) for c in classes] if len(classes) == k else [str(i) for i in range(k)]
    size = min(4.0 + 0.45 * k, 12.0)
    figure = new_figure(size + 1.2, size)
    ax = figure.subplots()
    counts = confusion.double()
    image = ax.imshow(counts.numpy(), cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=ax, shrink=0.8, label=unit)
    high = float(counts.max()) if counts.numel() else 0.0
    for i in range(k):
        for j in range(k):
            value = int(confusion[i, j])
            color = "white" if value > high / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=9 if k <= 12 else 7)
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    return figure
