"""``Trainer(compile=True)`` and ``minidl train --compile`` (minidl.train.compiled): the same model as eager.

The logic (capture of minidl's own step, whole epochs, write-back, fallback, cache, resume) is tested with
the cheap ways of running the captured step: ``graph`` (the traced aten graph called per batch) and, once,
``eager`` (the epoch's ``scan`` through torch.compile without code generation). Inductor, the default,
costs 12-40 s of compilation per process on this machine, so its test runs only with
``MINIDL_FULL_COMPILE_TEST=1`` (the numbers it gave are in docs/performance.md).
"""

from __future__ import annotations

import os
import re
from functools import partial

import pytest
import torch
from safetensors.torch import load_file

import minidl.nn as mnn
from minidl.cli.main import main
from minidl.optim import SGD, Adam, StepLR
from minidl.train import Callback, Trainer
from minidl.train.compiled import CompiledEpochs

LINE = re.compile(r"^minidl: compile=True: cannot compile the training step \((\w+): (.+)\); training eagerly$")


def data(n: int = 64, dtype: torch.dtype = torch.float32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g, dtype=dtype)
    return x, (x[:, 0] * x[:, 1] > 0).long()


def seed_mlp(dtype: torch.dtype = torch.float32) -> mnn.Module:
    torch.manual_seed(0)
    return mnn.mlp(2, "25:relu,25:tanh,25:relu", 1).to(dtype=dtype)


def trainer(model: mnn.Module, compile: bool, backend: str = "graph", optimizer=None, **kwargs) -> Trainer:
    optimizer = optimizer or SGD(model.parameters(), lr=0.01)
    t = Trainer(model, mnn.MSELoss(), optimizer, compile=compile, **kwargs)
    if compile:
        t._compiled = CompiledEpochs(backend)
    return t


def weights(t: Trainer) -> list[torch.Tensor]:
    return [p.data.clone() for p in t.model.parameters()]


