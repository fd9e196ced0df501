"""torch.optim's implementation keywords (foreach, fused, capturable, differentiable), read by minidl's optimizers."""

from __future__ import annotations

from typing import Any

from minidl.errors import ConfigError


def implementation_flags(name: str, implementation: dict[str, Any]) -> None:
    """torch's ``foreach``, ``fused``, ``capturable``, ``differentiable``: accepted where they change nothing."""
    why = {
        "fused": "minidl already updates every parameter of a flat buffer in one operation",
        "capturable": "there are no CUDA graphs to capture in minidl",
        "differentiable": "minidl has no autograd to differentiate the step with",
    }
    for flag, value in implementation.items():
        if flag not in (*why, "foreach"):
            raise TypeError(f"{name}.__init__() got an unexpected keyword argument {flag!r}")
        if flag == "foreach" and value is not None and not isinstance(value, bool):
            raise ConfigError(f"{name}: foreach must be None, True or False, got {value!r}")
        if flag != "foreach" and value:
            raise ConfigError(f"{name}: {flag}=True is not supported ({why[flag]}); leave {flag} unset")
