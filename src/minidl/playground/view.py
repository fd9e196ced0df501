"""What the frame renderer and the own-data helpers read and set of a playground ``Session``.

A protocol rather than the class, so that ``session.py`` can import them without their importing it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from minidl.playground.model import Built


class SessionView(Protocol):
    built: Built | None
    points: torch.Tensor  # the data set's points and targets, as the page shows them
    targets: torch.Tensor
    extent: float
    custom: list[tuple[float, float, float]]  # points added by clicks or an upload
    class_names: list[str]
    version: int
    seq: int
    playing: bool
    grad_norms: list[float]
    edits: list[str]
    _grid: torch.Tensor
