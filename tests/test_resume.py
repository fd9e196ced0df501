"""Checkpoints in training, in-process: stopped and resumed runs equal the uninterrupted run bit for bit.

A run is stopped by a real SIGINT that a progress callback sends to this process at a chosen step (the
CLI's handler sets the flag; the trainer stops at the step boundary), then resumed with
``minidl train --resume``. Every piece of state matters in these configs: dropout masks (torch's RNG),
the batch order (the loader's RNG), momentum or Adam moments, and a scheduler.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minidl.cli.train
from minidl.cli.main import main
from minidl.persist.checkpoint import load_checkpoint
from minidl.train import Callback
from minidl.train.divergence import DivergenceError
from minidl.train.trainer import Trainer

SMALL = ["--n-train", "60", "--n-test", "30", "--batch-size", "8", "--hidden", "8:relu,8:tanh", "--dropout", "0.25"]
CONFIGS = {
    "sgd-momentum-step": [
        *SMALL,
        "--momentum",
        "0.9",
        "--scheduler",
        "step",
        "--scheduler-args",
        "step_size=1,gamma=0.8",
    ],
    "adam-cosine": [*SMALL, "--optim", "adam", "--scheduler", "cosine"],
    "rmsprop-plateau": [*SMALL, "--optim", "rmsprop", "--scheduler", "plateau", "--scheduler-args", "patience=0"],
}
EPOCHS, STEPS = 4, 8  # 60 training points in batches of 8


class SignalAt(Callback):
    """Sends ``signum`` to this process during step ``step`` (from 1) of epoch ``epoch``."""

    step_every = 1

    def __init__(self, epoch: int, step: int, signum: int = signal.SIGINT) -> None:
        self.at, self.signum = (epoch, step), signum
        self.epoch = self.step = 0

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        self.epoch, self.step = epoch, 0

    def on_steps(self, steps: int) -> None:
        self.step += steps
        if (self.epoch, self.step) == self.at:
            os.kill(os.getpid(), self.signum)


def train(out: Path, flags: list[str], *more: str) -> int:
    return main(["train", *flags, "--epochs", str(EPOCHS), "--no-plots", "--quiet", "--out", str(out), *more])


def same_run(a: Path, b: Path) -> None:
    """Bit-identical weights and identical metrics.csv."""
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()


def names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    for name, flags in CONFIGS.items():
        assert train(root / name, flags) == 0
    return root


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize(
    ("epoch", "step", "checkpoint"),
    [(2, 3, "epoch-0002-step-000003"), (1, 1, "epoch-0001-step-000001"), (3, STEPS, "epoch-0003")],
    ids=["mid-epoch", "first-step", "last-step"],
)
def test_sigint_then_resume_is_bit_identical(
    config, epoch, step, checkpoint, uninterrupted, tmp_path, monkeypatch, capsys
):
    """A stop at any step; at the last step of an epoch the epoch finishes and saves its checkpoint."""
    monkeypatch.setattr(minidl.cli.train, "progress_for", lambda *a, **k: [SignalAt(epoch, step)])
    run = tmp_path / "run"
    assert train(run, CONFIGS[config]) == 130
    err = capsys.readouterr().err
    where = f"at epoch {epoch}, step {step} of {STEPS}" if "step" in checkpoint else f"after epoch {epoch}"
    assert err == (
        f"minidl train: interrupted by SIGINT {where}; checkpoint saved to {run}/checkpoints/{checkpoint}"
        f".safetensors; resume with: minidl train --resume {run}\n"
    )
    assert names(run)[-1] == f"{checkpoint}.safetensors" and not (run / "model.safetensors").exists()
    done = epoch - ("step" in checkpoint)  # epochs finished: a row each in metrics.csv, after its header
    assert done == 0 or len((run / "metrics.csv").read_text().splitlines()) == 1 + done
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    same_run(run, uninterrupted / config)
    assert len((run / "timings.csv").read_text().splitlines()) == 1 + EPOCHS


def test_twice_interrupted_mid_epoch_with_sigterm(uninterrupted, tmp_path, monkeypatch, capsys):
    run, flags = tmp_path / "run", CONFIGS["sgd-momentum-step"]
    monkeypatch.setattr(minidl.cli.train, "progress_for", lambda *a, **k: [SignalAt(1, 5, signal.SIGTERM)])
    assert train(run, flags) == 143
    monkeypatch.setattr(minidl.cli.train, "progress_for", lambda *a, **k: [SignalAt(1, 1, signal.SIGTERM)])
    assert main(["train", "--resume", str(run), "--quiet"]) == 143  # 1 step after the resume: step 6 of epoch 1
    assert f"interrupted by SIGTERM at epoch 1, step 6 of {STEPS}" in capsys.readouterr().err
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    same_run(run, uninterrupted / "sgd-momentum-step")


def test_unreadable_latest_checkpoint_falls_back_with_a_warning(uninterrupted, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    monkeypatch.setattr(minidl.cli.train, "progress_for", lambda *a, **k: [SignalAt(3, 2)])
    assert train(run, CONFIGS["adam-cosine"]) == 130
    monkeypatch.undo()
    latest = run / "checkpoints" / "epoch-0003-step-000002.safetensors"
    latest.write_bytes(latest.read_bytes()[:-10])  # torn
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"minidl train: warning: checkpoint {latest}: ")
    assert err[0].endswith("; falling back to epoch-0002")
    assert (run / "checkpoints" / "epoch-0003-step-000002.safetensors.unreadable").exists()
    same_run(run, uninterrupted / "adam-cosine")


def test_resume_of_a_finished_run_only_rewrites_its_outputs(uninterrupted, tmp_path, capsys):
    run, flags = tmp_path / "run", CONFIGS["sgd-momentum-step"]
    assert train(run, flags) == 0
    (run / "model.safetensors").unlink()  # killed after the last checkpoint, before the model was written
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert f"after epoch {EPOCHS} of {EPOCHS}" in out and "epoch 4/4" not in out
    same_run(run, uninterrupted / "sgd-momentum-step")


def test_resume_with_more_epochs_equals_the_longer_run(tmp_path):
    """--epochs may extend a run (the step scheduler does not depend on the run's length)."""
    flags = CONFIGS["sgd-momentum-step"]
    assert main(["train", *flags, "--epochs", "2", "--no-plots", "--quiet", "--out", str(tmp_path / "short")]) == 0
    assert main(["train", "--resume", str(tmp_path / "short"), "--epochs", str(EPOCHS), "--quiet", "--no-plots"]) == 0
    assert train(tmp_path / "long", flags) == 0
    same_run(tmp_path / "short", tmp_path / "long")
    assert (tmp_path / "short" / "config.json").read_text() == (tmp_path / "long" / "config.json").read_text()


@pytest.mark.parametrize(
    ("more", "expected"),
    [
        ([], ["epoch-0002", "epoch-0003", "epoch-0004"]),
        (["--checkpoint-every", "3"], ["epoch-0003", "epoch-0004"]),
        (["--checkpoint-every", "0"], ["epoch-0004"]),
        (["--keep", "1"], ["epoch-0004"]),
    ],
)
def test_checkpoint_every_and_keep(more, expected, tmp_path):
    assert train(tmp_path / "run", CONFIGS["adam-cosine"], *more) == 0
    assert names(tmp_path / "run") == [f"{name}.safetensors" for name in expected]
    for path in (tmp_path / "run" / "checkpoints").iterdir():
        assert load_checkpoint(path).metadata["config"]["epochs"] == EPOCHS


def test_resume_keeps_the_runs_checkpoint_settings(tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(minidl.cli.train, "progress_for", lambda *a, **k: [SignalAt(2, 4)])
    assert train(run, CONFIGS["adam-cosine"], "--keep", "1", "--checkpoint-every", "2") == 130
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), "--quiet", "--no-plots"]) == 0
    assert names(run) == ["epoch-0004.safetensors"]


