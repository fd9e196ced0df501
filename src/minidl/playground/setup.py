"""The page's setup: every control value, checked on the server, and what it means as a minidl config.

``Setup.parse(values)`` takes what the page sends (JSON values, or the strings of a URL) and returns a
checked setup or raises ``SetupError`` naming the control and the value. The page keeps the whole setup in
its URL, so a link reproduces it; ``to_query`` writes that URL form.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from minidl.nn.mlp import ACTIVATIONS
from minidl.playground.data import FEATURES, GENERATORS, REGRESSION

MAX_LAYERS, MAX_NEURONS, MAX_POINTS, MAX_BATCH = 6, 16, 2000, 500
CLASSIFICATION_LOSSES = ("mse", "bce", "bce-logits", "cross-entropy")
REGRESSION_LOSSES = ("mse", "mae", "huber")
OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "exponential", "cosine")
ACTIVATION_NAMES = tuple(name for name in ACTIVATIONS if name != "identity")
DATASETS = (*GENERATORS, "custom")
LIVE = {"lr", "reg_rate"}  # applied to the running optimizer; every other change rebuilds the network


class SetupError(ValueError):
    """A control value the server refuses: the message names the control and the value."""


@dataclass(frozen=True)
class Setup:
    dataset: str = "circle"
    noise: int = 0
    ratio: int = 50  # percent of the points used for training
    points: int = 500
    batch: int = 10
    dseed: int = 0  # the data's seed ("regenerate" draws new points)
    seed: int = 0  # the split's and the weights' seed, as minidl train's seed
    features: tuple[str, ...] = ("x1", "x2")
    layers: tuple[int, ...] = (4, 2)
    acts: tuple[str, ...] = ("tanh", "tanh")
    loss: str = "mse"
    optim: str = "sgd"
    lr: float = 0.03
    momentum: float = 0.0
    reg: str = "none"  # none, l1, l2
    reg_rate: float = 0.0
    sched: str = "none"
    dropout: float = 0.0
    bn: bool = False
    std: bool = True  # standardise the features with the training split's mean and std
    problem: str = field(default="classification")

    @property
    def regression(self) -> bool:
        return self.problem == "regression"

    @classmethod
    def parse(cls, values: dict[str, Any], base: Setup | None = None) -> Setup:
        """``base`` (default: the defaults) with ``values`` applied, every value checked."""
        if not isinstance(values, dict):
            raise SetupError(f"expected an object of control values, got {type(values).__name__}")
        base = base if base is not None else cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SetupError(f"unknown control {unknown[0]!r}")
        changes = {key: PARSERS[key](key, value) for key, value in values.items()}
        setup = replace(base, **changes)
        if "dataset" in changes and setup.dataset != "custom":
            setup = replace(setup, problem="regression" if setup.dataset in REGRESSION else "classification")
        fits = REGRESSION_LOSSES if setup.regression else CLASSIFICATION_LOSSES
        if "loss" not in changes and setup.loss not in fits:  # a new problem type: the loss both share
            setup = replace(setup, loss="mse")
        if "optim" in changes and "momentum" not in changes and setup.optim not in ("sgd", "rmsprop"):
            setup = replace(setup, momentum=0.0)
        if "layers" in changes and "acts" not in changes:  # new layers take the last layer's activation
            last = setup.acts[-1] if setup.acts else "tanh"
            setup = replace(setup, acts=tuple((*setup.acts, *[last] * len(setup.layers)))[: len(setup.layers)])
        return setup.check()

    def check(self) -> Setup:
        if len(self.acts) != len(self.layers):
            raise SetupError(f"acts: one activation per hidden layer ({len(self.layers)}), got {len(self.acts)}")
        losses = REGRESSION_LOSSES if self.regression else CLASSIFICATION_LOSSES
        if self.loss not in losses:
            raise SetupError(f"loss {self.loss!r} does not fit {self.problem}; choose from {', '.join(losses)}")
        if self.momentum and self.optim not in ("sgd", "rmsprop"):
            raise SetupError(f"momentum: optimizer {self.optim!r} has no momentum (sgd and rmsprop do)")
        if self.dataset in REGRESSION and self.problem != "regression":
            raise SetupError(f"data set {self.dataset!r} is a regression data set")
        if self.dataset in GENERATORS and self.dataset not in REGRESSION and self.regression:
            raise SetupError(f"data set {self.dataset!r} is a classification data set")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_query(self) -> str:
        """The URL form, ``key=value&...``; lists are comma-separated."""
        parts = []
        for key, value in self.to_dict().items():
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value).lower()
            parts.append(f"{key}={text}" if not isinstance(value, float) else f"{key}={value!r}")
        return "&".join(parts)


def _int(low: int, high: int, what: str):
    def parse(key: str, value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SetupError(f"{what} must be an integer from {low} to {high}, got {value!r:.40}")
        return value

    return parse


def _float(low: float, high: float, what: str, open_low: bool = False):
    def parse(key: str, value: Any) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SetupError(f"{what} must be a number, got {value!r:.40}") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise SetupError(f"{what} must be a finite number, got {value!r:.40}")
        if value < low or value > high or (open_low and value == low):
            lowest = f"> {low}" if open_low else f">= {low}"
            raise SetupError(f"{what} must be {lowest} and <= {high}, got {value!r}")
        return float(value)

    return parse


def _choice(choices: tuple[str, ...], what: str):
    def parse(key: str, value: Any) -> str:
        if value not in choices:
            raise SetupError(f"{what}: unknown value {value!r:.40}; choose from {', '.join(choices)}")
        return value

    return parse


def _bool(key: str, value: Any) -> bool:
    if value in (True, "true", "1", 1):
        return True
    if value in (False, "false", "0", 0):
        return False
    raise SetupError(f"{key} must be true or false, got {value!r:.40}")


def _list(item, what: str, low: int, high: int):
    def parse(key: str, value: Any) -> tuple:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, list | tuple) or not low <= len(value) <= high:
            raise SetupError(f"{what}: expected a list of {low} to {high} items, got {value!r:.60}")
        return tuple(item(key, v) for v in value)

    return parse


def _features(key: str, value: Any) -> tuple[str, ...]:
    chosen = _list(_choice(tuple(FEATURES), "features"), "features", 1, len(FEATURES))(key, value)
    return tuple(name for name in FEATURES if name in chosen)  # the page's order, no duplicates


PARSERS = {
    "dataset": _choice(DATASETS, "data set"),
    "noise": _int(0, 50, "noise"),
    "ratio": _int(10, 90, "ratio of training to test data (percent)"),
    "points": _int(20, MAX_POINTS, "number of points"),
    "batch": _int(1, MAX_BATCH, "batch size"),
    "dseed": _int(0, 2**31 - 1, "data seed"),
    "seed": _int(0, 2**31 - 1, "seed"),
    "features": _features,
    "layers": _list(_int(1, MAX_NEURONS, "neurons per layer"), "hidden layers", 0, MAX_LAYERS),
    "acts": _list(_choice(ACTIVATION_NAMES, "activation"), "activations", 0, MAX_LAYERS),
    "loss": _choice(CLASSIFICATION_LOSSES + REGRESSION_LOSSES[1:], "loss"),
    "optim": _choice(OPTIMIZERS, "optimizer"),
    "lr": _float(0.0, 10.0, "learning rate", open_low=True),
    "momentum": _float(0.0, 0.99, "momentum"),
    "reg": _choice(("none", "l1", "l2"), "regularization"),
    "reg_rate": _float(0.0, 10.0, "regularization rate"),
    "sched": _choice(SCHEDULERS, "scheduler"),
    "dropout": _float(0.0, 0.9, "dropout"),
    "bn": _bool,
    "std": _bool,
    "problem": _choice(("classification", "regression"), "problem type"),
}
