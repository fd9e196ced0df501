"""The Trainer steps in torch.inference_mode: the same numbers, and training continues fine outside it.

A tensor born in inference mode cannot be updated in place outside it, so nothing that lives on after a
step (optimizer state, parameters, grads, buffers) may be born there: the optimizer makes its state
outside it, the rest is updated in place.
"""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.data import DataLoader
from minidl.optim import OPTIMIZERS
from minidl.train import Trainer
from tests.test_module import Scale

CASES = [
    ("sgd", dict(lr=0.05, momentum=0.9)),
    ("adam", dict(lr=1e-2, amsgrad=True)),
    ("rmsprop", dict(lr=1e-3, momentum=0.5, centered=True)),
    ("adagrad", dict(lr=0.05)),
]


def model() -> mnn.Module:
    layers = [mnn.Linear(3, 6), mnn.BatchNorm1d(6), mnn.ReLU(), mnn.Dropout(0.2, generator=7), Scale(6)]
    return mnn.Sequential(*layers, mnn.Tanh(), mnn.Linear(6, 1))


def user_steps(net: mnn.Module, opt, loader, epochs: int = 1) -> None:
    loss = mnn.MSELoss()
    for _ in range(epochs):
        net.train()
        for xb, yb in loader:
            loss(net(xb), yb)
            opt.zero_grad()
            net.backward(loss.backward())
            opt.step()


def tensors_of(net: mnn.Module, opt) -> list[torch.Tensor]:
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return [
        *(p.data for p in net.parameters()),
        *(p.grad for p in net.parameters()),
        *net.state_dict().values(),
        *state,
    ]


@pytest.mark.parametrize(("name", "config"), CASES, ids=[n for n, _ in CASES])
def test_fit_then_a_users_own_loop_outside_inference_mode_matches_the_loop_alone(name, config):
    torch.manual_seed(0)
    x, y = torch.randn(48, 3), torch.randn(48, 1)
    fitted, looped = model(), model()
    looped.load_state_dict(fitted.state_dict())
    opt_fit, opt_loop = OPTIMIZERS[name](fitted.parameters(), **config), OPTIMIZERS[name](looped.parameters(), **config)
    Trainer(fitted, mnn.MSELoss(), opt_fit).fit(x, y, epochs=2, batch_size=8, seed=4)
    assert not any(t.is_inference() for t in tensors_of(fitted, opt_fit))
    user_steps(looped, opt_loop, DataLoader(x, y, 8, shuffle=True, seed=4), epochs=2)
    more = DataLoader(x, y, 16)
    user_steps(fitted, opt_fit, more)  # in place on everything the Trainer left: would raise on inference tensors
    user_steps(looped, opt_loop, more)
    for key, value in looped.state_dict().items():
        assert torch.equal(fitted.state_dict()[key], value), key


@pytest.mark.parametrize("packed", [True, False], ids=["flat", "per-parameter"])
@pytest.mark.parametrize(("name", "config"), CASES, ids=[n for n, _ in CASES])
def test_state_made_by_a_step_in_inference_mode_is_a_normal_tensor(name, config, packed):
    net = mnn.Sequential(mnn.Linear(2, 3), mnn.Tanh(), mnn.Linear(3, 1))
    opt = OPTIMIZERS[name](net.parameters(), **config)
    if not packed:
        for p in net.parameters():
            p.data, p.grad = p.data.clone(), p.grad.clone()
    for p in net.parameters():
        p.grad.fill_(0.5)
    with torch.inference_mode():
        opt.step()
        opt.load_state_dict(opt.state_dict())  # a divergence replay loads state inside fit, too
    assert opt.state and not any(t.is_inference() for t in tensors_of(net, opt))
    opt.step()  # outside: in place on the state
    assert all(s["step"] == 2 for s in opt.state.values() if "step" in s)
