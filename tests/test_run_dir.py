"""Run folders, atomic files, metrics.csv, and the saved model (safetensors + JSON metadata)."""

from __future__ import annotations

import json
import struct

import pytest
import torch

from minidl.errors import CheckpointError, ConfigError
from minidl.experiment.config import resolve
from minidl.experiment.experiment import Experiment
from minidl.experiment.run_dir import RunDir, read_metrics, write_atomic
from minidl.experiment.run_logs import MetricsLog
from minidl.experiment.saved_model import SavedModel
from minidl.train import EpochResult


def test_plan_checks_without_creating(tmp_path):
    run = RunDir.plan(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()
    run.create()
    assert (tmp_path / "a" / "b").is_dir()
    RunDir.plan(tmp_path / "a" / "b")  # empty: fine
    (tmp_path / "a" / "b" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists and is not empty; pass --overwrite"):
        RunDir.plan(tmp_path / "a" / "b")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        RunDir.plan(tmp_path / "file")
    with pytest.raises(ConfigError, match="plain folder name"):
        RunDir.plan(name="a/b")


def test_default_folders_are_timestamps_that_never_collide(tmp_path):
    first = RunDir.plan(root=str(tmp_path)).create()
    (first.path / "config.json").write_text("{}")
    second = RunDir.plan(root=str(tmp_path))
    assert second.path != first.path and second.path.parent == tmp_path
    assert RunDir.plan(name="exp", root=str(tmp_path)).path == tmp_path / "exp"


def test_overwrite_replaces_only_run_files(tmp_path):
    run = RunDir.plan(tmp_path).create()
    run.write("metrics.csv", "old")
    run.write("notes.md", "keep")
    RunDir.plan(tmp_path, overwrite=True).create()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.md"]


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "f.txt"
    write_atomic(path, "first")
    with pytest.raises(TypeError):  # fails after the temporary file exists
        write_atomic(path, 12345)  # type: ignore[arg-type]
    assert path.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_metrics_log_writes_one_row_per_epoch(tmp_path):
    run = RunDir.plan(tmp_path).create()
    log = MetricsLog(run)
    log(EpochResult(epoch=1, loss=0.5, accuracy=0.75, lr=0.1, seconds=0.25))
    log(EpochResult(epoch=2, loss=0.25, accuracy=None, lr=0.05, seconds=0.5, val_loss=0.3, val_accuracy=0.9))
    text = (tmp_path / "metrics.csv").read_text()
    assert text.splitlines() == [
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr",
        "1,0.5,0.750000,,,0.1",
        "2,0.25,,0.3,0.900000,0.05",
    ]  # no wall-clock column: a resumed run writes the same bytes
    rows = read_metrics(tmp_path / "metrics.csv")
    assert rows[0]["val_loss"] is None and rows[1]["train_accuracy"] is None and rows[1]["val_loss"] == 0.3
    assert (tmp_path / "timings.csv").read_text() == "epoch,seconds\n1,0.2500\n2,0.5000\n"


@pytest.fixture(scope="module")
def trained():
    config = resolve(  # sgd: the defaults, not the recipe by task
        {
            "epochs": 2,
            "batch_size": 16,
            "data": {"dataset": "blobs", "n_train": 90, "n_test": 30},
            "optimizer": {"name": "sgd"},
        }
    )
    experiment = Experiment(config)
    experiment.fit()
    return experiment


def test_saved_model_round_trip(trained):
    saved = trained.saved_model()
    data = saved.to_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["minidl"])
    assert meta["task"] == {"kind": "multiclass", "num_classes": 3} and meta["out_features"] == 3
    assert meta["classes"] == [0, 1, 2] and meta["hidden"] == "25:relu,25:tanh,25:relu"
    assert {"0.weight", "6.bias", "standardizer.mean", "standardizer.std"} <= set(header)
    state = torch.get_rng_state()
    loaded = SavedModel.from_bytes(data)
    assert torch.equal(torch.get_rng_state(), state)  # rebuilding the model draws no random numbers
    x, y = trained.data.test
    assert torch.equal(loaded.predict_indices(x), saved.predict_indices(x))
    assert loaded.evaluate(x, y).loss == trained.evaluate("test").loss
    for key, value in trained.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\x80\x04\x95" + b"\x00" * 20, "looks like a pickle file"),
        (b"\x01\x00", "truncated"),
        (struct.pack("<Q", 2**40) + b"{}", "absurd safetensors header length"),
        (struct.pack("<Q", 2) + b"{}", "not a minidl model"),
    ],
)
def test_bad_model_files_are_checkpoint_errors(data, message):
    with pytest.raises(CheckpointError, match=message):
        SavedModel.from_bytes(data, "m.safetensors")
