"""A session's points: a generated data set, or the own data (clicked points, an uploaded CSV)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from minidl.playground.data import GENERATORS, RADIUS
from minidl.playground.setup import MAX_POINTS, Setup, SetupError

if TYPE_CHECKING:
    from minidl.playground.view import SessionView

MAX_CLASSES = 6


def session_data(session: SessionView, setup: Setup) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Raw points, targets and the half-width of the plane they lie in."""
    if setup.dataset != "custom":
        x, y = GENERATORS[setup.dataset](setup.points, setup.noise, setup.dseed)
        return x, y, RADIUS
    if len(session.custom) < 4:
        raise SetupError("own data: add at least 4 points (click the output plane) or upload a CSV file")
    raw = torch.tensor(session.custom, dtype=torch.float64)
    y = raw[:, 2] if setup.regression else raw[:, 2].long()
    extent = max(RADIUS, math.ceil(float(raw[:, :2].abs().max()) * 1.1))
    return raw[:, :2], y, extent


def add_point(session: SessionView, x: float, y: float, label: float) -> Setup:
    """Add a point (class ``label``, or a target value for regression) and rebuild on the own data.

    The first click on a generated data set starts the own data from its points (as ConvNetJS)."""
    setup = session.built.setup
    if not setup.regression and not (label == int(label) and 0 <= label < MAX_CLASSES):
        raise SetupError(f"points: class must be an integer from 0 to {MAX_CLASSES - 1}, got {label!r}")
    if setup.dataset != "custom":
        pairs = zip(session.points.tolist(), session.targets.tolist(), strict=True)
        session.custom = [(float(a), float(b), float(t)) for (a, b), t in pairs]
        session.class_names = []
    if len(session.custom) >= MAX_POINTS:
        raise SetupError(f"points: the own data holds at most {MAX_POINTS} points")
    session.custom.append((x, y, label))
    if len(session.custom) < 4:
        return setup
    session.rebuild(Setup.parse({"dataset": "custom"}, setup))
    return session.built.setup


def clear_points(session: SessionView) -> Setup:
    """Empty the own data (the network keeps training on the last data until 4 points are added)."""
    session.custom, session.class_names = [], []
    return session.built.setup


def upload_csv(session: SessionView, upload: tuple[list, list[str], bool]) -> Setup:
    """Train on an uploaded file's points (``upload.read_upload``); on error the old data stays."""
    points, names, regression = upload
    problem = "regression" if regression else "classification"
    setup = Setup.parse({"dataset": "custom", "problem": problem}, session.built.setup)
    old = session.custom, session.class_names
    session.custom, session.class_names = points, names
    try:
        session.rebuild(setup)
    except SetupError:
        session.custom, session.class_names = old
        raise
    return session.built.setup
