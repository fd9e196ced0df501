"""Regression R², RMSE, MAE and the training-mean baseline; binary ROC AUC; probabilities (issue 12),
each checked against scikit-learn as the oracle."""

from __future__ import annotations

import csv
import json
import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidl.cli.main import main
from minidl.data.source import load_data
from minidl.errors import ConfigError
from minidl.experiment.saved_model import SavedModel
from minidl.nn import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics
from minidl.train.proba import probabilities, roc_auc, roc_curve

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=40),
    scores=st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0, -3.0]), min_size=40, max_size=40),
)
def test_auc_matches_scikit_learn_with_ties(labels, scores):
    y, s = torch.tensor(labels), torch.tensor(scores[: len(labels)])
    if len(set(labels)) < 2:
        assert roc_auc(s, y) is None
        return
    assert roc_auc(s, y) == pytest.approx(sklearn_metrics.roc_auc_score(labels, s.tolist()), abs=1e-12)
    fpr, tpr = roc_curve(s, y)
    ref_fpr, ref_tpr, _ = sklearn_metrics.roc_curve(labels, s.tolist(), drop_intermediate=False)
    assert fpr.tolist() == pytest.approx(ref_fpr.tolist()) and tpr.tolist() == pytest.approx(ref_tpr.tolist())


@pytest.mark.parametrize("width", [1, 3])
def test_regression_metrics_match_scikit_learn(width):
    g = torch.Generator().manual_seed(width)
    target = torch.randn(50, width, generator=g, dtype=torch.float64) * 3 + 1
    output = target + torch.randn(50, width, generator=g, dtype=torch.float64)
    m = RegressionMetrics.from_outputs(output, target)
    t, o = target.numpy(), output.numpy()
    assert m.r2 == pytest.approx(sklearn_metrics.r2_score(t, o))
    assert m.mse == pytest.approx(sklearn_metrics.mean_squared_error(t, o))
    assert m.rmse == pytest.approx(math.sqrt(sklearn_metrics.mean_squared_error(t, o)))
    assert m.mae == pytest.approx(sklearn_metrics.mean_absolute_error(t, o))
    train_mean = torch.full((width,), 0.5, dtype=torch.float64)
    assert m.with_baseline(target, train_mean).baseline_mse == pytest.approx(((target - 0.5) ** 2).mean().item())


def test_r2_of_a_constant_target_follows_scikit_learn():
    t = torch.ones(4, 1)
    assert RegressionMetrics.from_outputs(t.clone(), t).r2 == 1.0
    assert RegressionMetrics.from_outputs(t + 1, t).r2 == 0.0
    assert sklearn_metrics.r2_score([1, 1, 1, 1], [2, 2, 2, 2]) == 0.0


def test_auc_is_in_the_binary_metrics_only_with_scores():
    predicted, labels = torch.tensor([1, 0, 1, 0]), torch.tensor([1, 0, 0, 0])
    scores = torch.tensor([0.9, 0.1, 0.6, 0.7])
    assert ClassificationMetrics.from_predictions(predicted, labels, 2).auc is None
    with_scores = ClassificationMetrics.from_predictions(predicted, labels, 2, scores=scores)
    assert with_scores.auc == pytest.approx(sklearn_metrics.roc_auc_score(labels.tolist(), scores.tolist()))
    assert with_scores.as_dict()["auc"] == with_scores.auc


@pytest.mark.parametrize(
    ("loss", "output", "expected"),
    [
        (BCEWithLogitsLoss(), [[0.0], [2.0]], [[0.5, 0.5], [1 - 1 / (1 + math.exp(-2)), 1 / (1 + math.exp(-2))]]),
        (BCELoss(), [[0.25], [1.0]], [[0.75, 0.25], [0.0, 1.0]]),
        (CrossEntropyLoss(), [[1.0, 1.0, 1.0], [1000.0, 0.0, 0.0]], [[1 / 3] * 3, [1.0, 0.0, 0.0]]),
        (BCELoss(), [[0.2, 0.2, 0.6], [0.5, 0.5, 0.0]], [[0.2, 0.2, 0.6], [0.5, 0.5, 0.0]]),
    ],
)
def test_probabilities_per_loss(loss, output, expected):
    out = torch.tensor(output, dtype=torch.float64)
    p = probabilities(out, loss, 2 if out.shape[1] == 1 else out.shape[1])
    assert torch.allclose(p, torch.tensor(expected, dtype=torch.float64))
    assert p.sum(1).tolist() == pytest.approx([1.0] * len(p))


def test_a_loss_without_probabilities_says_so():
    with pytest.raises(ConfigError, match="MSELoss gives scores, not probabilities"):
        probabilities(torch.zeros(2, 1), MSELoss(), 2)


