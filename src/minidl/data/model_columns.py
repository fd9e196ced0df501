"""A file for a trained model: its feature columns found by the training names, its labels mapped to the
model's classes (what ``minidl predict`` and ``minidl evaluate --data`` read)."""

from __future__ import annotations

import contextlib

import torch

from minidl.data.csv import Label, Table
from minidl.errors import DataError


def locate_columns(
    table: Table, feature_names: list[str], target: str | int | None, *, with_target: bool = False
) -> tuple[list[int], int | None]:
    """The feature columns of a file to predict or evaluate on, and its target column.

    With a header, every training feature is found by name (in training order, any order in the file;
    other columns are ignored), or the error names the missing ones; the target is the column named
    ``target``, None if there is none. Without a header, columns are taken by position: exactly the
    features, or with ``with_target`` the features and the target (at index ``target``, default the last).
    ``with_target`` also makes a missing target an error.
    """
    n = len(feature_names)
    if table.has_header:
        missing = [name for name in feature_names if name not in table.columns]
        if missing:
            raise DataError(
                f"{table.path}: missing feature column(s) {', '.join(map(repr, missing))}; the model reads "
                f"{', '.join(feature_names)}; the file has {', '.join(table.columns)}"
            )
        features = [table.columns.index(name) for name in feature_names]
        if target is not None and str(target) in table.columns:
            return features, table.columns.index(str(target))
        if with_target:
            table.index(target)  # raises, naming the columns (and a close name)
        return features, None
    expected = n + 1 if with_target else n
    if len(table.columns) != expected:
        what = f"{n} feature(s) and the target" if with_target else f"{n} feature(s) ({', '.join(feature_names)})"
        raise DataError(
            f"{table.path}: without a header, columns are read by position: the model needs {what}, "
            f"the file has {len(table.columns)} column(s)"
        )
    if not with_target:
        return list(range(n)), None
    t = table.index(target if target is not None and str(target).lstrip("-").isdigit() else None)
    return [c for c in range(n + 1) if c != t], t


def encode_labels(table: Table, column: int, classes: list[Label]) -> torch.Tensor:
    """The class index of every cell of ``column``; a label the model has never seen is an error."""
    numeric = all(isinstance(c, int | float) for c in classes)
    index = {float(c) if numeric else str(c): i for i, c in enumerate(classes)}
    out = []
    for r, row in enumerate(table.rows):
        cell = row[column].strip()
        key: float | str = cell
        if numeric:
            with contextlib.suppress(DataError):  # a text cell is simply an unseen label
                key = table.number(r, column, cell)
        if key not in index:
            known = ", ".join(str(c) for c in classes)
            raise DataError(
                f"{table.where(r, column)}: class label {cell!r} was never seen in training (known: {known})"
            )
        out.append(index[key])
    return torch.tensor(out, dtype=torch.long)
