"""CSV files: numeric feature columns and one target column, read with the standard library's csv module.

Every problem is a ``DataError`` that names the file and, where there is one, the line and the column:
``data.csv, line 7, column 'x2': 'abc' is not a number``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minidl.data.table import Label, Table, read_table, sniff_delimiter, unnamed
from minidl.errors import DataError

__all__ = ["CsvData", "DataWarning", "Label", "Table", "load_csv", "read_table", "sniff_delimiter", "unnamed"]

MAX_AUTO_CLASSES = 20  # an integer-valued target with at most this many values is taken as class labels
MAX_CLASSES = 100  # --task classification on a numeric target with more values than this is refused
TASKS = ("auto", "classification", "regression")


class DataWarning(UserWarning):
    """Something in a data file that is probably a mistake, but not certainly."""


@dataclass
class CsvData:
    """Features, targets and what they mean: ``kind`` is binary, multiclass or regression, and
    ``classes[i]`` is the file's label for class index ``i`` (empty for regression)."""

    x: torch.Tensor
    y: torch.Tensor
    kind: str
    feature_names: list[str]
    target_name: str
    classes: list[Label] = field(default_factory=list)


def load_csv(
    path: str | Path,
    target: str | int | None = None,
    *,
    header: bool = True,
    task: str = "auto",
    dtype: torch.dtype = torch.float32,
    delimiter: str | None = None,
    index_col: bool = False,
) -> CsvData:
    """Load features and a target column (default: the last column).

    ``task="auto"`` takes an integer-valued target with at most 20 distinct values, or any non-numeric
    target, as class labels (mapped to 0..k-1 in sorted order) and anything else as a regression target.
    ``task="classification"`` on a numeric target with more than 100 values, or more than 20 and more
    than half the rows, is refused: that is a regression target. ``delimiter`` and ``index_col``: see ``read_table``.
    """
    if task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    table = read_table(path, header=header, delimiter=delimiter, index_col=index_col)
    if len(table.columns) < 2:
        raise DataError(
            f"{table.path}: needs at least one feature column and a target column (read one column, separated by "
            f"{table.delimiter!r}; pass --delimiter if the file uses another)"
        )
    t = table.index(target)
    if header and not index_col and t != 0 and unnamed(table.columns[0]):
        warnings.warn(
            f"{table.path}: the first column has no name (a pandas index?); it is read as a feature. "
            "Pass --index-col to skip it",
            DataWarning,
            stacklevel=2,
        )
    features = [c for c in range(len(table.columns)) if c != t]
    x = features_tensor(table, features, dtype)
    y, kind, classes = _targets(table, t, task, dtype)
    return CsvData(x, y, kind, [table.columns[c] for c in features], table.columns[t], classes)


def features_tensor(table: Table, columns: list[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    values = [[table.number(r, c, row[c]) for c in columns] for r, row in enumerate(table.rows)]
    x = torch.tensor(values, dtype=torch.float64).reshape(len(values), len(columns)).to(dtype)
    check_fits(table, x, columns)
    return x


def check_fits(table: Table, x: torch.Tensor, columns: list[int]) -> None:
    """A finite number too large for ``x``'s dtype (1e39 in float32) would become inf: name its cell."""
    bad = (~torch.isfinite(x)).nonzero()
    if len(bad):
        r, c = (int(i) for i in bad[0]) if x.dim() == 2 else (int(bad[0]), 0)
        cell = table.rows[r][columns[c]].strip()
        raise DataError(
            f"{table.where(r, columns[c])}: {cell!r} is too large for {str(x.dtype).removeprefix('torch.')}"
        )


def _targets(table: Table, t: int, task: str, dtype: torch.dtype) -> tuple[torch.Tensor, str, list[Label]]:
    cells = [row[t].strip() for row in table.rows]
    try:
        values: list[float] | None = table.numbers(t)
    except DataError:
        if task == "regression":
            table.numbers(t)  # raise the error naming the first bad cell
        values = None
    if values is None:  # text labels
        for r, cell in enumerate(cells):
            if not cell:
                raise DataError(f"{table.where(r, t)}: empty cell")
        labels: list[Label] = cells
    else:
        integral = all(v == int(v) for v in values)
        distinct = len(set(values))
        if task == "regression" or (task == "auto" and not (integral and distinct <= MAX_AUTO_CLASSES)):
            y = torch.tensor(values, dtype=torch.float64).to(dtype)
            check_fits(table, y, [t])
            return y, "regression", []
        labels = [int(v) if v == int(v) else v for v in values]
        if task == "classification":
            _check_class_count(table, t, len(set(labels)))
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{table.path}: target column {table.columns[t]!r} has a single class ({classes[0]!r})")
    index = {label: i for i, label in enumerate(classes)}
    y = torch.tensor([index[label] for label in labels], dtype=torch.long)
    return y, "binary" if len(classes) == 2 else "multiclass", classes


def _check_class_count(table: Table, t: int, count: int) -> None:
    """A numeric target taken as classes must have few values: a continuous one makes a huge, useless model."""
    if count > MAX_CLASSES or (count > MAX_AUTO_CLASSES and count > len(table.rows) / 2):
        raise DataError(
            f"{table.path}: target column {table.columns[t]!r} has {count} distinct values in {len(table.rows)} "
            f"rows, too many for classification (at most {MAX_CLASSES}, and more than {MAX_AUTO_CLASSES} only if "
            "each class has two rows on average); "
            "it looks continuous: use --task regression"
        )