def test_overwrite_clears_the_old_checkpoints_and_logs(tmp_path):
    run = tmp_path / "run"
    assert train(run, CONFIGS["adam-cosine"]) == 0
    (run / "checkpoints" / ".epoch-0009.safetensors.0123456789abcdef.tmp").write_bytes(b"torn")
    flags = [*CONFIGS["adam-cosine"], "--epochs", "1", "--no-plots", "--quiet", "--out", str(run), "--overwrite"]
    assert main(["train", *flags]) == 0
    assert names(run) == ["epoch-0001.safetensors"]
    assert len((run / "metrics.csv").read_text().splitlines()) == 2


def test_divergence_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """lr × 1000 per epoch: epoch 1 is fine, epoch 2 blows up."""
    run = tmp_path / "run"
    flags = [*SMALL, "--scheduler", "exponential", "--scheduler-args", "gamma=1e6", "--lr", "0.05"]
    assert train(run, flags) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("minidl train: error: training diverged at epoch 2, step ")
    assert err.endswith(f"; stopped, the last good checkpoint is {run}/checkpoints/epoch-0001.safetensors\n")
    assert names(run) == ["epoch-0001.safetensors"] and not (run / "model.safetensors").exists()
    state = load_checkpoint(run / "checkpoints" / "epoch-0001.safetensors").model_state
    assert all(torch.isfinite(t).all() for t in state.values())
    assert len((run / "metrics.csv").read_text().splitlines()) == 2


def test_divergence_names_the_step_and_the_first_layer_and_restores_the_epoch_start():
    from minidl.nn import Linear, MSELoss, ReLU, Sequential
    from minidl.optim import SGD

    torch.manual_seed(0)
    model = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=1e30))
    x, y = torch.randn(32, 2), torch.randn(32)
    with torch.no_grad(), pytest.raises(DivergenceError) as info:
        trainer.fit(x, y, epochs=3, batch_size=8)
    error = info.value
    assert (error.epoch, error.step, error.layer) == (1, 2, "0.weight")
    assert str(error).startswith(
        "training diverged at epoch 1, step 2 of 4: non-finite gradient, first in layer 0.weight"
    )
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())  # the last good weights
    assert trainer.history == []


def test_a_stop_after_a_bad_step_raises_divergence_and_saves_nothing(tmp_path):
    """SIGINT-style stop at step 3, after the weights went non-finite at step 2: no checkpoint of that state."""
    from minidl.nn import Linear, MSELoss, ReLU, Sequential
    from minidl.optim import SGD
    from minidl.train import Checkpointer, StopOnSignal

    class StopAt(Callback):
        step_every = 1

        def __init__(self, stop: StopOnSignal) -> None:
            self.stop, self.steps = stop, 0

        def on_steps(self, steps: int) -> None:
            self.steps += steps
            if self.steps == 3:
                self.stop.request(signal.SIGINT)  # what stop_on_signals' handler does

    torch.manual_seed(0)
    model = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))
    trainer = Trainer(model, MSELoss(), SGD(model.parameters(), lr=1e30))
    stop = StopOnSignal()
    trainer.callbacks = [StopAt(stop), Checkpointer(tmp_path, every=1), stop]
    with torch.no_grad(), pytest.raises(DivergenceError, match="at epoch 1, step 2 of 4"):
        trainer.fit(torch.randn(32, 2), torch.randn(32), epochs=2, batch_size=8)
    assert not (tmp_path / "checkpoints").exists()
