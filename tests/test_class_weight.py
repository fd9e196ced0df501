"""``--class-weight balanced`` / ``1,2,1``: scikit-learn's balanced formula on the training split, turned into
torch's ``weight`` (cross-entropy) or ``pos_weight`` (bce-logits), recorded in config.json."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from minidl.cli.main import main
from minidl.experiment.class_weight import balanced
from minidl.experiment.config import resolve
from minidl.experiment.experiment import Experiment

F64 = torch.float64
QUICK = ["--epochs", "2", "--no-plots"]


def run(argv):
    """``minidl ARGV`` in this process: its exit status (argparse's errors exit 2)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def write_csv(path, counts, seed=0, features=3):
    """Classes "a", "b", ... with ``counts`` rows each, shifted apart; rows shuffled."""
    g = torch.Generator().manual_seed(seed)
    rows = [
        [*(torch.randn(features, generator=g) + 2 * c).tolist(), "abcdefgh"[c]]
        for c, n in enumerate(counts)
        for _ in range(n)
    ]
    order = torch.randperm(len(rows), generator=g).tolist()
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*(f"x{i}" for i in range(features)), "label"])
        writer.writerows(rows[i] for i in order)
    return path


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("cw") / "imb.csv", [90, 20, 10])


@pytest.mark.parametrize("labels", [[0, 0, 0, 1, 2, 2], [1, 1, 0, 0, 0, 0, 0, 3, 2, 2], [0, 1]])
def test_balanced_is_scikit_learns_formula(labels):
    y = torch.tensor(labels)
    classes = sorted(set(labels))
    expected = compute_class_weight("balanced", classes=torch.tensor(classes).numpy(), y=y.numpy())
    assert balanced(y, classes) == pytest.approx(expected.tolist(), rel=1e-15)


def test_a_class_missing_from_the_training_split_is_named():
    with pytest.raises(Exception, match="class 'c' has no row in the training split"):
        balanced(torch.tensor([0, 1, 1]), ["a", "b", "c"])


def test_cross_entropy_gets_the_training_splits_weights_and_equals_torch(imbalanced):
    config = {"data": {"dataset": str(imbalanced)}, "class_weight": "balanced", "dtype": "float64"}
    experiment = Experiment(resolve(config))
    y_train = experiment.data.train[1]
    expected = compute_class_weight("balanced", classes=torch.arange(3).numpy(), y=y_train.numpy())
    assert experiment.config["loss"]["weight"] == pytest.approx(expected.tolist(), rel=1e-15)
    y_all = torch.cat([experiment.data.train[1], experiment.data.val[1], experiment.data.test[1]])
    assert torch.bincount(y_all).tolist() == [90, 20, 10]  # weights above are not those of all rows
    assert experiment.config["loss"]["weight"] != pytest.approx(balanced(y_all, [0, 1, 2]), rel=1e-9)
    x, y = experiment.split("train")
    logits = experiment.model(x[:40])
    reference = torch.nn.CrossEntropyLoss(weight=torch.tensor(expected, dtype=F64))(logits, y[:40])
    assert experiment.loss_fn(logits, y[:40]).item() == pytest.approx(reference.item(), rel=1e-12)
    unweighted = torch.nn.CrossEntropyLoss()(logits, y[:40])
    assert abs(unweighted.item() - reference.item()) > 1e-6  # the weights change the number


def test_bce_logits_gets_pos_weight_n_neg_over_n_pos_and_equals_torch(tmp_path):
    path = write_csv(tmp_path / "bin.csv", [80, 20])
    experiment = Experiment(resolve({"data": {"dataset": str(path)}, "class_weight": "balanced", "dtype": "float64"}))
    assert experiment.config["loss"]["name"] == "bce-logits"  # the recipe's loss for two classes
    counts = torch.bincount(experiment.data.train[1])
    assert experiment.config["loss"]["pos_weight"] == [counts[0].item() / counts[1].item()]
    assert experiment.config["loss"]["weight"] is None
    x, y = experiment.split("train")
    logits = experiment.model(x)
    target = y.double().unsqueeze(1)
    pos_weight = torch.tensor([counts[0].item() / counts[1].item()], dtype=F64)
    reference = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)(logits, target)
    assert experiment.loss_fn(logits, target).item() == pytest.approx(reference.item(), rel=1e-12)


