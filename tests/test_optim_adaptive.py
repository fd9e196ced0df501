"""Adam, AdamW, RMSprop and Adagrad against torch.optim, step by step, on small MLPs in float64."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.nn as mnn
from minidl.errors import ConfigError
from minidl.nn.parameter import Parameter
from minidl.optim import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, RMSprop
from tests.test_module import seed_model_minidl, seed_model_torch

TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}

# (optimizer name, hyperparameters): every option torch has, alone and combined
CONFIGS = [
    ("adam", dict(lr=1e-2)),
    ("adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-3)),
    ("adam", dict(lr=1e-2, amsgrad=True)),
    ("adam", dict(lr=1e-2, weight_decay=0.1)),
    ("adam", dict(lr=1e-3, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("adamw", dict(lr=1e-2)),
    ("adamw", dict(lr=1e-2, weight_decay=0.3, amsgrad=True)),
    ("adamw", dict(lr=1e-3, betas=(0.5, 0.9), maximize=True)),
    ("rmsprop", dict(lr=1e-3)),
    ("rmsprop", dict(lr=1e-3, alpha=0.9, momentum=0.9)),
    ("rmsprop", dict(lr=1e-3, centered=True)),
    ("rmsprop", dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=0.1, eps=1e-4)),
    ("rmsprop", dict(lr=1e-4, maximize=True)),
    ("adagrad", dict(lr=0.05)),
    ("adagrad", dict(lr=0.05, lr_decay=0.01)),
    ("adagrad", dict(lr=0.05, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("adagrad", dict(lr=0.01, eps=1e-3, maximize=True)),
]


def torch_optimizer(name: str, params, **kwargs) -> torch.optim.Optimizer:
    """torch's optimizer on the single-tensor path (the one minidl reproduces operation for operation)."""
    return TORCH_OPTIMIZERS[name](params, foreach=False, **kwargs)


def twin_models(seed: int = 0, small: bool = False):
    """A minidl model and a torch model with the same float64 weights."""
    torch.manual_seed(seed)
    if small:
        ours = mnn.Sequential(mnn.Linear(2, 4), mnn.Tanh(), mnn.Linear(4, 1)).double()
        theirs = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    else:
        ours, theirs = seed_model_minidl().double(), seed_model_torch().double()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def batches(n: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        yield torch.rand(8, 2, generator=gen, dtype=torch.float64), torch.rand(8, 1, generator=gen, dtype=torch.float64)


def minidl_step(model, opt, x, y) -> float:
    loss = mnn.MSELoss()
    opt.zero_grad()
    value = loss(model(x), y)
    model.backward(loss.backward())
    opt.step()
    return float(value)


def torch_step(model, opt, x, y) -> float:
    opt.zero_grad()
    value = torch.nn.functional.mse_loss(model(x), y)
    value.backward()
    opt.step()
    return float(value.detach())


def assert_same_weights(ours, theirs, atol: float, msg: str = "") -> None:
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value.detach(), atol=atol, rtol=0, msg=f"{msg} {key}")


def through_json(state_dict):
    """What a checkpoint does: tensors stored aside, everything else through JSON (tuples -> lists, keys -> str)."""
    tensors = []

    def strip(value):
        if isinstance(value, torch.Tensor):
            tensors.append(value.clone())
            return {"__tensor__": len(tensors) - 1}
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        assert value is None or isinstance(value, (bool, int, float, str)), f"not JSON-simple: {value!r}"
        return value

    def restore(value):
        if isinstance(value, dict):
            return tensors[value["__tensor__"]] if "__tensor__" in value else {k: restore(v) for k, v in value.items()}
        return [restore(v) for v in value] if isinstance(value, list) else value

    return restore(json.loads(json.dumps(strip(state_dict))))


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[f"{n}-{c}" for n, c in CONFIGS])
def test_tracks_torch_for_200_steps(name, config):
    ours, theirs = twin_models()
    opt = OPTIMIZERS[name](ours.parameters(), **config)
    ref = torch_optimizer(name, theirs.parameters(), **config)
    start = ours.state_dict()["0.weight"].clone()
    for step, (x, y) in enumerate(batches(200)):
        minidl_step(ours, opt, x, y)
        torch_step(theirs, ref, x, y)
        if step % 50 == 49 or step == 0:
            assert_same_weights(ours, theirs, atol=1e-10, msg=f"step {step}:")
    assert not torch.equal(ours.state_dict()["0.weight"], start)  # it trained


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad"])
def test_param_groups_with_their_own_options_track_torch(name):
    ours, theirs = twin_models(small=True)
    first, second = list(ours.parameters())[:2], list(ours.parameters())[2:]
    groups = [{"params": first}, {"params": second, "lr": 0.05, "weight_decay": 0.2}]
    opt = OPTIMIZERS[name](groups, lr=0.01)
    tfirst, tsecond = list(theirs.parameters())[:2], list(theirs.parameters())[2:]
    ref = torch_optimizer(name, [{"params": tfirst}, {"params": tsecond, "lr": 0.05, "weight_decay": 0.2}], lr=0.01)
    for x, y in batches(50):
        minidl_step(ours, opt, x, y)
        torch_step(theirs, ref, x, y)
    assert_same_weights(ours, theirs, atol=1e-10)


