"""The playground's data: TensorFlow Playground's 2-D sets and more, the input features, and the CSV.

Every generator takes ``(n, noise, seed)`` (noise in percent, 0..50, as the page's slider) and returns raw
points ``(n, 2)`` in float64 and targets: class indices (int64) or, for regression, values in [-1, 1]. Each
draws from its own ``torch.Generator``, so the same seed gives the same points. The model reads features
computed from the raw points (``features``), and the session hands them to minidl as a CSV file, the same
file the export writes next to ``config.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

RADIUS = 6.0  # the input plane is [-RADIUS, RADIUS]^2, as in TensorFlow Playground
Points = tuple[torch.Tensor, torch.Tensor]


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=g, dtype=torch.float64)


def circle(n: int, noise: float, seed: int) -> Points:
    """Class 1 inside radius 2.5, class 0 on a ring from 3.5 to 5; noise moves points before labelling."""
    g = torch.Generator().manual_seed(seed)
    inner = n // 2
    r = torch.cat([_uniform(inner, 0, 2.5, g), _uniform(n - inner, 3.5, 5, g)])
    angle = _uniform(n, 0, 2 * math.pi, g)
    x = torch.stack([r * torch.sin(angle), r * torch.cos(angle)], 1)
    x = x + _uniform(2 * n, -5, 5, g).reshape(n, 2) * (noise / 100)
    return x, (x.norm(dim=1) < 2.5 + 0.5).long()


def xor(n: int, noise: float, seed: int) -> Points:
    """Uniform in the four quadrants (kept 0.3 off the axes); class 1 where x1 and x2 share a sign."""
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n, -5, 5, g).reshape(n, 2)
    x = x + torch.where(x > 0, 0.3, -0.3)
    x = x + _uniform(2 * n, -5, 5, g).reshape(n, 2) * (noise / 100)
    return x, (x[:, 0] * x[:, 1] >= 0).long()


def _gaussians(n: int, centres: list[tuple[float, float]], spread: float, g: torch.Generator) -> Points:
    labels = torch.arange(n) % len(centres)
    centre = torch.tensor(centres, dtype=torch.float64)[labels]
    return centre + spread * torch.randn(n, 2, generator=g, dtype=torch.float64), labels


def gauss(n: int, noise: float, seed: int) -> Points:
    """Two Gaussians at (2, 2) (class 1) and (-2, -2) (class 0); noise widens them."""
    x, labels = _gaussians(n, [(-2.0, -2.0), (2.0, 2.0)], 0.5 + 3.5 * noise / 50, torch.Generator().manual_seed(seed))
    return x, labels


def blobs(n: int, noise: float, seed: int) -> Points:
    """Three Gaussians 120 degrees apart on a circle of radius 3.5 (three classes)."""
    centres = [(3.5 * math.cos(a), 3.5 * math.sin(a)) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
    return _gaussians(n, centres, 0.6 + 2.0 * noise / 50, torch.Generator().manual_seed(seed))


def _spiral(n: int, noise: float, seed: int, arms: int) -> Points:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % arms
    t = (torch.arange(n) // arms).to(torch.float64) / max(1, math.ceil(n / arms))
    r = 5 * t
    angle = 1.75 * t * 2 * math.pi + labels.to(torch.float64) * (2 * math.pi / arms)
    x = torch.stack([r * torch.sin(angle), r * torch.cos(angle)], 1)
    return x + _uniform(2 * n, -1, 1, g).reshape(n, 2) * (noise / 100) * 5, labels


def spiral(n: int, noise: float, seed: int) -> Points:
    """Two interleaved spiral arms, 1.75 turns each."""
    return _spiral(n, noise, seed, 2)


def spiral3(n: int, noise: float, seed: int) -> Points:
    """Three interleaved spiral arms (three classes)."""
    return _spiral(n, noise, seed, 3)


def plane(n: int, noise: float, seed: int) -> Points:
    """Regression: the target is (x1 + x2) / 12, in [-1, 1], plus noise on the target."""
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n, -RADIUS, RADIUS, g).reshape(n, 2)
    y = (x[:, 0] + x[:, 1]) / (2 * RADIUS) + _uniform(n, -1, 1, g) * (noise / 100)
    return x, y


BUMPS = [(-4.0, 2.5, 1.0), (0.0, 2.5, -1.0), (4.0, 2.5, 1.0), (-4.0, -2.5, -1.0), (0.0, -2.5, 1.0), (4.0, -2.5, -1.0)]


def multigauss(n: int, noise: float, seed: int) -> Points:
    """Regression: six Gaussian bumps of height +1 or -1 (the strongest one at each point), plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = _uniform(2 * n, -RADIUS, RADIUS, g).reshape(n, 2)
    centres = torch.tensor([b[:2] for b in BUMPS], dtype=torch.float64)
    signs = torch.tensor([b[2] for b in BUMPS], dtype=torch.float64)
    bumps = signs * torch.exp(-((x[:, None, :] - centres) ** 2).sum(-1) / 2)  # (n, 6)
    y = bumps.gather(1, bumps.abs().argmax(1, keepdim=True)).squeeze(1)
    return x, y + _uniform(n, -1, 1, g) * (noise / 100)


GENERATORS: dict[str, Callable[[int, float, int], Points]] = {
    "circle": circle,
    "xor": xor,
    "gauss": gauss,
    "spiral": spiral,
    "blobs": blobs,
    "spiral3": spiral3,
    "plane": plane,
    "multigauss": multigauss,
}
REGRESSION = {"plane", "multigauss"}

# name -> (label shown in the page, function of the raw points x1, x2)
FEATURES: dict[str, tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
    "x1": ("X1", lambda a, b: a),
    "x2": ("X2", lambda a, b: b),
    "x1sq": ("X1²", lambda a, b: a * a),
    "x2sq": ("X2²", lambda a, b: b * b),
    "x1x2": ("X1·X2", lambda a, b: a * b),
    "sinx1": ("sin X1", lambda a, b: torch.sin(a)),
    "sinx2": ("sin X2", lambda a, b: torch.sin(b)),
}


def features(points: torch.Tensor, names: list[str]) -> torch.Tensor:
    """``(n, 2)`` raw points -> ``(n, len(names))`` features, in the points' dtype."""
    a, b = points[:, 0], points[:, 1]
    return torch.stack([FEATURES[name][1](a, b) for name in names], 1)


def to_csv(points: torch.Tensor, targets: torch.Tensor, names: list[str], regression: bool) -> str:
    """The CSV minidl reads: one column per feature (named as ``names``), then ``label``.

    Values are written with ``repr`` of float64, which reads back to the same number.
    """
    x = features(points.to(torch.float64), names).tolist()
    lines = [",".join([*names, "label"])]
    for row, target in zip(x, targets.tolist(), strict=True):
        label = repr(float(target)) if regression else str(int(target))
        lines.append(",".join([*(repr(v) for v in row), label]))
    return "\n".join(lines) + "\n"
