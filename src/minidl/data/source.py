"""A config's ``[data]`` section -> train / validation / test splits, ready for an experiment.

``dataset`` is a generator name from ``DATASETS`` (fresh points for every split: ``n_train`` and
``n_test`` points, and ``val_fraction × n_train`` validation points, each split from its own stream of
the seed), ``"digits"``, or a path to a CSV file (split by ``val_fraction`` and ``test_fraction``).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.data.csv import Label, load_csv
from minidl.data.datasets import DATASETS
from minidl.data.digits import DIGITS_FEATURES, digits
from minidl.data.split import split_indices
from minidl.errors import ConfigError

# a split's offset from the seed, so that train, validation and test never share a stream
TEST_STREAM, VAL_STREAM = 1_000_003, 2_000_006
KEYS = {
    "generated": ("dataset", "n_train", "n_test", "noise", "val_fraction", "standardize"),
    "digits": ("dataset", "val_fraction", "test_fraction", "standardize"),
    "csv": (
        "dataset",
        "target",
        "header",
        "delimiter",
        "index_col",
        "task",
        "val_fraction",
        "test_fraction",
        "standardize",
        "standardize_target",
    ),
}

# keys a config written before they existed may lack (its run then read the file as these say)
DATA_DEFAULTS = {"delimiter": None, "index_col": False, "standardize_target": False}
Split = tuple[torch.Tensor, torch.Tensor]


def dataset_names() -> list[str]:
    return [*sorted(DATASETS), "digits"]


def source_kind(dataset: str) -> str:
    """``generated``, ``digits`` or ``csv``; anything else is an error listing the choices."""
    if dataset in DATASETS:
        return "generated"
    if dataset == "digits":
        return "digits"
    if dataset.lower().endswith(".csv") or Path(dataset).is_file():
        return "csv"
    raise ConfigError(
        f"unknown data set {dataset!r}; choose from {', '.join(dataset_names())}, or a path to a .csv file"
    )


def resolve_data(data: dict[str, Any]) -> dict[str, Any]:
    """Only the keys that apply to this kind of data set, with a generator's own noise filled in."""
    kind = source_kind(data["dataset"])
    out = {key: data.get(key, DATA_DEFAULTS.get(key)) for key in KEYS[kind]}
    if kind == "generated" and out["noise"] is None:
        out["noise"] = inspect.signature(DATASETS[data["dataset"]]).parameters["noise"].default
    return out


def absolute_path(dataset: str) -> str:
    """A CSV file's path made absolute, for config.json: ``minidl evaluate`` then finds it from any folder."""
    return os.path.abspath(os.path.expanduser(dataset))


@dataclass
class DataBundle:
    """The splits and what they mean. ``kind`` is binary, multiclass or regression; ``classes[i]`` is how
    the data names class ``i``; ``val`` is None without validation data."""

    name: str
    source: str
    train: Split
    val: Split | None
    test: Split
    kind: str
    classes: list[Label] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    target_name: str | None = None

    @property
    def in_features(self) -> int:
        return self.train[0].shape[1]


def load_data(data: dict[str, Any], seed: int, dtype: torch.dtype = torch.float32) -> DataBundle:
    """Build the splits that the resolved ``[data]`` section describes; the same seed, the same splits."""
    name = data["dataset"]
    kind = source_kind(name)
    if kind == "generated":
        make = DATASETS[name]
        train = make(data["n_train"], noise=data["noise"], seed=seed, dtype=dtype)
        test = make(data["n_test"], noise=data["noise"], seed=seed + TEST_STREAM, dtype=dtype)
        n_val = max(1, round(data["val_fraction"] * data["n_train"])) if data["val_fraction"] > 0 else 0
        val = make(n_val, noise=data["noise"], seed=seed + VAL_STREAM, dtype=dtype) if n_val else None
        num_classes = max(int(torch.cat([train[1], test[1]]).max()) + 1, 2)
        kind_ = "binary" if num_classes == 2 else "multiclass"
        return DataBundle(name, kind, train, val, test, kind_, list(range(num_classes)), ["x1", "x2"])
    if kind == "digits":
        x, y = digits(dtype=dtype)
        train, val, test = _split(x, y, data, seed)
        return DataBundle(name, kind, train, val, test, "multiclass", list(range(10)), list(DIGITS_FEATURES))
    csv = load_csv(
        name,
        data["target"],
        header=data["header"],
        task=data["task"],
        dtype=dtype,
        delimiter=data.get("delimiter"),
        index_col=data.get("index_col", False),
    )
    train, val, test = _split(csv.x, csv.y, data, seed)
    return DataBundle(name, kind, train, val, test, csv.kind, csv.classes, csv.feature_names, csv.target_name)


def _split(x: torch.Tensor, y: torch.Tensor, data: dict[str, Any], seed: int) -> tuple[Split, Split | None, Split]:
    train, val, test = split_indices(
        len(x), val_fraction=data["val_fraction"], test_fraction=data["test_fraction"], seed=seed
    )
    if len(test) == 0:
        raise ConfigError("test_fraction must be > 0: the run reports metrics on the test split")
    return (x[train], y[train]), ((x[val], y[val]) if len(val) else None), (x[test], y[test])
