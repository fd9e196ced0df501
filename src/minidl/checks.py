"""Value checks shared by every layer: Python's bool is an int, and a count or an index must not be one."""

from __future__ import annotations

import math
from typing import Any


def is_int(value: Any) -> bool:
    """An ``int`` that is not a ``bool`` (``True`` is not a batch size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An ``int`` or ``float`` that is not a ``bool``, finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