def test_an_explicit_list_is_the_cross_entropy_weight_in_label_order(imbalanced):
    config = resolve({"data": {"dataset": str(imbalanced)}, "class_weight": [1, 2, 0.5]})
    experiment = Experiment(config)
    assert experiment.data.classes == ["a", "b", "c"]
    assert config["loss"]["weight"] == [1.0, 2.0, 0.5]
    assert "a: 1, b: 2, c: 0.5" in experiment.class_weight


def test_the_cli_prints_records_and_reuses_the_weights(imbalanced, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(imbalanced), "--class-weight", "balanced", *QUICK, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[:3]
    config = json.loads((run / "config.json").read_text())
    weights = config["loss"]["weight"]
    assert config["class_weight"] == "balanced" and len(weights) == 3 and weights[2] > weights[1] > weights[0]
    assert any(
        line.startswith("class weights (balanced, from the") and f"c: {weights[2]:.4g}" in line for line in first
    )
    test_line = next(line for line in out.splitlines() if line.startswith("test: loss"))
    # evaluate rebuilds the loss from the run (the weights recorded), and gives the same weighted test loss
    assert main(["evaluate", str(run)]) == 0
    assert test_line in capsys.readouterr().out
    # the recorded config trains again (its own weights are no conflict), and --resume goes on with them
    assert main(["train", "--config", str(run / "config.json"), "--no-plots", "--out", str(tmp_path / "again")]) == 0
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert json.loads((run / "config.json").read_text())["loss"]["weight"] == weights


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--class-weight", "balanced", "--loss-args", "weight=[1,2,1]"], "class_weight and loss.weight = [1, 2, 1] "
         "both given: use --class-weight or --loss-args weight=..., not both"),
        (["--class-weight", "1,2"], "class_weight: 2 weights for 3 classes (a, b, c)"),
        (["--class-weight", "balanced", "--loss", "mse"], "class_weight: loss 'mse' takes no class weights"),
        (["--class-weight", "1,x"], "argument --class-weight: expected balanced or weights such as 1,2,1, got '1,x'"),
        (["--class-weight", "0,0,0"], "argument --class-weight: expected balanced or at least two finite weights"),
        (["--class-weight", "1,-1,1"], "argument --class-weight: expected balanced or at least two finite weights"),
        (["--class-weight", "1,nan,1"], "argument --class-weight: expected balanced or at least two finite weights"),
    ],
)  # fmt: skip
def test_bad_class_weights_are_one_line_errors(imbalanced, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert run(["train", "--dataset", str(imbalanced), *flags, *QUICK, "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before the run folder is made


def test_regression_and_explicit_pos_weight_lists_are_refused(tmp_path, capsys):
    reg = tmp_path / "reg.csv"
    reg.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i * 0.37}\n" for i in range(30)))
    assert main(["train", "--dataset", str(reg), "--class-weight", "balanced", *QUICK, "--out", str(tmp_path / "r")])
    assert "reg.csv has a regression target; class weights need a classification task" in capsys.readouterr().err
    binary = write_csv(tmp_path / "bin.csv", [30, 10])
    assert main(["train", "--dataset", str(binary), "--class-weight", "1,3", *QUICK, "--out", str(tmp_path / "b")])
    assert "bce-logits weighs positives only; use balanced, or --loss-args pos_weight=P" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("value", "ok"), [("balanced", True), ([1, 2], True), ([0, 1.5, 2], True), ("Balanced", False), ([1], False),
                      ([0, 0], False), ([1, True], False), ({"a": 1}, False)],
)  # fmt: skip
def test_the_config_key_is_checked_by_the_schema(value, ok):
    layer = {"data": {"dataset": "moons"}, "class_weight": value}
    if ok:
        assert resolve(layer)["class_weight"] == value
    else:
        with pytest.raises(Exception, match="class_weight must be"):
            from minidl.experiment.config import check_layer

            check_layer(layer, "test")


def test_no_class_weight_key_unless_asked():
    config = resolve({})
    assert "class_weight" not in config and config["loss"] == {"name": "mse", "reduction": "mean"}
