"""Weight initialisation with PyTorch's nn.init formulas, so the same seed gives the same weights.

Each function fills a tensor in place from torch's global generator (or ``generator``) and returns it.
A ``Parameter`` may be passed for the tensor; its ``data`` is filled.
"""

from __future__ import annotations

import math
import warnings

import torch

from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def _tensor(tensor: torch.Tensor | Parameter) -> torch.Tensor:
    return tensor.data if isinstance(tensor, Parameter) else tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity: 1 (linear, sigmoid), 5/3 (tanh), √2 (relu),
    √(2 / (1 + slope²)) (leaky_relu, slope 0.01 by default), 3/4 (selu)."""
    if nonlinearity in _LINEAR or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, (int, float)):
            raise ConfigError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        else:
            slope = param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ConfigError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: torch.Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ConfigError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {tuple(tensor.shape)}"
        )
    receptive_field = math.prod(tensor.shape[2:]) if tensor.dim() > 2 else 1
    return tensor.size(1) * receptive_field, tensor.size(0) * receptive_field


def _fan(tensor: torch.Tensor, mode: str) -> int:
    mode = mode.lower() if isinstance(mode, str) else mode  # torch accepts "FAN_IN"
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None):
    """Fill with U(a, b)."""
    return _tensor(tensor).uniform_(a, b, generator=generator)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None):
    """Fill with N(mean, std²)."""
    return _tensor(tensor).normal_(mean, std, generator=generator)


def constant_(tensor, val: float):
    return _tensor(tensor).fill_(val)


def zeros_(tensor):
    return _tensor(tensor).zero_()


def ones_(tensor):
    return _tensor(tensor).fill_(1.0)


def xavier_uniform_(tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """U(-a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    t = _tensor(tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return t.uniform_(-bound, bound, generator=generator)


def xavier_normal_(tensor, gain: float = 1.0, generator: torch.Generator | None = None):
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    t = _tensor(tensor)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(t)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return t.normal_(0.0, std, generator=generator)


def kaiming_uniform_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
):
    """U(-bound, bound) with bound = gain · √(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    t = _tensor(tensor)
    if t.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    bound = math.sqrt(3.0) * std
    return t.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
):
    """N(0, std²) with std = gain / √fan, gain = calculate_gain(nonlinearity, a)."""
    t = _tensor(tensor)
    if t.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return t
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return t.normal_(0.0, std, generator=generator)
