"""SGD against torch.optim.SGD, step by step, on a small MLP in float64."""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.errors import ConfigError
from minidl.optim import SGD
from tests.test_module import seed_model_minidl, seed_model_torch

CONFIGS = [
    dict(lr=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.05, weight_decay=0.01),
    dict(lr=0.02, momentum=0.9, dampening=0.1, weight_decay=0.05),
    dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05),
    dict(lr=0.0005, momentum=0.5, maximize=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_tracks_torch_sgd_for_200_steps(config):
    torch.manual_seed(0)
    ours = seed_model_minidl().double()
    theirs = seed_model_torch().double()
    theirs.load_state_dict(ours.state_dict())
    opt = SGD(ours.parameters(), **config)
    ref = torch.optim.SGD(theirs.parameters(), **config)
    loss, ref_loss = mnn.MSELoss(), torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(1)
    for step in range(200):
        x = torch.rand(8, 2, generator=gen, dtype=torch.float64)
        y = torch.rand(8, 1, generator=gen, dtype=torch.float64)
        opt.zero_grad()
        loss(ours(x), y)
        ours.backward(loss.backward())
        opt.step()
        ref.zero_grad()
        ref_loss(theirs(x), y).backward()
        ref.step()
        if step % 50 == 49 or step == 0:
            for key, value in theirs.state_dict().items():
                torch.testing.assert_close(ours.state_dict()[key], value, atol=1e-10, rtol=0, msg=f"step {step}: {key}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(lr=-0.1), "Invalid learning rate: -0.1"),
        (dict(lr=0.1, momentum=-1), "Invalid momentum value: -1"),
        (dict(lr=0.1, weight_decay=-1e-3), "Invalid weight_decay value: -0.001"),
        (dict(lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    ],
)
def test_invalid_hyperparameters_raise_value_error_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SGD(mnn.Linear(2, 2).parameters(), **kwargs)
    assert issubclass(ConfigError, ValueError)


def test_empty_parameter_list_is_rejected():
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)


def test_state_dict_round_trip_resumes_exactly():
    torch.manual_seed(0)
    a = mnn.Linear(3, 2).double()
    b = mnn.Linear(3, 2).double()
    b.load_state_dict(a.state_dict())
    opt_a = SGD(a.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(4, 3, dtype=torch.float64)
    g = torch.randn(4, 2, dtype=torch.float64)

    def step(model, opt):
        opt.zero_grad()
        model(x)
        model.backward(g)
        opt.step()

    step(a, opt_a)
    b.load_state_dict(a.state_dict())
    opt_b = SGD(b.parameters(), lr=0.5)
    opt_b.load_state_dict(opt_a.state_dict())
    assert opt_b.param_groups[0]["lr"] == 0.1 and opt_b.param_groups[0]["momentum"] == 0.9
    for _ in range(3):
        step(a, opt_a)
        step(b, opt_b)
    assert torch.equal(a.weight.data, b.weight.data)


def test_param_groups_take_their_own_lr():
    a, b = mnn.Linear(2, 2), mnn.Linear(2, 2)
    opt = SGD([{"params": a.parameters()}, {"params": b.parameters(), "lr": 1.0}], lr=0.0)
    before_a, before_b = a.weight.data.clone(), b.weight.data.clone()
    for p in [*a.parameters(), *b.parameters()]:
        p.grad.fill_(1.0)
    opt.step()
    assert torch.equal(a.weight.data, before_a)
    assert torch.equal(b.weight.data, before_b - 1.0)
