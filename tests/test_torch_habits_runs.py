"""Issue 10's acceptance runs: 100 steps each, minidl against torch.nn + autograd + torch.optim (float64, 1e-10).

A fine-tuning run with the first layers frozen, a run with a shared activation instance and tied weights,
and a run whose loop logs a validation loss between forward and backward.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn as tnn

import minidl
import minidl.nn as mnn
import minidl.optim as mo

TOL = {"atol": 1e-10, "rtol": 1e-10}
DT = torch.float64
STEPS = 100


class SharedOurs(mnn.Module):
    """One Tanh instance used three times and one Linear (tied weights) used twice."""

    def __init__(self):
        self.inp = mnn.Linear(3, 6)
        self.tied = mnn.Linear(6, 6)
        self.act = mnn.Tanh()
        self.out = mnn.Linear(6, 1)

    def forward(self, x):
        return self.out(self.act(self.tied(self.act(self.tied(self.act(self.inp(x)))))))

    def backward(self, g):
        for layer in (self.out, self.act, self.tied, self.act, self.tied, self.act, self.inp):
            g = layer.backward(g)
        return g


class SharedTheirs(tnn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.tied, self.act, self.out = tnn.Linear(3, 6), tnn.Linear(6, 6), tnn.Tanh(), tnn.Linear(6, 1)

    def forward(self, x):
        return self.out(self.act(self.tied(self.act(self.tied(self.act(self.inp(x)))))))


def mlp_pair():
    ours = mnn.Sequential(mnn.Linear(3, 8), mnn.ReLU(), mnn.Linear(8, 8), mnn.Tanh(), mnn.Linear(8, 1)).double()
    theirs = tnn.Sequential(tnn.Linear(3, 8), tnn.ReLU(), tnn.Linear(8, 8), tnn.Tanh(), tnn.Linear(8, 1)).double()
    return ours, theirs


def frozen_pair():
    ours, theirs = mlp_pair()
    ours[0].requires_grad_(False)  # fine-tuning: the first layer stays as loaded
    theirs[0].requires_grad_(False)
    ours[2].weight.requires_grad = False
    theirs[2].weight.requires_grad = False
    return ours, theirs


def shared_pair():
    return SharedOurs().double(), SharedTheirs().double()


RUNS = {
    # name: (models, optimizer name and arguments, log a validation loss between forward and backward)
    "fine-tune-frozen-first-layers": (frozen_pair, "SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}, False),
    "shared-activation-tied-weights": (shared_pair, "Adam", {"lr": 0.01, "weight_decay": 1e-3}, False),
    "validation-loss-logged-mid-step": (mlp_pair, "RMSprop", {"lr": 0.01, "momentum": 0.5}, True),
}  # fmt: skip


@pytest.mark.parametrize("run", list(RUNS))
def test_100_steps_match_torch(run):
    make, opt_name, config, log_validation = RUNS[run]
    torch.manual_seed(0)
    ours, theirs = make()
    theirs.load_state_dict({k: v.clone() for k, v in ours.state_dict().items()})
    frozen = {name: p.data.clone() for name, p in ours.named_parameters() if not p.requires_grad}
    opt_ours = getattr(mo, opt_name)(ours.parameters(), **config)
    opt_theirs = getattr(torch.optim, opt_name)(theirs.parameters(), **config)
    loss_ours, loss_theirs = mnn.MSELoss(), tnn.MSELoss()
    gen = torch.Generator().manual_seed(1)
    x_val = torch.randn(17, 3, generator=gen, dtype=DT)
    y_val = x_val.sum(1, keepdim=True).sin()
    for step in range(STEPS):
        x = torch.randn(8, 3, generator=gen, dtype=DT)
        y = x.sum(1, keepdim=True).sin()
        value = loss_ours(ours(x), y)
        value_t = loss_theirs(theirs(x), y)
        if log_validation:  # the habit: log a validation loss before calling backward
            ours.eval()
            with minidl.no_grad():
                val = loss_ours(ours(x_val), y_val)
            ours.train()
            with torch.no_grad():
                theirs.eval()
                val_t = loss_theirs(theirs(x_val), y_val)
                theirs.train()
            torch.testing.assert_close(val, val_t, **TOL)
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        ours.backward(loss_ours.backward())
        value_t.backward()
        opt_ours.step()
        opt_theirs.step()
        torch.testing.assert_close(value, value_t.detach(), **TOL, msg=f"loss at step {step}")
    reference = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.data, reference[name].detach(), **TOL, msg=name)
    for name, before in frozen.items():
        assert torch.equal(dict(ours.named_parameters())[name].data, before), name