@pytest.mark.parametrize(("name", "config"), [CONFIGS[4], CONFIGS[6], CONFIGS[11], CONFIGS[15]], ids=str)
def test_state_dict_through_json_resumes_bit_for_bit_in_a_fresh_optimizer(name, config):
    a, _ = twin_models(small=True)
    b, _ = twin_models(small=True)
    opt_a = OPTIMIZERS[name](a.parameters(), **config)
    opt_b = OPTIMIZERS[name](b.parameters(), **config)
    data = list(batches(40))
    for x, y in data[:20]:
        minidl_step(a, opt_a, x, y)
        minidl_step(b, opt_b, x, y)
    saved = through_json(opt_b.state_dict())
    minidl_step(b, opt_b, *data[20])  # the snapshot must not follow the old optimizer
    b.load_state_dict(a.state_dict())
    fresh = OPTIMIZERS[name](b.parameters(), lr=123.0)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == config["lr"]
    assert all(isinstance(s["step"], float) for s in fresh.state.values())
    for x, y in data[20:]:
        minidl_step(a, opt_a, x, y)
        minidl_step(b, fresh, x, y)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key


@pytest.mark.parametrize(("name", "config"), [CONFIGS[2], CONFIGS[6], CONFIGS[12], CONFIGS[15]], ids=str)
def test_torch_state_dict_loads_and_the_run_continues_like_torch(name, config):
    ours, theirs = twin_models(small=True)
    ref = torch_optimizer(name, theirs.parameters(), **config)
    data = list(batches(30))
    for x, y in data[:10]:
        torch_step(theirs, ref, x, y)
    ours.load_state_dict({k: v.detach() for k, v in theirs.state_dict().items()})
    opt = OPTIMIZERS[name](ours.parameters())
    opt.load_state_dict(ref.state_dict())
    assert "foreach" not in opt.param_groups[0]  # torch-only options are not taken
    for x, y in data[10:]:
        minidl_step(ours, opt, x, y)
        torch_step(theirs, ref, x, y)
    assert_same_weights(ours, theirs, atol=1e-10)


