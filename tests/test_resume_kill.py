"""Acceptance: ``minidl train`` killed with SIGKILL at random moments and resumed each time ends bit-identical
to a run that was never interrupted, and no checkpoint on disk ever fails to load.

Real processes (``python -m minidl train``) on a small config where every piece of state matters:
dropout masks (torch's RNG), the batch order (the loader's RNG), momentum and a step scheduler. SIGKILL
cannot be caught, so each resume starts from the newest epoch checkpoint; a kill may land anywhere,
in a step, in the evaluation, in a metrics append or in a checkpoint write. The delays are seeded.
SIGINT is tested the same way: exit 130, the message, then a resume. The default suite kills 5-6 times;
``MINIDL_FULL_KILL_TEST=1`` kills 10-12 times (the same chain, twice the resumes: ~12 s more).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from minidl.persist.checkpoint import load_checkpoint

FULL = os.environ.get("MINIDL_FULL_KILL_TEST") == "1"
EPOCHS = 24 if FULL else 14  # a kill cycle gains 0 to 2 epochs: room for every kill before the end
FLAGS = [
    "--n-train", "200", "--n-test", "100", "--batch-size", "8", "--epochs", str(EPOCHS),
    "--hidden", "16:relu,16:tanh", "--dropout", "0.2", "--momentum", "0.9",
    "--scheduler", "step", "--scheduler-args", "step_size=3,gamma=0.8",
    "--checkpoint-every", "1", "--keep", "3", "--no-plots", "--quiet",
]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same threads in every process: the same arithmetic
MIN_KILLS, MAX_KILLS = (10, 12) if FULL else (5, 6)  # then the last resume runs to the end


def start(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen([sys.executable, "-m", "minidl", *argv], stdout=subprocess.DEVNULL, stderr=err, env=ENV)


def checkpoints(run: Path) -> list[Path]:
    folder = run / "checkpoints"
    return sorted(p for p in folder.iterdir() if p.suffix == ".safetensors") if folder.is_dir() else []


def wait_for_progress(proc: subprocess.Popen, run: Path, timeout: float = 60) -> None:
    """Until the process writes a checkpoint newer than the newest one now (or exits)."""
    before = checkpoints(run)[-1:]
    deadline = time.monotonic() + timeout
    while proc.poll() is None and checkpoints(run)[-1:] == before:
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.002)


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    proc = start(["train", *FLAGS, "--out", str(root / "run")], root / "err.txt")
    assert proc.wait(timeout=120) == 0, (root / "err.txt").read_text()
    return root / "run"


def test_sigkill_at_random_moments_then_resume_is_bit_identical(uninterrupted, tmp_path):
    rng = random.Random(20240611)
    kept = [path.stat().st_mtime for path in checkpoints(uninterrupted)]  # the last 3 epochs' checkpoints
    epoch = (kept[-1] - kept[0]) / (len(kept) - 1)  # wall time of an epoch, checkpoint writes included
    run = tmp_path / "run"
    proc = start(["train", *FLAGS, "--out", str(run)], tmp_path / "err-0.txt")
    kills = early = 0
    while kills < MAX_KILLS:
        if not checkpoints(run) or rng.random() < 0.8:
            wait_for_progress(proc, run)  # then kill within about an epoch: a cycle gains 1 to 2 epochs
            delay = rng.uniform(0, epoch)
        else:
            delay = rng.uniform(0.05, 1.0)  # from the start: importing, loading the checkpoint, trimming logs
            early += 1
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)
        if code == 0:
            break
        assert code == -signal.SIGKILL, (tmp_path / f"err-{kills}.txt").read_text()
        kills += 1
        for path in checkpoints(run):  # every checkpoint on disk loads, whenever the kill came
            load_checkpoint(path)
        proc = start(["train", "--resume", str(run), "--quiet", "--no-plots"], tmp_path / f"err-{kills}.txt")
    assert proc.wait(timeout=120) == 0, (tmp_path / f"err-{kills}.txt").read_text()
    assert kills >= MIN_KILLS, f"only {kills} kills before the run finished"
    assert_same_run(run, uninterrupted)
    print(f"{kills} SIGKILLs ({early} soon after a start), {kills} resumes, then bit-identical")


def test_sigint_says_how_to_resume_and_resume_is_bit_identical(uninterrupted, tmp_path):
    run = tmp_path / "run"
    proc = start(["train", *FLAGS, "--out", str(run)], tmp_path / "err.txt")
    wait_for_progress(proc, run)
    time.sleep(random.Random(7).uniform(0, 0.05))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    err = (tmp_path / "err.txt").read_text()
    assert err.startswith("minidl train: interrupted by SIGINT ") and err.count("\n") == 1
    assert err.endswith(f"; resume with: minidl train --resume {run}\n")
    saved = err.split("checkpoint saved to ")[1].split(";")[0]
    assert Path(saved) == checkpoints(run)[-1]
    load_checkpoint(saved)
    proc = start(["train", "--resume", str(run), "--quiet", "--no-plots"], tmp_path / "err2.txt")
    assert proc.wait(timeout=120) == 0, (tmp_path / "err2.txt").read_text()
    assert_same_run(run, uninterrupted)
