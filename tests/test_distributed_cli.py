"""Acceptance: ``minidl train --nproc 2`` (torchrun, gloo, 127.0.0.1) trains exactly as one process does.

Both runs are real ``python -m minidl train`` processes with the same flags: the final weights agree within
1e-10 and the printed lines (epochs, test metrics) are the same once timings are removed. A run stopped
after epoch 2 (its last checkpoint removed) resumes under 2 processes, and in 1. Each run is bounded in
time, and afterwards no process of it is left (torchrun's workers live in their own sessions, so they are
looked for by their command line, which holds the run's unique folder).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from safetensors.torch import load_file

from minidl.cli.main import main
from minidl.distributed.launch import LOOPBACK, descendants, is_alive

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [
    "train", "--batch-size", "20", "--dtype", "float64",
    "--n-train", "200", "--n-test", "100", "--epochs", "3", "--no-plots",
]  # fmt: skip
TIMEOUT = 90  # seconds per run; the two first runs take about 10 s together on 2 cores
TIMING = re.compile(r"\s*\(\d+\.\d+s\)$")


def minidl(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m minidl ARGS`` (which name ``folder``) in a session of its own; kill all of it on timeout."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")}
    command = [sys.executable, "-m", "minidl", *args]
    process = subprocess.Popen(
        command, cwd=folder.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(process.pid), process.pid]:
            os.kill(pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"minidl {' '.join(args)} took more than {TIMEOUT}s")
    finally:
        left = processes_mentioning(str(folder))
        for pid in left:  # started by this test (their command line names its folder)
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"
    assert process.returncode == 0, f"exit code {process.returncode}\n{stdout}\n{stderr}"
    return subprocess.CompletedProcess(command, 0, stdout, stderr)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text`` (Linux /proc; skipped elsewhere)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid() and is_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def printed(stdout: str) -> list[str]:
    """The lines a run prints, timings removed; the run folder's path and the training time left out."""
    lines = [TIMING.sub("", line) for line in stdout.splitlines()]
    return [line for line in lines if not line.startswith(("training time:", "run folder:"))]


def metrics_without_seconds(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    before = set(descendants(os.getpid()))
    one = minidl(root / "one", *COMMAND, "--out", str(root / "one"))
    two = minidl(root / "two", *COMMAND, "--nproc", "2", "--out", str(root / "two"))
    assert set(descendants(os.getpid())) <= before  # nothing of either run is still below pytest
    return {"one": (root / "one", one), "two": (root / "two", two)}


def test_two_processes_give_the_same_weights(runs):
    one, two = (load_file(runs[k][0] / "model.safetensors") for k in ("one", "two"))
    assert one.keys() == two.keys() and {v.dtype for v in one.values()} == {v.dtype for v in two.values()}
    diffs = {k: (one[k] - two[k]).abs().max().item() for k in one}
    assert max(diffs.values()) <= 1e-10, diffs
    assert any(k.endswith("weight") and one[k].dtype.is_floating_point and one[k].element_size() == 8 for k in one)


def test_two_processes_print_the_same_metrics(runs):
    one, two = printed(runs["one"][1].stdout), printed(runs["two"][1].stdout)
    epochs = [line for line in one if line.startswith("epoch ")]
    assert len(epochs) == 3 and sum(line.startswith("test: ") for line in one) >= 2
    assert one == two  # the model, every epoch line and every test line, printed once (by rank 0 only)


def test_two_processes_write_the_same_run_folder(runs):
    files = [sorted(p.name for p in runs[k][0].iterdir()) for k in ("one", "two")]
    assert files[0] == files[1] and "model.safetensors" in files[0]
    assert metrics_without_seconds(runs["one"][0] / "metrics.csv") == metrics_without_seconds(
        runs["two"][0] / "metrics.csv"
    )
    configs = [(runs[k][0] / "config.json").read_text() for k in ("one", "two")]
    assert configs[0].replace('"nproc": 1', '"nproc": 2') == configs[1]


def test_the_launcher_binds_loopback_only():
    from minidl.distributed.launch import torchrun_command

    command = torchrun_command(2, COMMAND, 29500)
    assert command[command.index("--master-addr") + 1] == LOOPBACK == "127.0.0.1"
    assert "--rdzv-endpoint" not in command and "--nnodes" in command


def stopped_after_epoch_2(runs, name: str) -> Path:
    """A copy of the two-process run as if it had been stopped after epoch 2 (its last checkpoint removed)."""
    copy = runs["two"][0].with_name(name)
    shutil.copytree(runs["two"][0], copy)
    (copy / "checkpoints" / "epoch-0003.safetensors").unlink()
    return copy


def max_weight_difference(a: Path, b: Path) -> float:
    one, two = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert one.keys() == two.keys()
    return max((one[k] - two[k]).abs().max().item() for k in one)


@pytest.mark.parametrize("nproc", [2, 1])
def test_a_two_process_run_resumes(runs, nproc):
    """Every rank loads the same checkpoint; with another process count the run is the same within 1e-10.
    (In 1 process the resumed run runs in this process: no torchrun, and a second less.)"""
    folder = stopped_after_epoch_2(runs, f"resumed-{nproc}")
    argv = ["train", "--resume", str(folder), "--nproc", str(nproc)]
    if nproc == 1:
        with redirect_stdout(io.StringIO()) as out:
            assert main(argv) == 0
        stdout = out.getvalue()
    else:
        stdout = minidl(folder, *argv).stdout
    assert "from epoch-0002.safetensors" in stdout
    epoch_3 = [line for line in printed(runs["one"][1].stdout) if line.startswith(("epoch 3/3", "test: "))]
    assert [line for line in printed(stdout) if line.startswith(("epoch ", "test: "))] == epoch_3
    if nproc == 2:
        assert max_weight_difference(folder, runs["two"][0]) == 0.0  # the same process count: bit for bit
    assert max_weight_difference(folder, runs["one"][0]) <= 1e-10
