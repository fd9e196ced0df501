"""The ``minidl`` command: the seed experiment, its run folder, reproducibility and one-line errors."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.cli.main import main
from minidl.cli.progress import progress_for
from minidl.train import EpochResult
from tests.pngs import assert_sensible_png

RUN_FILES = {
    ".lock",  # the run folder's lock file (experiment/run_lock.py): empty, locked while a run writes
    "config.json",
    "metrics.csv",
    "timings.csv",
    "checkpoints",
    "model.safetensors",
    "summary.md",
    "dataset.png",
    "training.png",
    "predictions.png",
}


def _numbers(text: str) -> str:
    """Everything but the timings and the (timestamped) run folder."""
    return re.sub(r"\(\d+\.\d+s\)|training time: \d+\.\d+s|run folder: .*", "", text)


def _test_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("test:")]


SAME_SEED_EPOCHS = 5


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The default experiment as a console command (stdout is a pipe), and its first 5 epochs in-process
    (the whole 50 cost ~8 s of CPU more; test_evaluate_reproduces_the_final_metrics checks the end in-process)."""
    first = tmp_path_factory.mktemp("console")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread, as in-process (tests/conftest.py)
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train"], capture_output=True, text=True, timeout=300, cwd=first, env=env
    )
    assert result.returncode == 0, result.stderr
    second = tmp_path_factory.mktemp("inprocess")
    out = io.StringIO()
    saved, sys.stdout = sys.stdout, out
    try:
        assert main(["train", "--epochs", str(SAME_SEED_EPOCHS), "--out", str(second / "run")]) == 0
    finally:
        sys.stdout = saved
    (folder,) = (first / "runs").iterdir()
    return {"outputs": [result.stdout, out.getvalue()], "folder": folder, "stderr": result.stderr}


def test_defaults_reach_the_reports_accuracy(seed_run):
    out = seed_run["outputs"][0]
    assert len(re.findall(r"^epoch +\d+/50  loss \S+  acc \S+  val_loss \S+  val_acc \S+  \(", out, re.M)) == 50
    accuracy = float(re.search(r"test: loss \S+  accuracy (\S+)", out).group(1))
    assert accuracy >= 0.94
    counts = [int(v) for v in re.search(r"TP (\d+)  TN (\d+)  FP (\d+)  FN (\d+)", out).groups()]
    assert sum(counts) == 1000
    assert (counts[0] + counts[1]) / 1000 == pytest.approx(accuracy)
    assert "training time:" in out
    assert f"run folder: runs/{seed_run['folder'].name}" in out
    assert seed_run["stderr"] == ""  # no progress bar when stdout is not a terminal


def test_same_seed_prints_the_same_numbers(seed_run):
    def first_epochs(text: str) -> list[str]:  # the model, then epochs 1-5 without their timings and totals
        lines = _numbers(text).splitlines()
        model = lines[: lines.index(")") + 1]
        epochs = [re.sub(r"^epoch +(\d+)/\d+", r"epoch \1", line) for line in lines if line.startswith("epoch ")]
        return model + epochs[:SAME_SEED_EPOCHS]

    a, b = seed_run["outputs"]
    assert first_epochs(a) == first_epochs(b)
    assert len(first_epochs(a)) == 9 + SAME_SEED_EPOCHS


def test_default_run_writes_the_run_folder(seed_run):
    folder = seed_run["folder"]
    assert {p.name for p in folder.iterdir()} == RUN_FILES  # and no temporary files left behind
    for name in ("dataset.png", "training.png", "predictions.png"):
        assert_sensible_png(folder / name)
    config = json.loads((folder / "config.json").read_text())
    assert config["data"]["dataset"] == "disk" and config["optimizer"] == {
        "name": "sgd",
        "lr": 0.01,
        "momentum": 0.0,
        "dampening": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "maximize": False,
    }
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"]
    assert [p.name for p in sorted((folder / "checkpoints").iterdir())] == [
        f"epoch-{e:04d}.safetensors" for e in (48, 49, 50)
    ]  # one per epoch, the newest 3 kept
    assert [int(r["epoch"]) for r in rows] == list(range(1, 51))
    last = re.findall(r"^epoch 50/50  loss (\S+)  acc (\S+)", seed_run["outputs"][0], re.M)[0]
    assert float(rows[-1]["train_loss"]) == pytest.approx(float(last[0]), abs=1e-6)
    assert float(rows[-1]["train_accuracy"]) == pytest.approx(float(last[1]), abs=1e-4)
    summary = (folder / "summary.md").read_text()
    for name in ("dataset.png", "training.png", "predictions.png"):
        assert f"]({name})" in summary
    accuracy = re.search(r"accuracy (\S+)", _test_lines(seed_run["outputs"][0])[1]).group(1)
    assert f"| accuracy | {accuracy} |" in summary


