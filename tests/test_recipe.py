"""The recipe by task (issue 12 item 2): a data set other than disk with no loss or optimizer chosen trains
with Adam, batch 32, 100 epochs, 32 ReLUs and the task's loss; it says so and config.json records it."""

from __future__ import annotations

import json
import re

import pytest

from minidl.cli.main import main
from minidl.experiment.config import resolve
from tests.sklearn_csv import write_sklearn_csv

# (data set, the loss the recipe picks, metric, the issue's threshold); measured with seed 0 when written:
# iris 1.0, wine 0.972, breast_cancer 0.965, diabetes R² 0.434 (seeds 1, 2: .933/1/1/.447, 1/1/1/.455)
CASES = [
    ("iris", "cross-entropy", "accuracy", 0.93),
    ("wine", "cross-entropy", "accuracy", 0.93),
    ("breast_cancer", "bce-logits", "accuracy", 0.95),
    ("diabetes", "mse", "R²", 0.40),
]


@pytest.mark.parametrize(("name", "loss", "metric", "threshold"), CASES, ids=[c[0] for c in CASES])
def test_only_dataset_and_target_reach_the_issues_threshold(tmp_path, capsys, name, loss, metric, threshold):
    pytest.importorskip("sklearn")
    path = write_sklearn_csv(name, tmp_path)
    out_dir = tmp_path / "run"
    assert main(["train", "--dataset", str(path), "--target", "target", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("recipe for ") and f"loss {loss}, adam lr 0.001, batch size 32, 100 epochs" in first
    value = float(re.search(rf"test: .*{metric} (\S+)", out)[1])
    assert value >= threshold, out
    config = json.loads((out_dir / "config.json").read_text())
    assert config["recipe"] == "by task" and config["loss"]["name"] == loss
    assert (config["optimizer"]["name"], config["optimizer"]["lr"]) == ("adam", 0.001)
    assert (config["batch_size"], config["epochs"], config["model"]["hidden"]) == (32, 100, "32:relu")
    # the recorded config trains the same run again, with no recipe left to choose
    again = tmp_path / "again"
    assert main(["train", "--config", str(out_dir / "config.json"), "--out", str(again), "--no-plots"]) == 0
    assert "recipe for" not in capsys.readouterr().out
    assert (again / "metrics.csv").read_bytes() == (out_dir / "metrics.csv").read_bytes()


def test_the_seed_and_explicit_choices_keep_the_defaults() -> None:
    seed = resolve({})
    assert "recipe" not in seed and seed["loss"] == {"name": "mse", "reduction": "mean"}
    assert (seed["optimizer"]["name"], seed["batch_size"], seed["epochs"]) == ("sgd", 1, 50)
    chosen = resolve({"data": {"dataset": "moons"}, "optimizer": {"name": "sgd"}})  # a choice: no recipe
    assert (chosen["optimizer"]["name"], chosen["loss"]["name"], chosen["batch_size"]) == ("sgd", "mse", 1)
    loss_only = resolve({"data": {"dataset": "moons"}, "loss": {"name": "bce"}})
    assert (loss_only["optimizer"]["name"], loss_only["loss"]["name"]) == ("sgd", "bce")


def test_what_the_user_set_stays_and_the_rest_is_the_recipe() -> None:
    config = resolve({"data": {"dataset": "moons"}, "optimizer": {"lr": 0.005}, "epochs": 7, "model": {"hidden": ""}})
    assert (config["optimizer"]["name"], config["optimizer"]["lr"]) == ("adam", 0.005)
    assert (config["epochs"], config["batch_size"], config["model"]["hidden"]) == (7, 32, "")
    assert config["loss"] == {"name": "auto"}  # chosen by the Experiment once the data says the task


def test_a_built_in_set_gets_the_tasks_loss(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--dataset", "moons", "--n-train", "100", "--n-test", "50", "--epochs", "2",
                 "--no-plots", "--out", str(out)]) == 0  # fmt: skip
    assert capsys.readouterr().out.splitlines()[0].startswith("recipe for 2-class classification")
    assert json.loads((out / "config.json").read_text())["loss"]["name"] == "bce-logits"
