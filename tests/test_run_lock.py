"""One writer per run folder (issue 11, item 2): a ``flock`` on ``RUN_DIR/.lock`` held for the run's life.

Acceptance: two writers started on one folder at the same instant, after their imports (synchronised by
barrier files), 20 times: every time exactly one runs, the other is refused in one line, and the folder
holds exactly the winner's run. Then: a writer is refused while a holder lives, naming its PID (train,
--overwrite, --resume), and the lock dies with its holder, however it dies (SIGKILL included).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from minidl.cli.main import main
from minidl.distributed.launch import is_alive
from minidl.experiment.run_lock import LOCK_NAME, lock_holder, lock_run_folder
from tests.test_bad_input import snapshot

ROUNDS = 20
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
HIDDEN = {"a": "3:relu", "b": "5:tanh"}  # the two writers train different models: the folder tells whose it is
EPOCHS = 2
DRIVER = r"""
import contextlib, sys, time
from pathlib import Path
from minidl.cli.main import main  # imported once: the writers then start at the same instant
root, me, hidden, rounds, epochs = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
for i in range(rounds):
    (root / f"ready-{i}-{me}").touch()
    deadline = time.monotonic() + 60
    while not (root / f"go-{i}").exists():
        if time.monotonic() > deadline:
            sys.exit(99)
        time.sleep(0.0002)
    argv = ["train", "--n-train", "40", "--n-test", "20", "--epochs", epochs, "--batch-size", "8",
            "--hidden", hidden, "--no-plots", "--quiet", "--out", str(root / f"run-{i}")]
    with open(root / f"err-{i}-{me}", "w") as err, contextlib.redirect_stderr(err):
        code = main(argv)
    (root / f".code-{i}-{me}").write_text(str(code))
    (root / f".code-{i}-{me}").rename(root / f"code-{i}-{me}")  # seen whole or not at all
"""


def wait_for(paths: list[Path], procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert all(p.poll() is None for p in procs), "a writer exited early"
        assert time.monotonic() < deadline, f"timed out waiting for {paths}"
        time.sleep(0.001)


def test_two_writers_at_the_same_instant_20_times(tmp_path):
    procs = {
        me: subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(tmp_path), me, HIDDEN[me], str(ROUNDS), str(EPOCHS)],
            stdout=subprocess.DEVNULL,
            env=ENV,
        )
        for me in HIDDEN
    }
    try:
        refusals = {"in use": 0, "not empty": 0}
        for i in range(ROUNDS):
            wait_for([tmp_path / f"ready-{i}-{me}" for me in HIDDEN], list(procs.values()))
            (tmp_path / f"go-{i}").touch()
            wait_for([tmp_path / f"code-{i}-{me}" for me in HIDDEN], list(procs.values()))
            codes = {me: int((tmp_path / f"code-{i}-{me}").read_text()) for me in HIDDEN}
            assert sorted(codes.values()) == [0, 1], codes
            winner = next(me for me, code in codes.items() if code == 0)
            loser = next(me for me in HIDDEN if me != winner)
            err = (tmp_path / f"err-{i}-{loser}").read_text()
            assert err.count("\n") == 1 and err.startswith("minidl train: error: run folder "), err
            if f"is in use by PID {procs[winner].pid} " in err:
                refusals["in use"] += 1
            else:  # the winner had finished before the loser reached the folder
                assert "already exists and is not empty" in err, err
                refusals["not empty"] += 1
            assert (tmp_path / f"err-{i}-{winner}").read_text() == ""
            assert_holds_exactly(tmp_path / f"run-{i}", HIDDEN[winner])
        print(f"refusals over {ROUNDS} rounds: {refusals}")
    finally:
        for proc in procs.values():  # started by this test: they end after the last round
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    assert all(proc.returncode == 0 for proc in procs.values())


def assert_holds_exactly(run: Path, hidden: str) -> None:
    """The folder holds one run, the winner's: its config, one header and one row per epoch, its model."""
    assert json.loads((run / "config.json").read_text())["model"]["hidden"] == hidden
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,") and [line.split(",")[0] for line in lines[1:]] == ["1", "2"]
    with safe_open(run / "model.safetensors", "pt") as f:
        assert json.loads(f.metadata()["minidl"])["hidden"] == hidden
    checkpoints = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0001.safetensors", "epoch-0002.safetensors"]


# -- a writer is refused while the lock is held, naming the holder --------------------------------------
HOLDER = """
import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], ".lock"), os.O_RDONLY | os.O_CREAT)  # what lock_run_folder does
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(120)
"""  # plain Python (no torch to import): a holder in a fraction of a second


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    argv = ["train", "--n-train", "40", "--n-test", "20", "--epochs", "1", "--no-plots", "--quiet"]
    assert main([*argv, "--out", str(root / "run")]) == 0
    return root / "run"


@pytest.fixture
def held(finished, tmp_path):
    """A copy of a finished run in ``tmp_path/run``, its lock held by another process (SIGKILLed at the end)."""
    shutil.copytree(finished, tmp_path / "run")
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE, env=ENV)
    try:
        assert proc.stdout.readline() == b"locked\n"
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--epochs", "1", "--out", "run"],
        ["train", "--epochs", "1", "--out", "run", "--overwrite"],
        ["train", "--resume", "run", "--epochs", "3"],
        ["train", "--resume", "run", "--lr", "0.1"],  # the lock is checked before the flags
    ],
    ids=["train", "overwrite", "resume", "resume-bad-flag"],
)
def test_a_second_writer_is_refused_naming_the_holder(held, tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"minidl train: error: run folder run is in use by PID {held.pid} (a minidl run writing there): "
        "wait for it to end, or stop it\n"
    )
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_the_lock_dies_with_its_holder(held, tmp_path, monkeypatch, capsys, sig):
    path = tmp_path / "run" / LOCK_NAME
    assert lock_holder(path) == held.pid
    held.send_signal(sig)
    held.wait(timeout=30)
    assert lock_holder(path) is None
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "run", "--epochs", "2", "--quiet", "--no-plots"]) == 0
    assert lock_holder(path) is None  # released when the command returned, in this very process
    with contextlib.suppress(FileNotFoundError):
        assert not is_alive(held.pid)


def test_a_new_run_that_fails_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """The folder a run creates (with its lock file) is removed again when the run wrote nothing into it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    lock = lock_run_folder(tmp_path / "new", create=True)
    assert (tmp_path / "new" / LOCK_NAME).is_file()
    lock.release()
    assert not (tmp_path / "new").exists()
    assert main(["train", "--dataset", "d.csv", "--loss", "huber", "--loss-args", "reduction=none",
                 "--epochs", "1", "--out", "new2"]) == 1  # fmt: skip
    assert not (tmp_path / "new2").exists()
