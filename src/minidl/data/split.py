"""Seeded train / validation / test splits."""

from __future__ import annotations

import math

import torch

from minidl.errors import ConfigError


def split_indices(
    n: int, *, val_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random permutation of ``range(n)`` cut into train, validation and test index tensors.

    The sizes are ``round(n * test_fraction)`` and ``round(n * val_fraction)``; the training split keeps
    the rest and must not be empty. The permutation comes from its own generator seeded with ``seed``.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(value, int | float) and 0 <= value < 1):
            raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    if test_fraction > 0:
        n_test = max(n_test, 1)
    if val_fraction > 0:
        n_val = max(n_val, 1)
    if n - n_test - n_val < 1 or not math.isfinite(val_fraction + test_fraction):
        raise ConfigError(
            f"a split of {n} samples with val_fraction={val_fraction} and test_fraction={test_fraction} "
            "leaves no training samples"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]
