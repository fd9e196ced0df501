"""EarlyStopping: Keras' semantics (patience, min_delta, mode, best weights), its checkpointed state, the CLI flags."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minidl.nn as nn
from minidl.cli.main import main
from minidl.errors import ConfigError
from minidl.optim import SGD
from minidl.train import EarlyStopping, EpochResult, Trainer


class _FakeTrainer:
    def __init__(self) -> None:
        self.model = nn.Sequential(nn.Linear(2, 1))
        self.stop_training = False


def _epochs(stop: EarlyStopping, values: list[float], field: str = "val_loss") -> int | None:
    """Feed ``values`` as epochs 1, 2, ...; the epoch after which it asked to stop (None: never)."""
    trainer = _FakeTrainer()
    stop.trainer = trainer
    for epoch, value in enumerate(values, 1):
        result = EpochResult(epoch, 0.0, None, 0.1, 0.0, val_loss=None, val_accuracy=None)
        setattr(result, field, value)
        stop.on_epoch_end(result)
        if trainer.stop_training:
            return epoch
    return None


# (monitor, patience, min_delta, values, stopped after epoch, best epoch): worked out by hand from Keras' rule
# "wait += 1; improvement (beats best by more than min_delta): best, wait = value, 0; elif wait >= patience: stop"
CASES = [
    ("val_loss", 2, 0.0, [1.0, 0.9, 0.95, 0.91, 0.92], 4, 2),
    ("val_loss", 2, 0.0, [1.0, 0.9, 0.95, 0.89, 0.92, 0.93], 6, 4),
    ("val_loss", 0, 0.0, [1.0, 0.9, 0.9], 3, 2),  # equal is no improvement
    ("val_loss", 1, 0.05, [1.0, 0.96, 0.9], 2, 1),  # 0.96 is within min_delta of 1.0
    ("val_loss", 3, 0.0, [3.0, 2.0, 1.0, 0.5], None, 4),
    ("val_accuracy", 1, 0.0, [0.5, 0.6, 0.6], 3, 2),  # accuracy: higher is better
    ("loss", 1, 0.0, [0.5, 0.6], 2, 1),
    ("accuracy", 2, 0.1, [0.5, 0.55, 0.7, 0.75, 0.79], 5, 3),
]


@pytest.mark.parametrize(("monitor", "patience", "min_delta", "values", "stopped", "best_epoch"), CASES)
def test_stops_as_keras_would(monitor, patience, min_delta, values, stopped, best_epoch) -> None:
    stop = EarlyStopping(monitor, patience=patience, min_delta=min_delta)
    assert _epochs(stop, values, monitor) == stopped
    assert stop.best_epoch == best_epoch
    assert stop.stopped_epoch == (stopped or 0)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"monitor": "val_acc"}, "monitor must be one of"),
        ({"patience": -1}, "patience must be an integer >= 0"),
        ({"patience": 1.5}, "patience must be an integer >= 0"),
        ({"min_delta": math.nan}, "min_delta must be a finite number"),
        ({"mode": "up"}, "mode must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        EarlyStopping(**kwargs)


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def _fit(epochs: int, callbacks: list) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
    trainer = Trainer(model, nn.BCELoss(), SGD(model.parameters(), lr=0.3, momentum=0.9), callbacks=callbacks)
    with torch.no_grad():
        trainer.fit(*_data(64, 1), epochs=epochs, batch_size=8, validation_data=_data(64, 2))
    return trainer


def test_restores_the_best_epochs_weights_in_python() -> None:
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    trainer = _fit(200, [stop])
    assert 0 < stop.stopped_epoch < 200 and len(trainer.history) == stop.stopped_epoch
    best = min(r.val_loss for r in trainer.history)
    assert stop.best == best and trainer.history[stop.best_epoch - 1].val_loss == best
    assert trainer.evaluate(*_data(64, 2)).loss == pytest.approx(best, rel=1e-6)  # the best epoch's model
    kept = EarlyStopping(patience=2)  # restore_best_weights=False (Keras' default): the last epoch's model
    last = _fit(200, [kept])
    assert last.evaluate(*_data(64, 2)).loss == pytest.approx(last.history[-1].val_loss, rel=1e-6)


def test_monitoring_val_loss_without_validation_data_is_refused() -> None:
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    trainer = Trainer(model, nn.BCELoss(), SGD(model.parameters(), lr=0.1), callbacks=[EarlyStopping()])
    with torch.no_grad(), pytest.raises(ConfigError, match="needs validation data"):
        trainer.fit(*_data(16, 1), epochs=2, batch_size=8)


SHORT = ["--n-train", "200", "--n-test", "100", "--batch-size", "10", "--lr", "0.1", "--no-plots"]


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_cli_resumed_run_stops_where_the_uninterrupted_one_does(tmp_path: Path, capsys) -> None:
    flags = [*SHORT, "--early-stopping", "4"]
    assert main(["train", *flags, "--epochs", "200", "--out", str(tmp_path / "whole")]) == 0
    whole = capsys.readouterr().out
    assert "early stopping after epoch 14: val_loss has not improved for 4 epochs" in whole
    assert "weights of epoch 10 restored" in whole
    # the same run stopped after epoch 7 (its state: best, wait, best weights in the checkpoint), then resumed
    assert main(["train", *flags, "--epochs", "7", "--out", str(tmp_path / "part")]) == 0
    assert "early stopping" not in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "part"), "--epochs", "200"]) == 0
    resumed = capsys.readouterr().out
    assert "early stopping after epoch 14" in resumed and "weights of epoch 10 restored" in resumed
    a, b = _tensors(tmp_path / "whole"), _tensors(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    whole_rows = (tmp_path / "whole" / "metrics.csv").read_text().splitlines()
    assert whole_rows == (tmp_path / "part" / "metrics.csv").read_text().splitlines()
    assert len(whole_rows) == 1 + 14
    # a run that stopped early stays stopped when resumed
    assert main(["train", "--resume", str(tmp_path / "whole"), "--epochs", "300"]) == 0
    again = capsys.readouterr().out
    assert "epoch  15/" not in again and "is complete: early stopping ended it after epoch 14" in again
    c = _tensors(tmp_path / "whole")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_cli_records_the_settings_and_refuses_bad_ones(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *SHORT, "--epochs", "3", "--early-stopping", "5", "--monitor", "val_accuracy",
                 "--min-delta", "0.01", "--out", str(out)]) == 0  # fmt: skip
    import json

    config = json.loads((out / "config.json").read_text())
    assert (config["early_stopping"], config["monitor"], config["min_delta"]) == (5, "val_accuracy", 0.01)
    assert config["restore_best_weights"] is True
    capsys.readouterr()
    assert main(["train", *SHORT, "--monitor", "loss", "--out", str(tmp_path / "x")]) == 1
    assert "only with early_stopping" in capsys.readouterr().err
    assert main(["train", *SHORT, "--early-stopping", "-1", "--out", str(tmp_path / "y")]) == 1
    assert "early_stopping must be an integer >= 0" in capsys.readouterr().err
    args = [*SHORT, "--early-stopping", "2", "--val-fraction", "0", "--out", str(tmp_path / "z")]
    assert main(["train", *args]) == 1
    assert "needs validation data" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()


def test_resuming_a_finished_run_says_it_is_complete(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *SHORT, "--epochs", "2", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    said = capsys.readouterr().out
    longer = f"to train longer: minidl train --resume {out} --epochs N (N > 2)"
    assert said == f"run {out} is complete: 2 of 2 epochs trained; {longer}\n"
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing rewritten
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 0
    assert "epoch 3/3" in capsys.readouterr().out
