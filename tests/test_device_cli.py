"""--device and --dtype end to end: the config keys, the flags, where an Experiment puts data, model, loss and
optimizer state, and a saved model moved to another device and dtype after loading (files load on the CPU)."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minidl.cli.train as cli_train
from minidl.cli.main import main
from minidl.distributed import DistContext
from minidl.errors import ConfigError
from minidl.experiment.config import check_layer, resolve
from minidl.experiment.experiment import Experiment
from minidl.experiment.saved_model import SavedModel
from minidl.train import Trainer

SMALL = {"epochs": 1, "batch_size": 20, "data": {"n_train": 60, "n_test": 40}}


def experiment(**layer) -> Experiment:
    return Experiment(resolve(check_layer({**SMALL, **layer}, "test")))


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_defaults_are_one_process_on_the_cpu_in_float32():
    config = resolve()
    assert (config["device"], config["dtype"], config["nproc"]) == ("cpu", "float32", 1)
    e = experiment()
    assert type(e.trainer) is Trainer and e.context == DistContext()
    assert e.model[0].weight.data.dtype == torch.float32 and e.data.train[0].dtype == torch.float32


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"device": "tpu"}, "device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
        ({"device": 0}, "device must be auto"),
        ({"dtype": "float16"}, "dtype must be float32 or float64, got 'float16'"),
        ({"nproc": 0}, "nproc must be an integer >= 1, got 0"),
        ({"nproc": True}, "nproc must be an integer >= 1, got True"),
    ],
)
def test_config_keys_are_checked(layer, message):
    with pytest.raises(ConfigError, match=message):
        check_layer(layer, "run.toml")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:3", "mps", " CUDA:1 "])
def test_any_device_name_is_a_valid_config_even_where_it_is_absent(device):
    """A config.json written on a GPU machine still reads on a laptop; the device is checked when training."""
    assert check_layer({"device": device}, "config.json") == {"device": device}


@pytest.mark.parametrize("loss", [{"name": "mse"}, {"name": "cross-entropy", "weight": [1.0, 3.0]}])
def test_float64_puts_data_model_loss_and_optimizer_state_in_float64(loss):
    e = experiment(dtype="float64", loss=loss, optimizer={"name": "adam", "lr": 0.01})
    e.fit()
    tensors = {
        **{f"data.{name}": getattr(e.data, name)[0] for name in ("train", "val", "test")},
        **{f"param.{k}": v for k, v in e.model.state_dict().items()},
        **{f"grad.{i}": p.grad for i, p in enumerate(e.model.parameters())},
        **{f"state.{i}.{k}": v for i, s in enumerate(e.optimizer.state.values()) for k, v in s.items() if k != "step"},
        "standardizer.mean": e.standardizer.mean,
    }
    if loss["name"] == "cross-entropy":
        tensors["loss.weight"] = e.loss_fn.weight
    assert len([k for k in tensors if k.startswith("state.")]) == 2 * len(list(e.model.parameters()))
    assert {k: v.dtype for k, v in tensors.items()} == dict.fromkeys(tensors, torch.float64)
    assert {v.device.type for v in tensors.values()} == {"cpu"}


def test_the_same_data_in_either_dtype():
    """Generators draw in float64 and round: float32 data is float64 data rounded, not other points."""
    x32, x64 = experiment().data.train[0], experiment(dtype="float64").data.train[0]
    assert torch.equal(x64.float(), x32)


def train_float64() -> tuple[Experiment, bytes]:
    e = experiment(dtype="float64", epochs=2)
    e.fit()
    return e, e.saved_model().to_bytes()


@pytest.mark.parametrize(("device", "dtype"), [("meta", torch.float64), ("meta", torch.float32)])
def test_a_saved_model_loads_on_the_cpu_and_moves_to_another_device(device, dtype):
    _, data = train_float64()
    saved = SavedModel.from_bytes(data)
    assert {(t.device.type, t.dtype) for t in saved.model.state_dict().values()} == {("cpu", torch.float64)}
    saved.model.to(device=device, dtype=dtype)
    saved.loss_fn.to(device=device, dtype=dtype)
    assert {(t.device.type, t.dtype) for t in saved.model.state_dict().values()} == {(device, dtype)}
    assert saved.model(torch.zeros(3, 2, device=device, dtype=dtype)).shape == (3, 1)


def test_a_float64_model_moved_to_float32_predicts_the_same():
    trained, data = train_float64()
    saved = SavedModel.from_bytes(data)
    x = trained.data.test[0]  # raw float64 features: SavedModel standardises them itself
    want = saved.output(x)
    saved.model.to(dtype=torch.float32)
    got = saved.output(x.float())
    assert got.dtype == torch.float32 and torch.allclose(got.double(), want, rtol=0, atol=1e-5)


def test_train_dtype_float64_writes_a_float64_model(tmp_path):
    flags = ["--dtype", "float64", "--epochs", "1", "--batch-size", "20", "--n-train", "60", "--n-test", "40"]
    code, _, err = run(["train", *flags, "--no-plots", "--quiet", "--out", str(tmp_path / "r")])
    assert code == 0, err
    assert {t.dtype for t in load_file(tmp_path / "r" / "model.safetensors").values()} == {torch.float64}
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert (config["device"], config["dtype"], config["nproc"]) == ("cpu", "float64", 1)


@pytest.mark.parametrize(
    ("flags", "code", "message"),
    [
        (["--device", "tpu"], 2, "argument --device: unknown device 'tpu'; choose from auto, cpu, cuda, cuda:N, mps"),
        (["--dtype", "float16"], 2, "argument --dtype: invalid choice: 'float16'"),
        (["--nproc", "0"], 2, "argument --nproc: must be an integer >= 1, got 0"),
        (["--device", "mps"], 1, "device 'mps' was requested but torch.backends.mps.is_available() is False"),
        # checked before torchrun starts: no process is launched for a device that is not there
        (["--nproc", "2", "--device", "mps"], 1, "device 'mps' was requested"),
    ],
)
def test_bad_device_flags_are_one_line_errors_before_any_work(tmp_path, monkeypatch, flags, code, message):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(cli_train, "launch", lambda *a, **k: pytest.fail("torchrun was started"))
    got, _, err = run(["train", *flags, "--out", str(tmp_path / "r")])
    assert got == code and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_one_error(tmp_path):
    code, _, err = run(["train", "--device", "cuda", "--out", str(tmp_path / "r")])
    assert code == 1 and "device 'cuda' was requested but torch.cuda.is_available() is False" in err


def launched_jobs(monkeypatch) -> list[tuple[int, list[str], dict]]:
    """Replaces torchrun: records (nproc, the workers' argv, the job file they would read)."""
    launched = []

    def launch(n, argv, **kwargs):
        launched.append((n, argv, json.loads(Path(argv[argv.index("--worker-job") + 1]).read_text())))
        return 0

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(cli_train, "launch", launch)
    return launched


def test_nproc_launches_torchrun_with_the_resolved_config(tmp_path, monkeypatch):
    """``minidl train --nproc 2 ...`` hands torchrun's workers the resolved config, not a command line."""
    argv = ["train", "--epochs", "1", "--nproc", "2", "--out", str(tmp_path / "r")]
    launched = launched_jobs(monkeypatch)
    monkeypatch.setattr(sys, "argv", ["minidl", *argv])
    assert run(argv)[0] == 0
    ((n, worker_argv, job),) = launched
    assert n == 2 and worker_argv[:2] == ["train", "--worker-job"] and len(worker_argv) == 3
    assert job["config"] == resolve({"epochs": 1, "nproc": 2}) and job["out"] == str(tmp_path / "r")
    assert not (tmp_path / "r").exists()  # the workers make the folder, not the launcher


def test_nproc_from_python_hands_the_workers_the_given_settings(tmp_path, monkeypatch):
    """``main([...])`` works whatever sys.argv holds: the workers read the job file."""
    monkeypatch.setattr(sys, "argv", ["pytest", "-q"])
    launched = launched_jobs(monkeypatch)
    argv = ["train", "--nproc", "2", "--epochs", "1", "--out", str(tmp_path / "r")]
    code, _, err = run(argv)
    assert code == 0, err
    ((n, _, job),) = launched
    assert n == 2 and job["config"] == resolve({"epochs": 1, "nproc": 2})


def test_evaluate_prints_what_a_float64_run_printed(tmp_path):
    flags = ["--dtype", "float64", "--epochs", "1", "--batch-size", "20", "--n-train", "60", "--n-test", "40"]
    code, out, err = run(["train", *flags, "--no-plots", "--quiet", "--out", str(tmp_path / "r")])
    assert code == 0, err
    again, printed, err = run(["evaluate", str(tmp_path / "r")])
    assert again == 0, err
    assert printed.splitlines() == [line for line in out.splitlines() if line.startswith("test:")]


def test_figures_of_a_gpu_run_come_from_the_saved_model_on_the_cpu():
    """On another device ``minidl train`` draws from the saved model read back on the CPU, evaluated on the
    raw test split: the same metrics as the run's own evaluation (here both on the CPU)."""
    trained, data = train_float64()
    cpu = SavedModel.from_bytes(data)
    again, want = cpu.evaluate(*trained.data.test), trained.evaluate("test")
    assert again.loss == pytest.approx(want.loss, rel=1e-12) and again.accuracy == want.accuracy
    assert torch.equal(again.metrics.confusion, want.metrics.confusion)
