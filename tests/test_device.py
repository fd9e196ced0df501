"""Devices and dtypes: names resolve to devices that exist here; parameters, grads, buffers and
optimizer state follow ``model.to``. Moves are tested on the ``meta`` device, which every torch build has."""

from __future__ import annotations

import pytest
import torch

import minidl.device
import minidl.nn as mnn
import minidl.optim
from minidl.device import resolve_device, resolve_dtype
from minidl.errors import ConfigError


@pytest.fixture
def machine(monkeypatch):
    """Pretend to have ``cuda`` CUDA devices and MPS or not."""

    def set_(cuda: int = 0, mps: bool = False) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(minidl.device, "mps_is_available", lambda: mps)

    return set_


@pytest.mark.parametrize(
    ("cuda", "mps", "spec", "expected"),
    [
        (0, False, "auto", "cpu"),
        (0, True, "auto", "mps"),
        (2, True, "auto", "cuda"),
        (2, False, "cpu", "cpu"),
        (2, False, " CUDA ", "cuda"),
        (2, False, "cuda:1", "cuda:1"),
        (0, True, "mps", "mps"),
        (0, False, torch.device("cpu"), "cpu"),
    ],
)
def test_resolve_device(machine, cuda, mps, spec, expected):
    machine(cuda, mps)
    assert resolve_device(spec) == torch.device(expected)


@pytest.mark.parametrize(
    ("cuda", "spec", "message"),
    [
        (0, "cuda", "device 'cuda' was requested but torch.cuda.is_available() is False"),
        (0, "cuda:0", "device 'cuda:0' was requested but torch.cuda.is_available() is False"),
        (1, "cuda:1", "device 'cuda:1' was requested but only 1 CUDA device(s) are visible"),
        (0, "mps", "device 'mps' was requested but torch.backends.mps.is_available() is False"),
        (0, "tpu", "unknown device 'tpu'; choose from auto, cpu, cuda, cuda:N, mps"),
        (0, "cuda:x", "unknown device 'cuda:x'"),
        (0, "cpu:1", "unknown device 'cpu:1'"),
    ],
)
def test_resolve_device_names_what_is_missing(machine, cuda, spec, message):
    machine(cuda, False)
    with pytest.raises(ConfigError) as error:
        resolve_device(spec)
    assert message in str(error.value)


def test_resolve_device_on_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "mps" if minidl.device.mps_is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("float32", torch.float32),
        ("float64", torch.float64),
        ("torch.float64", torch.float64),
        (torch.float32, torch.float32),
    ],
)
def test_resolve_dtype(spec, expected):
    assert resolve_dtype(spec) is expected


@pytest.mark.parametrize("spec", ["float16", "int64", torch.int64, "double"])
def test_resolve_dtype_rejects_others(spec):
    with pytest.raises(ConfigError, match="choose from float32, float64"):
        resolve_dtype(spec)


class WithBuffers(mnn.Module):
    """A layer with a floating and an integer buffer, as BatchNorm's running stats and step count."""

    def __init__(self) -> None:
        self.linear = mnn.Linear(3, 2)
        self.register_buffer("running_mean", torch.arange(2.0))
        self.register_buffer("num_batches_tracked", torch.tensor(7))


@pytest.mark.parametrize(("device", "dtype"), [("meta", None), ("cpu", torch.float64), ("meta", torch.float64)])
def test_to_moves_parameters_grads_and_buffers(device, dtype):
    model = WithBuffers()
    model.linear.weight.grad.fill_(0.25)
    assert model.to(device=device, dtype=dtype) is model
    want = dtype or torch.float32
    for p in model.parameters():
        assert (p.data.device.type, p.data.dtype) == (device, want)
        assert (p.grad.device.type, p.grad.dtype, p.grad.shape) == (device, want, p.data.shape)
    assert (model.running_mean.device.type, model.running_mean.dtype) == (device, want)
    assert (model.num_batches_tracked.device.type, model.num_batches_tracked.dtype) == (device, torch.int64)
    assert set(model.state_dict()) == {"linear.weight", "linear.bias", "running_mean", "num_batches_tracked"}
    if device == "cpu":
        assert model.linear.weight.grad.eq(0.25).all() and model.running_mean.tolist() == [0.0, 1.0]


def test_to_rejects_an_integer_dtype():
    with pytest.raises(TypeError, match="floating-point"):
        mnn.Linear(2, 2).to(dtype=torch.int64)


OPTIMIZERS = [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))]


@pytest.mark.parametrize(("name", "kwargs"), OPTIMIZERS, ids=[n for n, _ in OPTIMIZERS])
@pytest.mark.parametrize(("device", "dtype"), [("meta", torch.float32), ("cpu", torch.float64)])
def test_optimizer_state_follows_the_parameters_device_and_dtype(name, kwargs, device, dtype):
    """A state_dict saved on one device loads onto a model on another (the checkpoint path)."""
    optimizer_cls = getattr(minidl.optim, name, None)
    if optimizer_cls is None:
        pytest.skip(f"minidl.optim has no {name}")
    torch.manual_seed(0)
    model = mnn.Sequential(mnn.Linear(2, 3), mnn.Tanh(), mnn.Linear(3, 1))
    optimizer = optimizer_cls(model.parameters(), **kwargs)
    loss = mnn.MSELoss()
    loss(model(torch.rand(4, 2)), torch.rand(4, 1))
    model.backward(loss.backward())
    optimizer.step()
    saved = optimizer.state_dict()
    assert saved["state"], "the optimizer kept no state to move"

    torch.manual_seed(0)
    moved = mnn.Sequential(mnn.Linear(2, 3), mnn.Tanh(), mnn.Linear(3, 1)).to(device=device, dtype=dtype)
    restored = optimizer_cls(moved.parameters(), **kwargs)
    restored.load_state_dict(saved)
    for p in moved.parameters():
        for key, value in restored.state[p].items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                assert (value.device.type, value.dtype, value.shape) == (device, dtype, p.shape), key
