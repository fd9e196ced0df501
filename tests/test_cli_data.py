"""CSV and digits through the command line: train, predict, evaluate, and the Python API agreeing with them."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
import torch

from minidl.cli.main import main
from minidl.data import load_csv
from minidl.experiment.experiment import Experiment
from minidl.experiment.saved_model import SavedModel
from tests.pngs import assert_sensible_png

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _rows(n: int, seed: int, regression: bool) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)
        if regression:
            target = f"{a * 2 + b * b - c:.5f}"
        else:
            target = "north" if b > 0.3 else ("east" if a > 0 else "west")
        rows.append([f"{a:.5f}", f"{b:.5f}", f"{c:.5f}", target])
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _test_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("test:")]


@pytest.mark.parametrize("regression", [False, True], ids=["classification", "regression"])
def test_csv_round_trip_matches_the_python_api(tmp_path, capsys, regression):
    train_csv = _write(tmp_path / "train.csv", ["a", "b", "c", "target"], _rows(240, 0, regression))
    new_rows = _rows(50, 1, regression)
    # the file to predict: features in another order, no target column
    _write(tmp_path / "new.csv", ["c", "a", "b"], [[r[2], r[0], r[1]] for r in new_rows])
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(train_csv), "--target", "target", "--optim", "adam", "--lr", "0.01"]
    argv += ["--epochs", "15", "--batch-size", "16", "--hidden", "16:tanh", "--out", str(run), "--no-plots"]
    argv += ["--loss", "mse" if regression else "cross-entropy"]
    assert main(argv) == 0
    trained = capsys.readouterr().out
    assert main(["predict", str(run), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "p.csv")]) == 0
    assert capsys.readouterr().out == f"wrote 50 predictions to {tmp_path / 'p.csv'}\n"
    with open(tmp_path / "p.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["c", "a", "b", "prediction"] and len(table) == 51
    cli = [row[-1] for row in table[1:]]

    # the Python API: the same config, trained again from scratch, and the saved model
    experiment = Experiment(json.loads((run / "config.json").read_text()))
    experiment.fit()
    features = load_csv(_write(tmp_path / "with_target.csv", ["a", "b", "c", "target"], new_rows), "target").x
    again = experiment.saved_model().predict_indices(features)
    loaded = SavedModel.load(run / "model.safetensors").predict_indices(features)
    assert torch.equal(again, loaded)
    if regression:
        assert [float(v) for v in cli] == loaded[:, 0].tolist()
        assert "MSE" in trained
    else:
        classes = experiment.data.classes
        assert classes == ["east", "north", "west"]
        assert cli == [classes[i] for i in loaded.tolist()]
        assert float(re.search(r"accuracy (\S+)", trained).group(1)) > 0.8

    assert main(["evaluate", str(run)]) == 0  # the run's own test split: the numbers printed by train
    assert capsys.readouterr().out.splitlines() == _test_lines(trained)


def test_predict_refuses_to_overwrite_and_evaluate_rejects_unseen_labels(tmp_path, capsys):
    train_csv = _write(tmp_path / "t.csv", ["a", "b", "c", "label"], _rows(60, 0, False))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(train_csv), "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    (tmp_path / "p.csv").write_text("precious")
    assert main(["predict", str(run), "--input", str(train_csv), "--output", str(tmp_path / "p.csv")]) == 1
    assert "p.csv already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "p.csv").read_text() == "precious"
    argv = ["predict", str(run), "--input", str(train_csv), "--output", str(tmp_path / "p.csv"), "--overwrite"]
    assert main(argv) == 0
    rows = _rows(5, 2, False)
    rows[3][3] = "south"
    _write(tmp_path / "odd.csv", ["a", "b", "c", "label"], rows)
    assert main(["evaluate", str(run), "--data", str(tmp_path / "odd.csv")]) == 1
    err = capsys.readouterr().err
    assert "odd.csv, line 5, column 'label': class label 'south' was never seen in training" in err
    assert main(["evaluate", str(run), "--data", str(train_csv)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("data: loss") and "confusion matrix" in out


def test_digits_example_reaches_097(tmp_path, capsys):
    run = tmp_path / "digits"
    assert main(["train", "--config", str(EXAMPLES / "digits.toml"), "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    accuracy = float(re.search(r"^test: loss \S+  accuracy (\S+)", out, re.M).group(1))
    assert accuracy >= 0.97
    assert "test: confusion matrix (rows: true class, columns: predicted class)" in out
    for name in ("dataset.png", "training.png", "predictions.png", "confusion.png"):
        assert_sensible_png(run / name)
    assert main(["evaluate", str(run)]) == 0
    assert capsys.readouterr().out == out


def test_a_loss_that_cannot_take_the_targets_fails_before_any_file(tmp_path, capsys):
    data = _write(tmp_path / "r.csv", ["a", "b", "c", "y"], _rows(40, 0, True))
    for loss, message in [
        ("cross-entropy", "loss 'cross-entropy' needs class labels, but"),
        ("bce", "every target element must be a probability in [0, 1]"),
    ]:
        assert main(["train", "--dataset", str(data), "--loss", loss, "--out", str(tmp_path / "run")]) == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / "run").exists()