def _write(path, rows, header=("a", "b", "label")):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _binary_rows(n, seed):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.gauss(0, 1), rng.gauss(0, 1)
        rows.append([f"{a:.4f}", f"{b:.4f}", "spam" if a + 0.5 * b + rng.gauss(0, 0.5) > 0 else "ham"])
    return rows


@pytest.mark.parametrize("loss", ["bce-logits", "cross-entropy", "bce"])
def test_binary_run_reports_auc_draws_roc_and_confusion_and_predicts_probabilities(tmp_path, capsys, loss):
    data = _write(tmp_path / "d.csv", _binary_rows(300, 0))
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--loss", loss, "--optim", "adam", "--lr", "0.01", "--epochs", "8"]
    assert main([*argv, "--batch-size", "32", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    test_lines = [line for line in out.splitlines() if line.startswith("test:")]
    auc = float(test_lines[1].split("AUC ")[1])
    assert {"confusion.png", "roc.png"} <= {p.name for p in run.iterdir()}
    assert (
        f"| ROC AUC | {auc:.4f} |" in (run / "summary.md").read_text() and "roc.png" in (run / "summary.md").read_text()
    )

    saved = SavedModel.load(run / "model.safetensors")
    config = json.loads((run / "config.json").read_text())
    bundle = load_data(config["data"], config["seed"])
    x, y = bundle.test
    p = saved.predict_proba(x)
    assert p.shape == (len(x), 2) and torch.allclose(p.sum(1), torch.ones(len(x)))
    assert auc == pytest.approx(sklearn_metrics.roc_auc_score(y.tolist(), p[:, 1].tolist()), abs=5e-5)
    assert saved.predict(x) == [saved.classes[i] for i in p.argmax(1).tolist()]

    new = _write(tmp_path / "new.csv", [r[:2] for r in _binary_rows(20, 1)], header=("a", "b"))
    output = tmp_path / "p.csv"
    assert main(["predict", str(run), "--input", str(new), "--output", str(output), "--proba"]) == 0
    table = list(csv.reader(output.open()))
    assert table[0] == ["a", "b", "prediction", "ham", "spam"]
    rows = table[1:]
    for row in rows:
        assert float(row[3]) + float(row[4]) == pytest.approx(1.0)
        assert row[2] == ("spam" if float(row[4]) > float(row[3]) else "ham") or float(row[4]) == pytest.approx(0.5)
    x_new = torch.tensor([[float(r[0]), float(r[1])] for r in rows])
    assert [r[2] for r in rows] == saved.predict(x_new)  # what the CLI writes, the Python API returns

    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert capsys.readouterr().out.splitlines() == test_lines


def test_proba_is_refused_for_a_model_without_probabilities(tmp_path, capsys):
    data = _write(tmp_path / "d.csv", _binary_rows(60, 0))
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--loss", "mse", "--epochs", "1", "--out", str(run), "--quiet"]
    assert main([*argv, "--no-plots"]) == 0  # --loss mse: a CSV without a choice gets bce-logits (the recipe)
    out = capsys.readouterr().out
    assert "AUC" not in out  # MSE gives no probabilities: no AUC, as in the seed experiment
    argv = ["predict", str(run), "--input", str(data), "--output", str(tmp_path / "p.csv"), "--proba"]
    assert main(argv) == 1
    assert "MSELoss gives scores, not probabilities" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_regression_run_reports_r2_rmse_and_the_baseline(tmp_path, capsys):
    rng = random.Random(0)
    rows = []
    for _ in range(200):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        rows.append([f"{a:.4f}", f"{b:.4f}", f"{100 + 30 * a - 20 * b * b + rng.gauss(0, 3):.4f}"])
    data = _write(tmp_path / "r.csv", rows, header=("a", "b", "y"))
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(data), "--optim", "adam", "--lr", "0.05", "--epochs", "30", "--batch-size", "16"]
    assert main([*argv, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    test_lines = [line for line in out.splitlines() if line.startswith("test:")]
    assert len(test_lines) == 2 and "RMSE" in test_lines[0] and "R² " in test_lines[0]
    values = dict(zip(test_lines[0].split()[1::2], map(float, test_lines[0].split()[2::2]), strict=True))
    assert values["RMSE"] == pytest.approx(math.sqrt(values["MSE"]), rel=1e-5)
    baseline = float(test_lines[1].rsplit(" ", 1)[1])
    assert test_lines[1].startswith("test: baseline (predicting the training mean): MSE")
    assert values["R²"] == pytest.approx(1 - values["MSE"] / baseline, abs=0.1)  # test mean ~ training mean
    assert values["MSE"] < baseline
    summary = (run / "summary.md").read_text()
    assert "| R² |" in summary and "| baseline MSE (predicting the training mean) |" in summary
    assert main(["evaluate", str(run)]) == 0
    assert capsys.readouterr().out.splitlines() == test_lines
