"""backward_parameters: the parameter gradients of backward without the data's gradient, and the Trainer uses it."""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.data import DataLoader
from minidl.optim import SGD
from minidl.train import Trainer
from tests.test_module import Scale, seed_model_minidl

MODELS = {
    "seed-mlp": seed_model_minidl,
    "parameter-free-first": lambda: mnn.Sequential(mnn.ReLU(), mnn.Linear(2, 3), mnn.Tanh(), mnn.Linear(3, 1)),
    "user-layer-first": lambda: mnn.Sequential(Scale(2), mnn.Sigmoid(), mnn.Linear(2, 1)),
    "nested": lambda: mnn.Sequential(mnn.Sequential(mnn.Linear(2, 4, bias=False), mnn.ReLU()), mnn.Linear(4, 1)),
    "linear-3d-input": lambda: mnn.Linear(2, 1),
}


@pytest.mark.parametrize("model", MODELS)
def test_backward_parameters_accumulates_exactly_the_grads_of_backward(model):
    torch.manual_seed(0)
    full, params_only = MODELS[model](), MODELS[model]()
    params_only.load_state_dict(full.state_dict())
    x = torch.randn(3, 5, 2) if model == "linear-3d-input" else torch.randn(6, 2)
    g = torch.randn(*x.shape[:-1], 1)
    for _ in range(2):  # the grads accumulate the same way
        full(x)
        assert full.backward(g).shape == x.shape
        params_only(x)
        assert params_only.backward_parameters(g) is None
    grads = {name: p.grad for name, p in params_only.named_parameters()}
    for name, p in full.named_parameters():
        assert p.grad.abs().sum() > 0, name
        assert torch.equal(grads[name], p.grad), name


def test_trainer_steps_exactly_as_the_loop_with_backward():
    torch.manual_seed(0)
    x, y = torch.randn(40, 2), torch.randn(40, 1)
    ours, loop = seed_model_minidl(), seed_model_minidl()
    loop.load_state_dict(ours.state_dict())
    Trainer(ours, mnn.MSELoss(), SGD(ours.parameters(), lr=0.05, momentum=0.9)).fit(
        x, y, epochs=2, batch_size=8, seed=3
    )
    loss, opt = mnn.MSELoss(), SGD(loop.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(x, y, 8, shuffle=True, seed=3)
    for _ in range(2):
        for xb, yb in loader:
            loss(loop(xb), yb)
            opt.zero_grad()
            loop.backward(loss.backward())
            opt.step()
    for key, value in loop.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
