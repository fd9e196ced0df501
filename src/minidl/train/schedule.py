"""Stepping a learning-rate scheduler once per epoch."""

from __future__ import annotations

import inspect
from typing import Any


def step_scheduler(scheduler: Any, metric: float) -> None:
    """``scheduler.step()``, or ``scheduler.step(metric)`` for schedulers that watch a metric."""
    if scheduler is None:
        return
    parameters = inspect.signature(scheduler.step).parameters
    if "metrics" in parameters or "metric" in parameters:
        scheduler.step(metric)
    else:
        scheduler.step()
