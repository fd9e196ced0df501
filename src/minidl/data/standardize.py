"""Standardizer: per-feature (x - mean) / std, fitted on the training split only."""

from __future__ import annotations

import torch

from minidl.errors import DataError


class Standardizer:
    """Fit ``mean`` and ``std`` on training features; apply the same transform to every split.

    A constant feature (std 0) is only centred. The statistics are stored with the model
    (``state_dict``) so predictions on new data use the training split's numbers.
    """

    def __init__(self, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> None:
        self.mean, self.std = mean, std

    def fit(self, x: torch.Tensor) -> Standardizer:
        if x.dim() != 2 or len(x) < 2:
            raise DataError(f"Standardizer.fit: needs a (N, features) tensor with N >= 2, got {tuple(x.shape)}")
        self.mean = x.mean(0)
        std = x.std(0)
        self.std = torch.where(std > 0, std, torch.ones_like(std))
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            raise DataError("Standardizer: call fit(x_train) before transforming data")
        if x.shape[-1] != self.mean.shape[0]:
            raise DataError(
                f"Standardizer: fitted on {self.mean.shape[0]} features, got input of shape {tuple(x.shape)}"
            )
        return (x - self.mean.to(x)) / self.std.to(x)

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.mean is None or self.std is None:
            return {}
        return {"mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.mean, self.std = state["mean"], state["std"]