def test_evaluate_reproduces_the_final_metrics(seed_run, capsys):
    assert main(["evaluate", str(seed_run["folder"])]) == 0
    assert capsys.readouterr().out.splitlines() == _test_lines(seed_run["outputs"][0])


def test_config_json_reproduces_the_run(seed_run, tmp_path, capsys):
    """Feeding config.json back gives the same run (checked on a shortened copy to keep the test quick)."""
    config = json.loads((seed_run["folder"] / "config.json").read_text())
    config["epochs"] = 2
    (tmp_path / "c.json").write_text(json.dumps(config))
    outs = []
    for name in ("a", "b"):
        assert main(["train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / name), "--no-plots"]) == 0
        outs.append(_numbers(capsys.readouterr().out))
    assert outs[0] == outs[1] and "epoch 2/2" in outs[0]
    assert json.loads((tmp_path / "a" / "config.json").read_text()) == config


def test_summary_of_a_run_folder(seed_run, capsys):
    assert main(["summary", str(seed_run["folder"])]) == 0
    out = capsys.readouterr().out
    assert "0 (Linear)" in out and "(None, 25)" in out and "6 (Linear)" in out and "(None, 1)" in out
    assert "Total params: 1,401" in out  # 75 + 650 + 650 + 26


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--lr", "0"], "argument --lr: must be a finite number > 0, got 0"),
        (["train", "--lr", "-1"], "argument --lr: must be a finite number > 0, got -1"),
        (["train", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["train", "--batch-size", "x"], "argument --batch-size: 'x' is not an integer"),
        (["train", "--hidden", "25:swish"], "unknown activation 'swish'"),
        (["train", "--hidden", "25"], "expected SIZE:ACTIVATION"),
        (["train", "--loss", "hinge"], "argument --loss: invalid choice: 'hinge'"),
        (["train", "--optim", "lbfgs"], "argument --optim: invalid choice: 'lbfgs'"),
        (["train", "--dataset", "swiss-roll"], "unknown data set 'swiss-roll'; choose from blobs, circles"),
        (["train", "--optim", "adam", "--momentum", "0.9"], "optimizer 'adam' does not take 'momentum'"),
        (["train", "--optim-args", "nesterov=true"], "Nesterov momentum requires a momentum"),
        (["train", "--optim-args", "colour=red"], "optimizer 'sgd' does not take 'colour'; it takes lr, momentum"),
        (["train", "--scheduler", "step"], "scheduler 'step' needs 'step_size'"),
        (["train", "--scheduler-args", "gamma=0.5"], "scheduler argument(s) gamma given without a scheduler"),
        (["train", "--scheduler-args", "gamma"], "expected KEY=VALUE items"),
        (["train", "--val-fraction", "1"], "argument --val-fraction: must be a number in [0, 1), got 1"),
        (["train", "--out", "a", "--name", "b"], "not allowed with argument"),
        (["train", "--config", "missing.toml"], "missing.toml: no such config file"),
        (["evaluate", "no-such-run"], "run folder no-such-run: no such folder"),
    ],
)
def test_bad_values_give_one_line_and_nonzero_exit(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written: the run folder is made only when the run can start


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train", "--hidden", "10:nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("minidl train: error: hidden layer '10:nope'")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_debug_shows_the_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "--debug", "train", "--hidden", "10:nope"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


SHORT = ["--epochs", "2", "--batch-size", "16", "--n-train", "100", "--n-test", "50", "--no-plots"]


def test_short_custom_run(capsys, tmp_path):
    argv = ["train", *SHORT, "--hidden", "8:tanh", "--loss", "mae", "--momentum", "0.9", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "TP" in out
    assert json.loads((tmp_path / "r" / "config.json").read_text())["optimizer"]["momentum"] == 0.9


def test_existing_run_folder_needs_overwrite(capsys, tmp_path):
    out = tmp_path / "r"
    assert main(["train", *SHORT, "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")
    before = (out / "metrics.csv").read_bytes()
    assert main(["train", *SHORT, "--epochs", "3", "--out", str(out)]) == 1
    assert "already exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "metrics.csv").read_bytes() == before
    assert main(["train", *SHORT, "--epochs", "3", "--out", str(out), "--overwrite"]) == 0
    assert len((out / "metrics.csv").read_text().splitlines()) == 4
    assert (out / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


def test_name_puts_the_run_under_runs(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *SHORT, "--name", "trial"]) == 0
    assert (tmp_path / "runs" / "trial" / "model.safetensors").is_file()
    assert "run folder: runs/trial" in capsys.readouterr().out


def test_quiet_prints_only_the_final_metrics(capsys, tmp_path):
    assert main(["train", *SHORT, "--quiet", "--out", str(tmp_path / "q")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("test: ") for line in lines)


def test_flags_override_the_config_file(capsys, tmp_path):
    (tmp_path / "exp.toml").write_text(
        'epochs = 5\nbatch_size = 8\n[data]\nn_train = 60\nn_test = 30\n[optimizer]\nname = "sgd"\nmomentum = 0.5\n'
    )
    argv = ["train", "--config", str(tmp_path / "exp.toml"), "--epochs", "2", "--lr", "0.05"]
    assert main([*argv, "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["epochs"], config["batch_size"], config["data"]["n_train"]) == (2, 8, 60)
    assert (config["optimizer"]["lr"], config["optimizer"]["momentum"]) == (0.05, 0.5)
    assert "epoch 2/2" in capsys.readouterr().out


def test_scheduler_and_optimizer_arguments_reach_the_run(capsys, tmp_path):
    argv = ["train", *SHORT, "--epochs", "4", "--optim", "adam", "--lr", "0.01", "--weight-decay", "0.001"]
    argv += ["--optim-args", "betas=[0.8,0.99]", "--scheduler", "step", "--scheduler-args", "step_size=2,gamma=0.5"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["optimizer"]["betas"] == [0.8, 0.99] and config["optimizer"]["weight_decay"] == 0.001
    assert config["scheduler"]["step_size"] == 2 and config["scheduler"]["gamma"] == 0.5
    with open(tmp_path / "r" / "metrics.csv", newline="") as handle:
        lrs = [float(row["lr"]) for row in csv.DictReader(handle)]
    assert lrs == pytest.approx([0.01, 0.01, 0.005, 0.005])


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    result = EpochResult(epoch=1, loss=0.5, accuracy=0.75, lr=0.1, seconds=0.01, val_loss=0.25, val_accuracy=1.0)
    terminal, pipe = _Terminal(), io.StringIO()
    (bar,) = progress_for(2, quiet=False, stream=terminal)
    bar.on_epoch_begin(1, 10)
    bar.on_steps(10)
    bar.on_epoch_end(result)
    shown = terminal.getvalue()
    assert "epoch 1/2:   0%|" in shown and "0/10 [" in shown  # the bar while the epoch runs
    assert shown.endswith("epoch 1/2  loss 0.500000  acc 0.7500  val_loss 0.250000  val_acc 1.0000  (0.01s)\n")
    (line,) = progress_for(2, quiet=False, stream=pipe)
    line(result)
    assert pipe.getvalue() == "epoch 1/2  loss 0.500000  acc 0.7500  val_loss 0.250000  val_acc 1.0000  (0.01s)\n"
    assert progress_for(2, quiet=True) == []


def test_examples_are_valid_configs(capsys):
    for example in sorted(Path(__file__).resolve().parents[1].glob("examples/*.toml")):
        assert main(["summary", "--config", str(example)]) == 0, example
        assert "Total params" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("loss", "out_features", "last_layer"),
    [
        ("mse", 1, "Linear"),
        ("bce", 1, "Sigmoid"),  # BCELoss takes probabilities: the model ends with a sigmoid
        ("bce-logits", 1, "Linear"),
        ("cross-entropy", 2, "Linear"),  # class indices: one logit per class
    ],
)
def test_output_units_follow_the_task_and_loss(loss, out_features, last_layer, capsys, tmp_path):
    run = tmp_path / "r"
    assert main(["train", *SHORT, "--loss", loss, "--out", str(run), "--quiet"]) == 0
    trained = capsys.readouterr().out
    assert main(["summary", str(run)]) == 0
    table = capsys.readouterr().out
    last = re.findall(r"^\d+ \((\w+)\) +\(None, (\d+)\)", table, re.M)[-1]
    assert last == (last_layer, str(out_features))
    assert main(["evaluate", str(run)]) == 0
    assert capsys.readouterr().out == trained
