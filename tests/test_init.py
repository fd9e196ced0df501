"""minidl.nn.init against torch.nn.init: the same seed gives bit-identical tensors; the same errors."""

from __future__ import annotations

import math

import pytest
import torch

import minidl.nn as mnn
from minidl.errors import ConfigError
from minidl.nn import init

# (function name, positional args after the tensor, keyword args)
FUNCTIONS = [
    ("uniform_", (), {}),
    ("uniform_", (-2.0, 3.5), {}),
    ("normal_", (), {}),
    ("normal_", (1.5, 0.25), {}),
    ("constant_", (0.3,), {}),
    ("zeros_", (), {}),
    ("ones_", (), {}),
    ("xavier_uniform_", (), {}),
    ("xavier_uniform_", (), {"gain": 5 / 3}),
    ("xavier_normal_", (), {}),
    ("xavier_normal_", (), {"gain": math.sqrt(2)}),
    ("kaiming_uniform_", (), {}),
    ("kaiming_uniform_", (), {"a": math.sqrt(5)}),  # what Linear uses
    ("kaiming_uniform_", (), {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_uniform_", (), {"mode": "FAN_OUT", "nonlinearity": "relu"}),
    ("kaiming_uniform_", (), {"nonlinearity": "tanh"}),
    ("kaiming_uniform_", (), {"nonlinearity": "selu", "mode": "fan_in"}),
    ("kaiming_normal_", (), {}),
    ("kaiming_normal_", (), {"a": 0.1, "mode": "fan_out", "nonlinearity": "leaky_relu"}),
    ("kaiming_normal_", (), {"nonlinearity": "relu"}),
    ("kaiming_normal_", (), {"nonlinearity": "linear"}),
    ("kaiming_normal_", (), {"nonlinearity": "sigmoid", "mode": "fan_out"}),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(FUNCTIONS)]
RANDOM = [row for row in FUNCTIONS if row[0] not in ("zeros_", "ones_", "constant_")]
SHAPES = [(3, 5), (1, 1), (8, 4, 3), (2, 3, 2, 2)]


@pytest.mark.parametrize(("name", "args", "kwargs"), FUNCTIONS, ids=IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=[str(s) for s in SHAPES])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_seed_gives_bit_identical_tensors(name, args, kwargs, shape, dtype):
    torch.manual_seed(42)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=dtype), *args, **kwargs)
    torch.manual_seed(42)
    ours = getattr(init, name)(torch.empty(shape, dtype=dtype), *args, **kwargs)
    assert torch.equal(ours, theirs)
    if name not in ("zeros_", "ones_", "constant_") and ours.numel() > 1:
        assert ours.unique().numel() > 1  # really drawn, not a constant


@pytest.mark.parametrize(
    ("name", "args", "kwargs"), [f for f in FUNCTIONS if f[0] not in ("zeros_", "ones_", "constant_")]
)
def test_explicit_generator_and_parameter_argument(name, args, kwargs):
    theirs = getattr(torch.nn.init, name)(
        torch.empty(4, 6), *args, **kwargs, generator=torch.Generator().manual_seed(3)
    )
    state = torch.get_rng_state()
    param = mnn.Parameter(torch.empty(4, 6))
    returned = getattr(init, name)(param, *args, **kwargs, generator=torch.Generator().manual_seed(3))
    assert returned is param.data and torch.equal(param.data, theirs)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not touched


NONLINEARITIES = [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None), ("conv_transpose1d", None),
    ("conv_transpose2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1), ("leaky_relu", 0), ("selu", None),
]  # fmt: skip


@pytest.mark.parametrize(("nonlinearity", "param"), NONLINEARITIES)
def test_calculate_gain_matches_torch(nonlinearity, param):
    assert init.calculate_gain(nonlinearity, param) == torch.nn.init.calculate_gain(nonlinearity, param)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.calculate_gain("swish"), r"(?i)unsupported nonlinearity '?swish"),
        (lambda m: m.calculate_gain("leaky_relu", "0.1"), r"negative_slope '?0.1'? (is )?not a valid number"),
        (lambda m: m.calculate_gain("leaky_relu", True), r"negative_slope True (is )?not a valid number"),
        (lambda m: m.xavier_uniform_(torch.empty(5)), r"(?i)fan in and fan out.*(fewer than|at least) 2 dimensions"),
        (lambda m: m.kaiming_normal_(torch.empty(3)), r"(?i)fan in and fan out"),
        (lambda m: m.kaiming_uniform_(torch.empty(3, 3), mode="fan_avg"), r"(?i)mode '?fan_avg'? not supported"),
    ],
    ids=["unknown-nonlinearity", "slope-string", "slope-bool", "xavier-1d", "kaiming-1d", "bad-mode"],
)
def test_errors_are_value_errors_like_torchs(call, message):
    with pytest.raises(ValueError, match=message):
        call(torch.nn.init)
    with pytest.raises(ConfigError, match=message):
        call(init)


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_zero_element_tensors_are_left_alone_with_a_warning(name):
    state = torch.get_rng_state()
    with pytest.warns(UserWarning, match="zero-element tensors is a no-op"):
        out = getattr(init, name)(torch.empty(0, 3))
    assert out.shape == (0, 3) and torch.equal(torch.get_rng_state(), state)


def test_linear_uses_torchs_initialisation():
    torch.manual_seed(7)
    theirs = torch.nn.Linear(9, 4)
    torch.manual_seed(7)
    ours = mnn.Linear(9, 4)
    assert torch.equal(ours.weight.data, theirs.weight.detach())
    assert torch.equal(ours.bias.data, theirs.bias.detach())
