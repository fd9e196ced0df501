"""``minidl.no_grad()``: forwards that record nothing for backward (validation, logging, inference).

A minidl module records what its backward needs on every forward it makes while gradients are enabled
(one record per call, used by one backward). Inside ``no_grad()`` nothing is recorded, so a forward made
there never disturbs the backward of a forward made before it. minidl's own flag, per thread as torch's;
it never touches torch's autograd.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradMode(threading.local):
    enabled = True  # the default in every thread


MODE = _GradMode()


def is_grad_enabled() -> bool:
    """False inside ``minidl.no_grad()``."""
    return MODE.enabled


class no_grad:
    """Context manager (and decorator) in which forwards record nothing for backward, as torch.no_grad."""

    def __enter__(self) -> None:
        self._previous = MODE.enabled
        MODE.enabled = False

    def __exit__(self, *exc: object) -> None:
        MODE.enabled = self._previous

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
