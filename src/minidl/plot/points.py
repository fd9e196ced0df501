"""Figures of 2-D points: the data set (Figure 1) and the decision surface with the test points (Figure 3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from minidl.plot.style import MISTAKE, class_color, light_color, new_figure, png_bytes

Bounds = tuple[tuple[float, float], tuple[float, float]]
Circle = tuple[float, float, float]  # centre x, centre y, radius


def bounds_of(*xs: torch.Tensor, pad: float = 0.05) -> Bounds:
    """The bounding box of the points, widened by ``pad`` of its size on every side."""
    x = torch.cat([t.double() for t in xs])
    low, high = x.min(0).values, x.max(0).values
    margin = (high - low).clamp(min=1e-6) * pad
    low, high = low - margin, high + margin
    return (float(low[0]), float(high[0])), (float(low[1]), float(high[1]))


def _frame(ax: Any, bounds: Bounds, names: list[str]) -> None:
    ax.set_xlim(*bounds[0])
    ax.set_ylim(*bounds[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(names[0] if names else "x1")
    ax.set_ylabel(names[1] if len(names) > 1 else "x2")


def _circle(ax: Any, circle: Circle | None, label: str = "true boundary (the disk)") -> None:
    if circle is not None:
        from matplotlib.patches import Circle as Patch

        cx, cy, r = circle
        ax.add_patch(Patch((cx, cy), r, fill=False, color="black", linestyle="--", linewidth=1.5, label=label))


def _scatter(ax: Any, x: torch.Tensor, y: torch.Tensor, labels: list[str], size: float, alpha: float) -> None:
    for c, label in enumerate(labels):
        mask = y == c
        if bool(mask.any()):
            points = x[mask].double().numpy()
            ax.scatter(points[:, 0], points[:, 1], s=size, color=class_color(c), alpha=alpha, label=label)


def _legend(ax: Any) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, framealpha=0.9, fontsize=9)


def dataset_png(*args: Any, **kwargs: Any) -> bytes:
    return png_bytes(dataset_figure(*args, **kwargs))


def predictions_png(*args: Any, **kwargs: Any) -> bytes:
    return png_bytes(decision_figure(*args, **kwargs))


def dataset_figure(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    labels: list[str],
    title: str,
    bounds: Bounds,
    names: list[str] = (),
    circle: Circle | None = None,
) -> Any:
    """Figure 1: the training points coloured by class (``labels[i]`` names class i in the legend), with
    the true boundary where it is known."""
    figure = new_figure(8.6, 6.0)
    ax = figure.subplots()
    _scatter(ax, x, y, labels, size=12, alpha=0.8)
    _circle(ax, circle)
    _frame(ax, bounds, list(names))
    ax.set_title(title)
    _legend(ax)
    return figure


def decision_figure(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    predicted: torch.Tensor,
    *,
    labels: list[str],
    title: str,
    bounds: Bounds,
    names: list[str] = (),
    circle: Circle | None = None,
    resolution: int = 300,
) -> Any:
    """Figure 3: the model's decision regions over ``bounds``, the test points coloured by their true class,
    and a cross on every misclassified one."""
    figure = new_figure(8.6, 6.0)
    ax = figure.subplots()
    (x0, x1), (y0, y1) = bounds
    gx = torch.linspace(x0, x1, resolution, dtype=torch.float64)
    gy = torch.linspace(y0, y1, resolution, dtype=torch.float64)
    grid = torch.cartesian_prod(gy, gx).flip(1).to(x.dtype)  # rows of (x, y), row-major over y
    regions = predict(grid).reshape(resolution, resolution)
    k = max(len(labels), int(regions.max()) + 1)
    palette = torch.tensor([light_color(c) for c in range(k)], dtype=torch.float64)
    ax.imshow(palette[regions].numpy(), origin="lower", extent=(x0, x1, y0, y1), interpolation="nearest", zorder=0)
    if k == 2:
        ax.contour(gx.numpy(), gy.numpy(), regions.double().numpy(), levels=[0.5], colors="dimgray", linewidths=1.2)
        ax.plot([], [], color="dimgray", linewidth=1.2, label="decision boundary")
    _scatter(ax, x, y, labels, size=9, alpha=0.75)
    wrong = (predicted != y).nonzero().squeeze(1)
    if len(wrong):
        points = x[wrong].double().numpy()
        ax.scatter(points[:, 0], points[:, 1], label=f"misclassified ({len(wrong)})", **MISTAKE)
    _circle(ax, circle)
    _frame(ax, bounds, list(names))
    ax.set_title(title)
    _legend(ax)
    return figure
