"""Inference in eval mode without no_grad keeps only a few records alive; a backward through it still works."""

from __future__ import annotations

import torch

import minidl.nn as nn


def test_an_eval_loop_without_no_grad_keeps_a_bounded_number_of_records():
    model = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1)).eval()
    for _ in range(100):
        model(torch.rand(16, 2))
    kept = [len(vars(m)["_pending"][0]) for m in model if "_pending" in vars(m)]
    assert kept and max(kept) == nn.Module._max_pending_eval < 100


def test_a_backward_through_the_latest_eval_forward_is_exact():
    torch.manual_seed(0)
    act = nn.Tanh()
    model = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 4), act, nn.Linear(4, 1)).double().eval()
    for _ in range(20):  # earlier inference forwards that no backward uses
        model(torch.rand(5, 3, dtype=torch.float64))
    x = torch.rand(5, 3, dtype=torch.float64)
    model(x)
    grad_x = model.backward(torch.ones(5, 1, dtype=torch.float64))
    reference = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)
    ).double()
    reference.load_state_dict(model.state_dict())
    xr = x.clone().requires_grad_(True)
    reference(xr).sum().backward()
    torch.testing.assert_close(grad_x, xr.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model[0].weight.grad, reference[0].weight.grad, rtol=1e-10, atol=1e-12)
