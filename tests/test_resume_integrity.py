"""Resume integrity (issue 11, items 8-10): the same data, the logs rebuilt from the checkpoint, and a crafted
checkpoint refused whole before anything on disk changes.

Runs go through the real CLI in-process (``main``), on small data, in ``tmp_path``; every refused case
compares the whole folder (paths, types, sizes, mtimes, bytes) before and after, as ``test_bad_input`` does.
One case runs the CLI in a subprocess, bounded in time, to check the exit code and stderr as a user sees them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidl.cli.main import main
from minidl.persist.checkpoint import load_checkpoint, save_checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.train import Callback
from tests.test_bad_input import snapshot

ROWS = "".join(f"{0.1 * i:.1f},{0.05 * (i % 7):.2f},{i % 2}\n" for i in range(1, 41))
CSV = "x1,x2,y\n" + ROWS
RUN = ["--epochs", "2", "--batch-size", "8", "--hidden", "6:relu", "--no-plots", "--quiet"]
STATEFUL = [  # Adam moments, a scheduler, early stopping (best weights), validation data
    *("--n-train", "40", "--n-test", "20", "--val-fraction", "0.25", "--optim", "adam", "--early-stopping", "5"),
    *("--scheduler", "step", "--scheduler-args", "step_size=1,gamma=0.5"),
]


def resume(run: Path | str, epochs: int, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["train", "--resume", str(run), "--epochs", str(epochs), "--no-plots", "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A 2-epoch run on ``a/data.csv``, started from folder ``a`` with the relative path ``data.csv``."""
    root = tmp_path_factory.mktemp("csv")
    (root / "a").mkdir()
    (root / "a" / "data.csv").write_text(CSV)
    cwd = os.getcwd()
    os.chdir(root / "a")
    try:
        assert main(["train", "--dataset", "data.csv", *RUN, "--out", str(root / "run")]) == 0
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def csv_copy(csv_run, tmp_path, monkeypatch):
    """A copy of ``csv_run`` whose config and checkpoints name the copied data file (and cwd in it)."""
    old = str(csv_run / "a" / "data.csv")
    shutil.copytree(csv_run, tmp_path, dirs_exist_ok=True)
    new = str(tmp_path / "a" / "data.csv")
    config = tmp_path / "run" / "config.json"
    config.write_text(config.read_text().replace(old, new))
    for path in CheckpointManager(tmp_path / "run").paths():
        edit(path, lambda c: c.update(json.loads(json.dumps(c).replace(old, new))))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def edit(path: Path, change) -> None:
    """Rewrite a checkpoint's JSON contents (the safetensors header's metadata) with ``change(contents)``."""
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    contents = json.loads(header["__metadata__"]["contents"])
    change(contents)
    header["__metadata__"]["contents"] = json.dumps(contents)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


# -- item 8: the data the run started with ----------------------------------------------------------------


def test_a_csv_run_records_its_data_and_resumes_from_another_folder_on_the_same_file(csv_copy, capsys):
    data = csv_copy / "a" / "data.csv"
    config = json.loads((csv_copy / "run" / "config.json").read_text())
    assert config["data"]["dataset"] == str(data)  # resolved when the run started in folder a
    record = load_checkpoint(CheckpointManager(csv_copy / "run").latest()).metadata["data"]
    assert record == {"path": str(data), "size": len(CSV), "sha256": hashlib.sha256(CSV.encode()).hexdigest()}
    (csv_copy / "b").mkdir()
    (csv_copy / "b" / "data.csv").write_text(CSV.replace("0.5", "0.6"))  # same name, other rows: never read
    os.chdir(csv_copy / "b")
    code, _, err = resume("../run", 3, capsys)
    assert (code, err) == (0, "")
    new = load_checkpoint(CheckpointManager(csv_copy / "run").latest())
    assert new.metadata["epoch"] == 3 and new.metadata["data"] == record


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            lambda p: p.write_text(CSV + "9.9,0.1,1\n"),
            rf"has changed since the run started \(sha256 [0-9a-f]+\.\.\., {len(CSV)} bytes; now [0-9a-f]+\.\.\., 458",
        ),
        (lambda p: p.write_text(CSV.replace("0.7", "0.8")), r"has changed since the run started"),  # same size
        (lambda p: p.unlink(), r"is missing, and a resumed run must train on the data it started with"),
    ],
    ids=["rows-added", "value-edited", "deleted"],
)
def test_changed_or_missing_data_is_refused_in_one_line_before_anything_changes(csv_copy, change, says, capsys):
    data = csv_copy / "a" / "data.csv"
    change(data)
    before = snapshot(csv_copy)
    code, out, err = resume("run", 4, capsys)
    assert (code, out) == (1, "") and err.count("\n") == 1, err
    assert err.startswith(f"minidl train: error: --resume run: its data file {data} ")
    assert re.search(says, err), err
    assert err.rstrip().endswith(
        "minidl train --config run/config.json" + " --dataset FILE" * ("is missing" in says) + " --out NEWDIR"
    )
    assert snapshot(csv_copy) == before


