"""Small square images (the 8×8 digits) in a grid, titled with their labels or predictions."""

from __future__ import annotations

import math
from typing import Any

import torch

from minidl.plot.style import new_figure, png_bytes


def images_png(
    x: torch.Tensor,
    titles: list[str],
    *,
    title: str,
    wrong: list[bool] | None = None,
    columns: int = 10,
) -> bytes:
    """Rows of ``x`` as square grey images (0 = white), each titled; titles in red where ``wrong`` says so.

    The images are tiled into one mosaic drawn on a single axes (one axes per image is ten times slower).
    """
    n, side = len(x), math.isqrt(x.shape[1])
    rows = max(1, math.ceil(n / columns))
    gap, head = 1, 4  # blank pixels between tiles, and above each tile for its title
    cell_w, cell_h = side + gap, side + head
    mosaic = torch.zeros(rows * cell_h, columns * cell_w, dtype=torch.float64)
    for i in range(n):
        r, c = divmod(i, columns)
        top, left = r * cell_h + head, c * cell_w
        mosaic[top : top + side, left : left + side] = x[i].double().reshape(side, side)
    figure = new_figure(1.0 * columns, 1.25 * rows + 0.4)
    ax = figure.subplots()
    ax.imshow(mosaic.numpy(), cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i in range(n):
        r, c = divmod(i, columns)
        bad = wrong is not None and wrong[i]
        ax.text(
            c * cell_w + side / 2 - 0.5,
            r * cell_h + head - 1.2,
            titles[i],
            ha="center",
            va="bottom",
            fontsize=8,
            color="red" if bad else "black",
        )
    ax.set_axis_off()
    ax.set_title(title)
    return png_bytes(figure)


def label_titles(labels: torch.Tensor, classes: list[Any]) -> list[str]:
    return [str(classes[int(i)]) if int(i) < len(classes) else str(int(i)) for i in labels]
