"""TargetScaler: regression targets standardised for training, predictions turned back into the data's units.

A network initialised for outputs near 0 learns a target of mean 150 and std 80 slowly (the diabetes
data set); the same network on ``(y - mean) / std`` learns at once. The statistics come from the training
split only and are stored with the model, so ``predict`` and ``evaluate`` undo the scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from minidl.errors import CheckpointError, DataError

TARGET_MEAN = "target.mean"  # regression: the training targets' mean (for the baseline MSE), in a model file
TARGET_STD = "target.std"  # regression on standardised targets: their std (with the mean, to undo it)


@dataclass
class TargetScaler:
    """Per-output ``mean`` and ``std`` of the training targets, float64 tensors of shape (k,)."""

    mean: torch.Tensor
    std: torch.Tensor

    @classmethod
    def fit(cls, y: torch.Tensor) -> TargetScaler:
        """The statistics of training targets ``y`` of shape (N,) or (N, k); a constant target is only centred."""
        y2 = _columns(y).double().cpu()
        if len(y2) < 2:
            raise DataError(f"TargetScaler.fit: needs at least 2 targets, got {len(y2)}")
        std = y2.std(0)
        return cls(y2.mean(0), torch.where(std > 0, std, torch.ones_like(std)))

    def transform(self, y: torch.Tensor) -> torch.Tensor:
        """``(y - mean) / std`` in ``y``'s dtype, device and shape (computed in float64)."""
        scaled = (_columns(y).double() - self.mean.to(y.device)) / self.std.to(y.device)
        return scaled.reshape(y.shape).to(y.dtype)

    def inverse(self, output: torch.Tensor) -> torch.Tensor:
        """``output * std + mean``: model outputs (N, k) back in the data's units, in the output's dtype."""
        return (output.double() * self.std.to(output.device) + self.mean.to(output.device)).to(output.dtype)


def _columns(y: torch.Tensor) -> torch.Tensor:
    return y if y.dim() == 2 else y.reshape(len(y), 1)


def read_target_stats(
    tensors: dict[str, torch.Tensor], out_features: int, source: str
) -> tuple[torch.Tensor | None, TargetScaler | None]:
    """A model file's training-target mean and, if it was trained on standardised targets, its scaler.

    Both are absent in classification models (and in files written before they existed); anything
    malformed is a ``CheckpointError`` naming ``source``.
    """
    unknown = sorted(k for k in tensors if k.startswith("target.") and k not in (TARGET_MEAN, TARGET_STD))
    if unknown:
        raise CheckpointError(f"{source}: unknown tensor(s) {', '.join(unknown)}")
    for key in (TARGET_MEAN, TARGET_STD):
        value = tensors.get(key)
        if value is not None and (value.shape != (out_features,) or not value.is_floating_point()):
            raise CheckpointError(f"{source}: {key} must hold {out_features} float(s)")
    mean, std = tensors.get(TARGET_MEAN), tensors.get(TARGET_STD)
    if std is None:
        return mean, None
    if mean is None or not bool((std > 0).all()):
        raise CheckpointError(f"{source}: {TARGET_STD} needs {TARGET_MEAN} and must be positive")
    return mean, TargetScaler(mean.double(), std.double())
