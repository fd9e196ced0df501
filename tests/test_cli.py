"""The ``minidl`` command: the seed experiment, reproducibility and one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from minidl.cli.main import main


def _numbers(text: str) -> str:
    """Everything but the timings."""
    return re.sub(r"\(\d+\.\d+s\)|training time: \d+\.\d+s", "", text)


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """The default experiment, run twice in-process (it takes a few seconds each)."""
    outputs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "minidl", "train"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    return outputs


def test_defaults_reach_the_reports_accuracy(seed_run):
    out = seed_run[0]
    assert len(re.findall(r"^epoch +\d+/50 ", out, re.M)) == 50
    accuracy = float(re.search(r"test: loss \S+  accuracy (\S+)", out).group(1))
    assert accuracy >= 0.94
    counts = [int(v) for v in re.search(r"TP (\d+)  TN (\d+)  FP (\d+)  FN (\d+)", out).groups()]
    assert sum(counts) == 1000
    assert (counts[0] + counts[1]) / 1000 == pytest.approx(accuracy)
    assert "training time:" in out


def test_same_seed_prints_the_same_numbers(seed_run):
    assert _numbers(seed_run[0]) == _numbers(seed_run[1])


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
    ],
)
def test_bad_values_give_one_line_and_nonzero_exit(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_console_script_reports_errors_without_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train", "--hidden", "10:nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("minidl train: error: hidden layer '10:nope'")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_debug_shows_the_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "--debug", "train", "--hidden", "10:nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_short_custom_run(capsys):
    assert (
        main(
            [
                "train",
                "--epochs",
                "2",
                "--batch-size",
                "16",
                "--hidden",
                "8:tanh",
                "--loss",
                "mae",
                "--momentum",
                "0.9",
                "--n-train",
                "100",
                "--n-test",
                "50",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "epoch 2/2" in out and "TP" in out
