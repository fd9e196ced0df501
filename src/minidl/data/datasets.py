"""Built-in 2-D data sets: seeded generators that return ``(x, labels)`` tensors.

Every generator has the signature ``(n, *, noise=..., seed=0, dtype=torch.float32)``, draws from its own
``torch.Generator`` (the global RNG is untouched), works in float64 and casts at the end, so the same
seed gives the same points on every machine. ``noise`` is the standard deviation of Gaussian jitter
added to the points after they are labelled (for blobs: the spread of each blob).
"""

from __future__ import annotations

import math

import torch

from minidl.checks import is_int
from minidl.errors import ConfigError

DISK_RADIUS = 1 / math.sqrt(2 * math.pi)  # the disk then covers half of the unit square

Data = tuple[torch.Tensor, torch.Tensor]


def _start(name: str, n: int, noise: float, seed: int) -> torch.Generator:
    if not is_int(n) or n < 1:
        raise ConfigError(f"{name}: number of points must be a positive integer, got {n!r}")
    if not (isinstance(noise, int | float) and math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"{name}: noise must be a finite number >= 0, got {noise!r}")
    return torch.Generator().manual_seed(seed)


def _balanced_labels(n: int, classes: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` labels in 0..classes-1, as equal in count as possible, in random order."""
    return (torch.arange(n) % classes)[torch.randperm(n, generator=generator)]


def _finish(x: torch.Tensor, labels: torch.Tensor, noise: float, generator: torch.Generator, dtype) -> Data:
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return x.to(dtype), labels


def disk(n: int = 1000, *, noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32) -> Data:
    """``n`` points uniform in [0, 1]²; label 1 inside the disk of centre (0.5, 0.5), radius 1/√(2π).

    Returns ``x`` of shape (n, 2) and integer ``labels`` of shape (n,). This is the EE-559 seed data.
    """
    generator = _start("disk", n, noise, seed)
    x = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    labels = ((x - 0.5).pow(2).sum(1) < DISK_RADIUS**2).long()
    return _finish(x, labels, noise, generator, dtype)


def circles(
    n: int = 1000, *, noise: float = 0.05, factor: float = 0.5, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Data:
    """Two concentric circles around the origin: radius 1 (label 0) and ``factor`` (label 1)."""
    generator = _start("circles", n, noise, seed)
    labels = _balanced_labels(n, 2, generator)
    angle = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    radius = torch.where(labels == 1, factor, 1.0).to(torch.float64)
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return _finish(x, labels, noise, generator, dtype)


def xor(n: int = 1000, *, noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32) -> Data:
    """Points uniform in [-1, 1]²; label 1 where the two coordinates have opposite signs."""
    generator = _start("xor", n, noise, seed)
    x = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
    labels = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).long()
    return _finish(x, labels, noise, generator, dtype)


def moons(n: int = 1000, *, noise: float = 0.1, seed: int = 0, dtype: torch.dtype = torch.float32) -> Data:
    """Two interleaving half circles (scikit-learn's ``make_moons`` shape): upper one label 0."""
    generator = _start("moons", n, noise, seed)
    labels = _balanced_labels(n, 2, generator)
    t = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    x = torch.where((labels == 1).unsqueeze(1), lower, upper)
    return _finish(x, labels, noise, generator, dtype)


def spirals(
    n: int = 1000,
    *,
    noise: float = 0.03,
    classes: int = 2,
    turns: float = 1.25,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> Data:
    """``classes`` interleaved spiral arms from the origin out to radius 1, ``turns`` turns each.

    Arm ``k`` is ``r (cos θ, sin θ)`` with ``θ = 2π (turns · r + k / classes)`` and ``r`` uniform in [0, 1].
    """
    generator = _start("spirals", n, noise, seed)
    if not is_int(classes) or classes < 2:
        raise ConfigError(f"spirals: classes must be an integer >= 2, got {classes!r}")
    labels = _balanced_labels(n, classes, generator)
    r = torch.rand(n, generator=generator, dtype=torch.float64)
    theta = 2 * math.pi * (turns * r + labels.to(torch.float64) / classes)
    x = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
    return _finish(x, labels, noise, generator, dtype)


def blobs(
    n: int = 1000, *, noise: float = 0.6, centers: int = 3, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Data:
    """Gaussian blobs of standard deviation ``noise`` around ``centers`` points evenly spaced on a circle
    of radius 2; the label is the blob's index."""
    generator = _start("blobs", n, noise, seed)
    if not is_int(centers) or centers < 2:
        raise ConfigError(f"blobs: centers must be an integer >= 2, got {centers!r}")
    labels = _balanced_labels(n, centers, generator)
    angle = 2 * math.pi * labels.to(torch.float64) / centers + math.pi / 2
    x = 2 * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return _finish(x, labels, noise, generator, dtype)


# name -> generator(n, *, noise=..., seed=..., dtype=...) returning (x, labels); the CLI reads this table
DATASETS = {"disk": disk, "circles": circles, "xor": xor, "moons": moons, "spirals": spirals, "blobs": blobs}
