"""Built-in data sets: seeded generators that return ``(x, labels)`` tensors."""

from __future__ import annotations

import math

import torch

from minidl.errors import ConfigError

DISK_RADIUS = 1 / math.sqrt(2 * math.pi)  # the disk then covers half of the unit square


def _check_n(name: str, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{name}: number of points must be a positive integer, got {n!r}")


def disk(n: int = 1000, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points uniform in [0, 1]²; label 1 inside the disk of centre (0.5, 0.5), radius 1/√(2π).

    Returns ``x`` of shape (n, 2) and integer ``labels`` of shape (n,). The same seed gives the same
    points on every machine; the global RNG is untouched.
    """
    _check_n("disk", n)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    labels = ((x - 0.5).pow(2).sum(1) < DISK_RADIUS**2).long()
    return x.to(dtype), labels