def test_an_older_checkpoint_without_a_data_record_resumes_with_a_warning(csv_copy, capsys):
    for path in CheckpointManager(csv_copy / "run").paths():
        edit(path, lambda c: c["metadata"].pop("data"))
    code, _, err = resume("run", 3, capsys)
    data = csv_copy / "a" / "data.csv"
    assert code == 0
    note = f"run run has no record of its data file's content (an older run): {data} is not checked"
    assert err == f"minidl train: warning: {note}\n"
    assert load_checkpoint(CheckpointManager(csv_copy / "run").latest()).metadata["data"]["size"] == len(CSV)


def test_a_changed_file_is_refused_by_the_real_command(csv_copy):
    (csv_copy / "a" / "data.csv").write_text(CSV.replace("0.7", "0.8"))
    before = snapshot(csv_copy)
    argv = [sys.executable, "-m", "minidl", "train", "--resume", "run", "--epochs", "3"]
    done = subprocess.run(argv, cwd=csv_copy, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1, done.stderr
    assert "has changed since the run started" in done.stderr and "Traceback" not in done.stderr
    assert snapshot(csv_copy) == before


# -- item 9: metrics.csv rebuilt from the checkpoint's history -------------------------------------------


@pytest.fixture(scope="module")
def stateful(tmp_path_factory):
    """The same run on disk data: 3 epochs uninterrupted ("full"), and stopped after 2 ("two")."""
    root = tmp_path_factory.mktemp("stateful")
    for name, epochs in (("full", "3"), ("two", "2")):
        argv = ["train", *STATEFUL, *RUN, "--epochs", epochs, "--out", str(root / name)]
        assert main(argv) == 0
    return root


def _drop_line(n: int):
    return lambda text: "".join(line for i, line in enumerate(text.splitlines(True)) if i != n)


REBUILT = "minidl train: warning: {} did not hold epochs 1 to 2 as trained (deleted, truncated or edited?); "
LOG_CASES = [  # (id, file, change of its text or None to delete it, rebuilt)
    ("metrics-deleted", "metrics.csv", None, True),
    ("metrics-last-row-gone", "metrics.csv", _drop_line(2), True),
    ("metrics-first-row-gone", "metrics.csv", _drop_line(1), True),  # the "1 6 7 8" of the issue
    ("metrics-value-edited", "metrics.csv", lambda t: t.replace(",", ",9", 7), True),
    ("metrics-header-garbage", "metrics.csv", lambda t: "hello\n" + t.split("\n", 1)[1], True),
    ("metrics-emptied", "metrics.csv", lambda t: "", True),
    ("metrics-binary", "metrics.csv", lambda t: "\udcff", True),
    ("timings-deleted", "timings.csv", None, True),
    ("later-rows-and-a-torn-line", "metrics.csv", lambda t: t + "3,0.5,0.5,0.5,0.5,0.01\n4,0.", False),  # a kill
]


@pytest.mark.parametrize(("name", "change", "rebuilt"), [c[1:] for c in LOG_CASES], ids=[c[0] for c in LOG_CASES])
def test_a_damaged_log_is_rebuilt_from_the_checkpoint_and_each_epoch_is_there_once(
    stateful, tmp_path, name, change, rebuilt, capsys
):
    run = Path(shutil.copytree(stateful / "two", tmp_path / "run"))
    log = run / name
    if change is None:
        log.unlink()
    else:
        log.write_bytes(change(log.read_text()).encode("utf-8", "surrogateescape"))
    code, _, err = resume(run, 3, capsys)
    assert code == 0
    expected = REBUILT.format(name) + "rebuilt from the history in epoch-0002.safetensors\n"
    assert err == (expected if rebuilt else "")
    assert (run / "metrics.csv").read_bytes() == (stateful / "full" / "metrics.csv").read_bytes()
    epochs = [line.split(",")[0] for line in (run / "timings.csv").read_text().splitlines()]
    assert epochs == ["epoch", "1", "2", "3"]


def test_a_checkpoint_without_history_trims_the_log_and_refuses_one_it_cannot_read(stateful, tmp_path, capsys):
    """An older checkpoint holds no history to rebuild from: later rows are dropped as before, and a log without
    an epoch column is one line (it was an internal error), with nothing changed."""
    run = Path(shutil.copytree(stateful / "two", tmp_path / "run"))
    for path in CheckpointManager(run).paths():
        edit(path, lambda c: c["metadata"].pop("history"))
    metrics = run / "metrics.csv"
    good = metrics.read_text()
    metrics.write_text("hello\n" + good.split("\n", 1)[1])
    before = snapshot(tmp_path)
    code, _, err = resume(run, 3, capsys)
    assert code == 1 and err.count("\n") == 1 and "has no epoch column" in err and "holds no history" in err, err
    assert snapshot(tmp_path) == before
    metrics.write_text(good + "3,0.5,0.5,0.5,0.5,0.01\n")  # a row after the checkpoint: a run killed there
    code, _, err = resume(run, 3, capsys)
    assert (code, err) == (0, "")
    assert metrics.read_bytes() == (stateful / "full" / "metrics.csv").read_bytes()


# -- item 10: a crafted checkpoint, refused whole before anything changes --------------------------------


def tensors(change):
    """A case that loads the newest checkpoint, changes it with ``change(checkpoint)`` and saves it again."""

    def apply(path: Path) -> None:
        ck = load_checkpoint(path)
        change(ck)
        parts = ("model_state", "optimizer_state", "scheduler_state", "rng_states", "metadata")
        save_checkpoint(path, **{part: getattr(ck, part) for part in parts})

    return apply


def contents(change):
    """A case that edits the newest checkpoint's JSON contents (values a save would never write)."""
    return lambda path: edit(path, change)


def _group(c):
    return c["optimizer"]["param_groups"][0]


def _adam(ck):
    return ck.optimizer_state["state"][0]


def _stopper(c):
    return c["metadata"]["callbacks"]["EarlyStopping"]


CRAFTED = [  # (id, change of the newest checkpoint, what the line says after "does not fit this run: ")
    (
        "lr-a-string",
        contents(lambda c: _group(c).update(lr="0.1")),
        "optimizer group 0: lr: a number expected, got '0.1'",
    ),
    ("betas-a-string", contents(lambda c: _group(c).update(betas="ab")), "optimizer group 0: betas: a list of 2"),
    ("lr-missing", contents(lambda c: _group(c).pop("lr")), r"optimizer group 0: missing \['lr'\]"),
    (
        "exp-avg-wrong-shape",
        tensors(lambda ck: _adam(ck).update(exp_avg=torch.zeros(3, 7))),
        r"exp_avg: a torch.float32 tensor of shape \(6, 2\) expected, got torch.float32 of shape \(3, 7\)",
    ),
    (
        "exp-avg-integers",
        tensors(lambda ck: _adam(ck).update(exp_avg=_adam(ck)["exp_avg"].long())),
        r"exp_avg: a torch.float32 tensor .* got torch.int64",
    ),
    ("exp-avg-sq-missing", tensors(lambda ck: _adam(ck).pop("exp_avg_sq")), r"missing \['exp_avg_sq'\]"),
    ("step-a-string", contents(lambda c: c["optimizer"]["state"]["__int_keys__"]["0"].update(step="x")), "step: a"),
    (
        "model-float64",
        tensors(lambda ck: ck.model_state.update({"0.weight": ck.model_state["0.weight"].double()})),
        r"model 0.weight: torch.float64 of shape \(6, 2\); this run's is torch.float32",
    ),
    ("scheduler-value-a-string", contents(lambda c: c["scheduler"].update(last_epoch="x")), "last_epoch: a number"),
    ("scheduler-key-missing", contents(lambda c: c["scheduler"].pop("gamma")), r"scheduler state: missing \['gamma'\]"),
    ("callback-best-a-string", contents(lambda c: _stopper(c).update(best="x")), "EarlyStopping: best: a number"),
    ("callback-wait-negative", contents(lambda c: _stopper(c).update(wait=-5)), "wait: a whole number >= 0"),
    ("callback-unknown", contents(lambda c: c["metadata"]["callbacks"].update(Nope={})), "'Nope' belongs to no"),
    (
        "callback-best-weights-wrong-shape",
        tensors(lambda ck: ck.metadata["callbacks"]["EarlyStopping"]["best_weights"].update({"0.bias": torch.ones(2)})),
        r"callback state EarlyStopping.best_weights 0.bias: torch.float32 of shape \(2,\)",
    ),
]


@pytest.mark.parametrize(("change", "says"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_a_crafted_checkpoint_is_refused_in_one_line_before_anything_changes(stateful, tmp_path, change, says, capsys):
    run = Path(shutil.copytree(stateful / "two", tmp_path / "run"))
    change(CheckpointManager(run).latest())
    before = snapshot(tmp_path)
    code, out, err = resume(run, 4, capsys)
    assert (code, out) == (1, "") and err.count("\n") == 1, err
    prefix = f"minidl train: error: checkpoint {run}/checkpoints/epoch-0002.safetensors does not fit this run: "
    assert err.startswith(prefix) and re.search(says, err[len(prefix) :]), err
    assert snapshot(tmp_path) == before


def test_a_scheduler_state_of_the_wrong_type_makes_the_checkpoint_unreadable(stateful, tmp_path, capsys):
    """Not a table at all: the file is not a checkpoint minidl wrote. With no older one to fall back to
    (an older one would be used, with a warning, as for a torn file), the resume is refused, nothing changed."""
    run = Path(shutil.copytree(stateful / "two", tmp_path / "run"))
    CheckpointManager(run).paths()[0].unlink()
    edit(CheckpointManager(run).latest(), lambda c: c.update(scheduler=[1, 2]))
    before = snapshot(tmp_path)
    code, _, err = resume(run, 4, capsys)
    assert code == 1 and err.count("\n") == 1
    assert "malformed minidl contents: scheduler state and metadata must be JSON objects" in err
    assert snapshot(tmp_path) == before


def test_an_adam_state_in_float64_is_cast_as_torch_does(stateful, tmp_path, capsys):
    """torch.optim casts floating state to the parameter's dtype on load: a float64 moment is no crafted state."""
    run = Path(shutil.copytree(stateful / "two", tmp_path / "run"))
    tensors(lambda ck: _adam(ck).update(exp_avg=_adam(ck)["exp_avg"].double()))(CheckpointManager(run).latest())
    code, _, err = resume(run, 3, capsys)
    assert (code, err) == (0, "")
    assert (run / "metrics.csv").read_bytes() == (stateful / "full" / "metrics.csv").read_bytes()


class EpochCounter(Callback):
    """A user's callback with state."""

    def __init__(self) -> None:
        self.epochs = 0

    def on_epoch_end(self, result) -> None:
        self.epochs += 1

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = state["epochs"]


def test_the_python_api_names_its_own_stateful_callbacks_to_restore(tmp_path):
    """``Experiment.restore(..., callbacks=[...])``: a user's callback state is checked against that callback."""
    from minidl.errors import CheckpointError
    from minidl.experiment.config import resolve
    from minidl.experiment.experiment import Experiment
    from minidl.train.checkpointer import Checkpointer

    config = {"epochs": 2, "data": {"n_train": 20, "n_test": 10}, "model": {"hidden": "4:relu"}}
    Experiment(resolve(config)).fit([EpochCounter(), Checkpointer(tmp_path, every=1)])
    checkpoint = load_checkpoint(CheckpointManager(tmp_path).latest())
    assert checkpoint.metadata["callbacks"] == {"EpochCounter": {"epochs": 2}}
    assert Experiment(resolve(config)).restore(checkpoint, "c", callbacks=[EpochCounter()]).epochs_done == 2
    with pytest.raises(CheckpointError, match="callback state 'EpochCounter' belongs to no callback of this run"):
        Experiment(resolve(config)).restore(checkpoint, "c")
    checkpoint.metadata["callbacks"]["EpochCounter"]["epochs"] = "two"
    with pytest.raises(CheckpointError, match="callback state EpochCounter: epochs: a number expected, got 'two'"):
        Experiment(resolve(config)).restore(checkpoint, "c", callbacks=[EpochCounter()])
