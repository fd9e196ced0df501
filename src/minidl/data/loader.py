"""DataLoader: mini-batches of ``(x, y)`` tensors, optionally shuffled by a seeded generator."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from minidl.checks import is_int
from minidl.errors import ConfigError, ShapeError


class DataLoader:
    """Iterate over ``(x[i:i+b], y[i:i+b])`` batches; a new permutation every epoch when shuffling.

    The permutation comes from the loader's own ``torch.Generator`` seeded with ``seed``, so the batch
    order is reproducible and independent of the global RNG. Each epoch gathers the data once in the
    shuffled order and yields views, so a batch costs no copy.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int = 1,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if not is_int(batch_size) or batch_size < 1:
            raise ConfigError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if len(x) != len(y):
            raise ShapeError(f"DataLoader: x has {len(x)} samples but y has {len(y)}")
        if len(x) == 0:
            raise ConfigError("DataLoader: the data set is empty")
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        x, y = self.x, self.y
        if self.shuffle:
            order = torch.randperm(len(x), generator=self.generator).to(x.device)
            x, y = x[order], y[order]
        n = len(self)  # batches; with drop_last the short one at the end is left out
        yield from zip(x.split(self.batch_size)[:n], y.split(self.batch_size)[:n], strict=True)  # views, one call each