def rel(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """The largest normwise relative difference max|a-b| / max|b| over the tensors."""
    return max(((u - v).abs().max() / v.abs().max()).item() for u, v in zip(a, b, strict=True))


# (dtype, tolerance after one epoch: issue 15's), batch size 1 (the seed experiment) and 5 (a short last batch)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("batch_size", [1, 5])
def test_one_compiled_epoch_equals_eager(dtype, tol, batch_size):
    x, y = data(200, dtype)
    eager, compiled = trainer(seed_mlp(dtype), False), trainer(seed_mlp(dtype), True)
    he = eager.fit(x, y, epochs=1, batch_size=batch_size)
    hc = compiled.fit(x, y, epochs=1, batch_size=batch_size)
    assert compiled._compiled.epochs_run == 1 and not compiled._compiled.failed
    assert rel(weights(compiled), weights(eager)) < tol
    assert abs(hc[0].loss - he[0].loss) <= tol * abs(he[0].loss)
    # written back: gradients (the last batch's) and the optimizer's state are ordinary minidl state
    grads = [p.grad for p in compiled.model.parameters()]
    assert all(g is not None for g in grads)
    assert rel(grads, [p.grad for p in eager.model.parameters()]) < 1e3 * tol
    assert compiled.optimizer.state_dict()["param_groups"] == eager.optimizer.state_dict()["param_groups"]


def test_the_compiled_scan_equals_eager_and_a_scheduler_does_not_recompile():
    """The epoch as one torch.compile'd scan (backend eager: no code generation); lr is a graph input."""
    x, y = data(48, torch.float64)
    runs = {}
    for compile in (False, True):
        model = seed_mlp(torch.float64)
        optimizer = SGD(model.parameters(), lr=0.05)
        t = trainer(model, compile, "eager", optimizer, scheduler=StepLR(optimizer, step_size=1, gamma=0.5))
        runs[compile] = (t, t.fit(x, y, epochs=3, batch_size=5))
    (eager, he), (compiled, hc) = runs[False], runs[True]
    assert [r.lr for r in hc] == [r.lr for r in he] == [0.05, 0.025, 0.0125]
    assert compiled._compiled.epochs_run == 3 and len(compiled._compiled.keys) == 1
    assert rel(weights(compiled), weights(eager)) < 1e-10


class ValueBranch(mnn.Module):
    """A user's layer that declares itself capturable but branches on a tensor's value in its backward."""

    capturable = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 1.0

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return grad_output * 2.0 if grad_output.abs().sum() > 1e9 else grad_output


class Undeclared(ValueBranch):
    capturable = False


def small(*middle: mnn.Module) -> mnn.Module:
    torch.manual_seed(0)
    return mnn.Sequential(mnn.Linear(2, 8), mnn.ReLU(), *middle, mnn.Linear(8, 1))


FALLBACKS = {  # what cannot be captured -> (model, optimizer, what the one line says)
    "value-branch": (lambda: small(ValueBranch()), SGD, "RuntimeError", "get value out of a tracing tensor"),
    "undeclared-layer": (lambda: small(Undeclared()), SGD, "NotCapturable", "does not declare capturable"),
    "dropout": (lambda: small(mnn.Dropout(0.5)), SGD, "NotCapturable", "random numbers"),
    "adam": (lambda: small(), Adam, "NotCapturable", "Adam creates its state"),
    "momentum": (lambda: small(), partial(SGD, momentum=0.9), "NotCapturable", "SGD creates its state"),
    "frozen": (lambda: small().requires_grad_(False), SGD, "NotCapturable", "is frozen"),
}


@pytest.mark.parametrize("case", FALLBACKS)
def test_a_step_that_cannot_be_captured_trains_eagerly_with_one_line(case, capsys):
    make, optimizer, exc, words = FALLBACKS[case]
    x, y = data(40)
    runs = []
    for compile in (False, True):
        model = make()
        t = trainer(model, compile, optimizer=optimizer(model.parameters(), lr=0.01))
        runs.append((t, t.fit(x, y, epochs=3, batch_size=4)))
    (eager, he), (compiled, hc) = runs
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    match = LINE.match(lines[0])
    assert match and match[1] == exc and words in match[2], lines[0]
    assert compiled._compiled.failed and compiled._compiled.epochs_run == 0
    assert [torch.equal(a, b) for a, b in zip(weights(compiled), weights(eager), strict=True)] == [True] * 4
    assert [r.loss for r in hc] == [r.loss for r in he]


class EveryStep(Callback):
    step_every = 1

    def __init__(self) -> None:
        self.steps = 0

    def on_steps(self, steps: int) -> None:
        self.steps += steps


def test_partial_epochs_and_step_callbacks_run_eagerly():
    x, y = data(40)
    t = trainer(seed_mlp(), True)
    t.start(x, y, batch_size=4, epochs=3)
    assert t.run(steps=3) == 3 and not t._compiled.keys  # inside epoch 1: eager, nothing captured
    assert t.run(epochs=1) == 7 and t.loop.epoch == 2 and not t._compiled.keys  # the rest of epoch 1: eager
    assert t.run(epochs=1) == 10 and t._compiled.epochs_run == 1  # a whole epoch: compiled
    stepped = EveryStep()
    u = trainer(seed_mlp(), True, callbacks=[stepped])
    u.fit(x, y, epochs=2, batch_size=4)
    assert stepped.steps == 20 and not u._compiled.keys  # step events: every epoch eager


def test_a_change_of_batch_shape_or_hyperparameter_compiles_again_and_lr_does_not():
    x, y = data(40)
    t = trainer(seed_mlp(), True)
    t.fit(x, y, epochs=2, batch_size=4)
    t.optimizer.param_groups[0]["lr"] = 0.02
    t.fit(x, y, epochs=1, batch_size=4)
    assert len(t._compiled.keys) == 1
    t.optimizer.param_groups[0]["weight_decay"] = 1e-3
    t.fit(x, y, epochs=1, batch_size=4)
    t.fit(x, y, epochs=1, batch_size=8)
    assert len(t._compiled.keys) == 3 and t._compiled.epochs_run == 5


def test_inductors_disk_cache_defaults_to_minidls_folder_unless_set(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    CompiledEpochs("inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "minidl" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    CompiledEpochs("inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


SMALL = ["--n-train", "60", "--n-test", "30", "--batch-size", "8", "--hidden", "8:relu,8:tanh", "--no-plots"]


def test_cli_compile_is_recorded_and_a_resumed_compiled_run_is_bit_identical(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_COMPILE_BACKEND", "graph")
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", *SMALL, "--compile", "--epochs", "4", "--quiet", "--out", str(full)]) == 0
    assert main(["train", *SMALL, "--compile", "--epochs", "2", "--quiet", "--out", str(part)]) == 0
    assert '"compile": true' in (part / "config.json").read_text()
    assert main(["train", "--resume", str(part), "--epochs", "4", "--quiet"]) == 0
    assert "minidl: compile" not in capsys.readouterr().err  # every epoch ran compiled
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "metrics.csv").read_text() == (part / "metrics.csv").read_text()


@pytest.mark.skipif(not os.environ.get("MINIDL_FULL_COMPILE_TEST"), reason="inductor: 12-40 s of compilation")
def test_inductor_seed_experiment_equals_eager():
    """The real path: inductor with cpp_wrapper; one epoch float32 and float64, then 50 epochs' accuracy."""
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
        x, y = data(1000, dtype)
        eager, compiled = trainer(seed_mlp(dtype), False), trainer(seed_mlp(dtype), True, "inductor")
        eager.fit(x, y, epochs=1, batch_size=1)
        compiled.fit(x, y, epochs=1, batch_size=1)
        assert compiled._compiled.epochs_run == 1 and rel(weights(compiled), weights(eager)) < tol


@pytest.mark.skipif(not os.environ.get("MINIDL_FULL_COMPILE_TEST"), reason="inductor: 12-40 s of compilation")
def test_inductor_resumed_run_is_bit_identical(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINIDL_COMPILE_BACKEND", "inductor")
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(["train", *SMALL, "--compile", "--epochs", "3", "--quiet", "--out", str(full)]) == 0
    assert main(["train", *SMALL, "--compile", "--epochs", "1", "--quiet", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "3", "--quiet"]) == 0
    assert "minidl: compile" not in capsys.readouterr().err
    a, b = load_file(full / "model.safetensors"), load_file(part / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "metrics.csv").read_text() == (part / "metrics.csv").read_text()