def test_state_dict_names_follow_torch():
    model, _ = twin_models(small=True)
    expected = {
        Adam(model.parameters(), amsgrad=True): {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
        AdamW(model.parameters()): {"step", "exp_avg", "exp_avg_sq"},
        RMSprop(model.parameters(), momentum=0.9, centered=True): {"step", "square_avg", "momentum_buffer", "grad_avg"},
        Adagrad(model.parameters()): {"step", "sum"},
    }
    for opt, names in expected.items():
        opt.step()
        assert set(opt.state_dict()["state"][0]) == names, type(opt).__name__
        assert opt.state_dict()["state"][0]["step"] == 1.0


def test_adamw_defaults_and_registry():
    model, _ = twin_models(small=True)
    assert AdamW(model.parameters()).defaults["weight_decay"] == 1e-2
    assert Adam(model.parameters()).defaults["weight_decay"] == 0
    assert {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad} == OPTIMIZERS


# (class, hyperparameters, message); torch raises the same message where it checks the same thing
INVALID = [
    (Adam, dict(lr=-0.1), "Invalid learning rate: -0.1"),
    (Adam, dict(lr=math.nan), "Invalid learning rate: nan"),
    (Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (Adam, dict(betas=(0.9, -0.5)), "Invalid beta parameter at index 1: -0.5"),
    (Adam, dict(eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (Adam, dict(weight_decay=-0.01), "Invalid weight_decay value: -0.01"),
    (AdamW, dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0"),
    (AdamW, dict(betas=(0.9, 1.5)), "Invalid beta parameter at index 1: 1.5"),
    (RMSprop, dict(lr=-1.0), "Invalid learning rate: -1.0"),
    (RMSprop, dict(alpha=-0.5), "Invalid alpha value: -0.5"),
    (RMSprop, dict(momentum=-0.9), "Invalid momentum value: -0.9"),
    (RMSprop, dict(eps=-1.0), "Invalid epsilon value: -1.0"),
    (RMSprop, dict(weight_decay=-2.0), "Invalid weight_decay value: -2.0"),
    (Adagrad, dict(lr_decay=-0.1), "Invalid lr_decay value: -0.1"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value value: -1.0"),
    (Adagrad, dict(eps=-1e-10), "Invalid epsilon value: -1e-10"),
    (Adagrad, dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5"),
    (SGD, dict(lr=-0.1), "Invalid learning rate: -0.1"),
]


@pytest.mark.parametrize(("cls", "kwargs", "message"), INVALID, ids=[f"{c.__name__}-{k}" for c, k, _ in INVALID])
def test_invalid_hyperparameters_raise_config_error_with_torchs_message(cls, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        cls(mnn.Linear(2, 2).parameters(), **kwargs)
    name = next(n for n, c in OPTIMIZERS.items() if c is cls)
    with pytest.raises(ValueError, match=re.escape(message)):
        TORCH_OPTIMIZERS[name](torch.nn.Linear(2, 2).parameters(), **kwargs)


def test_invalid_values_in_a_loaded_state_dict_are_rejected():
    model = mnn.Linear(2, 2)
    saved = Adam(model.parameters()).state_dict()
    saved["param_groups"][0]["betas"] = [0.9, 1.0]
    with pytest.raises(ConfigError, match=re.escape("Invalid beta parameter at index 1: 1.0")):
        Adam(model.parameters()).load_state_dict(saved)


OPTIONS = {  # each optimizer's options as hypothesis strategies
    "sgd": dict(lr=st.floats(0, 1), momentum=st.floats(0, 0.99), weight_decay=st.floats(0, 0.5)),
    "adam": dict(
        lr=st.floats(0, 1),
        betas=st.tuples(st.floats(0, 0.99), st.floats(0, 0.999)),
        eps=st.floats(1e-12, 1e-2),
        weight_decay=st.floats(0, 0.5),
        amsgrad=st.booleans(),
        maximize=st.booleans(),
    ),
    "rmsprop": dict(
        lr=st.floats(0, 1),
        alpha=st.floats(0, 0.999),
        eps=st.floats(1e-12, 1e-2),
        weight_decay=st.floats(0, 0.5),
        momentum=st.floats(0, 0.99),
        centered=st.booleans(),
        maximize=st.booleans(),
    ),
    "adagrad": dict(
        lr=st.floats(0, 1),
        lr_decay=st.floats(0, 0.5),
        weight_decay=st.floats(0, 0.5),
        initial_accumulator_value=st.floats(0, 1),
        eps=st.floats(1e-12, 1e-2),
        maximize=st.booleans(),
    ),
}
OPTIONS["adamw"] = OPTIONS["adam"]


@st.composite
def optimizer_cases(draw):
    name = draw(st.sampled_from(sorted(OPTIONS)))
    options = {k: draw(s) for k, s in OPTIONS[name].items() if draw(st.booleans())}
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=3)))
    return name, options, shape, draw(st.sampled_from([torch.float64, torch.float32])), draw(st.integers(0, 2**16))


@given(optimizer_cases())
@settings(max_examples=40)
def test_same_gradients_give_bit_identical_parameters(case):
    """Same operations in the same order as torch's single-tensor path: equal to the last bit, any options."""
    name, options, shape, dtype, seed = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    p, t = Parameter(x.clone()), x.clone().requires_grad_(True)
    opt, ref = OPTIMIZERS[name]([p], **options), torch_optimizer(name, [t], **options)
    for _ in range(10):
        g = torch.randn(shape, generator=gen, dtype=dtype) * 10 ** torch.randint(-3, 3, (), generator=gen)
        p.grad.copy_(g)
        t.grad = g.clone()
        opt.step()
        ref.step()
    torch.testing.assert_close(p.data, t.detach(), rtol=0, atol=0, equal_nan=True)  # NaN where torch has NaN
