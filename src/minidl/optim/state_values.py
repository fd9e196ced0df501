"""How an optimizer's state_dict copies values out (``copied``) and back in (``cast_like``)."""

from __future__ import annotations

import copy
from typing import Any

import torch

_PLAIN = (int, float, bool, str, type(None))


def copied(value: Any) -> Any:
    """A deep copy of an option's value; numbers, strings and tuples of them are immutable, kept as they are
    (copy.deepcopy of a group took ~20 µs, and the Trainer takes a state_dict every epoch)."""
    if isinstance(value, _PLAIN) or (type(value) is tuple and all(isinstance(v, _PLAIN) for v in value)):
        return value
    return copy.deepcopy(value)


def cast_like(value: Any, param: torch.Tensor, name: str) -> Any:
    """State tensors are copied to the parameter's device and dtype; ``step`` becomes a float."""
    if name == "step":
        return float(value)
    if not isinstance(value, torch.Tensor):
        return copy.deepcopy(value)
    if not value.is_floating_point():
        return value.clone().to(device=param.device)
    return value.to(device=param.device, dtype=param.dtype, copy=True)
