"""CSV copies of scikit-learn's small data sets (iris, wine, breast_cancer, diabetes): features by their
scikit-learn names, then ``target``, written with full float precision."""

from __future__ import annotations

import csv
from pathlib import Path

SETS = ("iris", "wine", "breast_cancer", "diabetes")


def write_sklearn_csv(name: str, folder: Path) -> Path:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    path = Path(folder) / f"{name}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(str(n) for n in bunch.feature_names), "target"])
        for row, target in zip(bunch.data.tolist(), bunch.target.tolist(), strict=True):
            writer.writerow([*(repr(float(v)) for v in row), repr(target)])
    return path
