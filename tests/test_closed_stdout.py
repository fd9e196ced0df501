"""When stdout goes away (``| head -3``, ``| grep -m1``) minidl stops printing and finishes: the run folder
has its model, figures and summary; evaluate and summary end normally. Real pipes, processes bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = ["train", "--n-train", "200", "--n-test", "100", "--batch-size", "10"]
LIMIT = 180  # seconds: a hung process fails the test instead of blocking the suite


def _closed_from_the_start(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``minidl ARGS`` with stdout a pipe whose reading end is already closed: the first write fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "minidl", *args], stdout=write, stderr=subprocess.PIPE, cwd=cwd, text=True
        )
    finally:
        os.close(write)
    try:
        _, err = process.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"minidl {args[0]} did not finish within {LIMIT}s")
    return subprocess.CompletedProcess(args, process.returncode, "", err)


def test_train_read_for_three_lines_finishes_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "minidl", *RUN, "--epochs", "60", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]  # what `| head -3` reads, then it goes away
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=LIMIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert lines[0].startswith(b"Sequential(")
    assert code == 0, err
    assert "Broken pipe" not in err and "Exception ignored" not in err, err
    for name in ("model.safetensors", "summary.md", "training.png", "metrics.csv"):
        assert (out / name).stat().st_size > 0, name
    assert len((out / "metrics.csv").read_text().splitlines()) == 61  # every epoch trained


def test_train_evaluate_and_summary_with_stdout_gone_at_once(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = _closed_from_the_start([*RUN, "--epochs", "3", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert {"model.safetensors", "summary.md", "dataset.png", "predictions.png"} <= {p.name for p in out.iterdir()}
    for command in (["evaluate", str(out)], ["summary", str(out)]):
        done = _closed_from_the_start(command, tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), command
    # an error still reaches stderr and still fails
    done = _closed_from_the_start(["evaluate", str(tmp_path / "missing")], tmp_path)
    assert done.returncode == 1 and "minidl evaluate: error:" in done.stderr
