"""Shared figure machinery: a pyplot-free Agg figure, PNG bytes, and one colour per class everywhere.

matplotlib is imported inside the functions, so ``import minidl`` never imports it, and no global
backend is switched: each figure gets its own Agg canvas, so no display is ever needed. In Jupyter the
figure still shows inline: it gives IPython its PNG (``_repr_png_``), whatever backend is active.
"""

from __future__ import annotations

import functools
import io
from typing import Any

# matplotlib's tab10: class i has the same colour in every figure of a run
CLASS_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
MISTAKE = dict(marker="x", color="black", s=36, linewidths=1.4, zorder=4)
DPI = 110


def class_color(index: int) -> str:
    return CLASS_COLORS[index % len(CLASS_COLORS)]


def light_color(index: int, strength: float = 0.28) -> tuple[float, float, float]:
    """The class colour mixed with white, for filled regions under the points."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(class_color(index))
    return (1 - strength + strength * r, 1 - strength + strength * g, 1 - strength + strength * b)


@functools.cache
def _figure_class() -> type:
    from matplotlib.figure import Figure

    class InlineFigure(Figure):
        """A ``Figure`` that Jupyter displays as its PNG, with no pyplot and no global backend."""

        def _repr_png_(self) -> bytes:
            return png_bytes(self)

    return InlineFigure


def new_figure(width: float, height: float) -> Any:
    """A matplotlib ``Figure`` on its own Agg canvas (no pyplot, no display; inline in Jupyter)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = _figure_class()(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
