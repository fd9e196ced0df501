"""Issue 12's acceptance sets (CSV copies of scikit-learn's iris, wine, breast_cancer and diabetes) through
the CLI, with one explicit recipe (Adam, lr 0.001, batch 32, 100 epochs, one hidden layer of 32 ReLUs):
the thresholds the issue asks of the default recipe to come.

Measured when written, seeds 0, 1, 2: iris 1.0, 0.933, 1.0; wine 0.972, 1.0, 1.0; breast_cancer 0.965,
1.0, 1.0; diabetes R² 0.434, 0.447, 0.455. The seed's 25-25-25 with lr 0.01 overfits diabetes (R² 0.05-0.11).
"""

from __future__ import annotations

import re

import pytest

from minidl.cli.main import main
from tests.sklearn_csv import write_sklearn_csv

pytest.importorskip("sklearn")

RECIPE = ["--optim", "adam", "--lr", "0.001", "--batch-size", "32", "--epochs", "100", "--hidden", "32:relu"]
CASES = [
    ("iris", ["--loss", "cross-entropy", *RECIPE], "accuracy", 0.93),
    ("wine", ["--loss", "cross-entropy", *RECIPE], "accuracy", 0.93),
    ("breast_cancer", ["--loss", "bce-logits", *RECIPE], "accuracy", 0.95),
    ("diabetes", ["--loss", "mse", *RECIPE], "R²", 0.40),
]


@pytest.mark.parametrize(("name", "recipe", "metric", "threshold"), CASES, ids=[c[0] for c in CASES])
def test_the_recipe_reaches_the_issues_threshold(tmp_path, capsys, name, recipe, metric, threshold):
    path = write_sklearn_csv(name, tmp_path)
    argv = ["train", "--dataset", str(path), "--target", "target", *recipe, "--out", str(tmp_path / "run")]
    assert main([*argv, "--quiet", "--no-plots", "--checkpoint-every", "0"]) == 0
    out = capsys.readouterr().out
    value = float(re.search(rf"{metric} (\S+)", out)[1])
    assert value >= threshold, out
    if name == "diabetes":  # the model beats predicting the training mean
        mse = float(re.search(r"  MSE (\S+)", out)[1])
        assert mse < float(re.search(r"baseline \(predicting the training mean\): MSE (\S+)", out)[1])
