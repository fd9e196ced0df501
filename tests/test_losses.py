"""Losses against torch.nn + torch.autograd and central differences; shape errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minidl
import minidl.nn as mnn
from minidl.errors import ShapeError

LOSSES = [
    ("MSELoss-mean", lambda: mnn.MSELoss(), lambda: torch.nn.MSELoss()),
    ("MSELoss-sum", lambda: mnn.MSELoss(reduction="sum"), lambda: torch.nn.MSELoss(reduction="sum")),
    ("L1Loss-mean", lambda: mnn.L1Loss(), lambda: torch.nn.L1Loss()),
    ("L1Loss-sum", lambda: mnn.L1Loss(reduction="sum"), lambda: torch.nn.L1Loss(reduction="sum")),
]
IDS = [row[0] for row in LOSSES]


@pytest.mark.parametrize(("name", "make_minidl", "make_torch"), LOSSES, ids=IDS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@given(batch=st.integers(1, 20), width=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_matches_torch(name, make_minidl, make_torch, dtype, tol, batch, width, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=gen, dtype=torch.float64).to(dtype)
    y = torch.randn(batch, width, generator=gen, dtype=torch.float64).to(dtype)
    xt = x.clone().requires_grad_(True)
    expected = make_torch()(xt, y)
    expected.backward()
    loss = make_minidl()
    value = loss(x, y)
    assert value.dim() == 0
    torch.testing.assert_close(value, expected.detach(), atol=tol, rtol=tol)
    torch.testing.assert_close(loss.backward(), xt.grad, atol=tol, rtol=tol)


@pytest.mark.parametrize(("name", "make_minidl", "make_torch"), LOSSES, ids=IDS)
def test_central_differences(name, make_minidl, make_torch):
    torch.manual_seed(0)
    x = torch.randn(6, 2, dtype=torch.float64)
    y = torch.randn(6, 2, dtype=torch.float64)
    assert minidl.gradcheck(make_minidl(), x, y)


def test_l1_gradient_at_zero_is_zero_as_torch():
    x = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    loss = mnn.L1Loss()
    loss(x, x.clone())
    xt = x.clone().requires_grad_(True)
    torch.nn.L1Loss()(xt, x).backward()
    assert torch.equal(loss.backward(), torch.zeros_like(x))
    assert torch.equal(xt.grad, torch.zeros_like(x))


@pytest.mark.parametrize("make", [mnn.MSELoss, mnn.L1Loss])
def test_shape_mismatch_is_an_error_not_a_broadcast(make):
    with pytest.raises(ShapeError, match=r"input shape \(8, 1\) does not match target shape \(8,\)"):
        make()(torch.zeros(8, 1), torch.zeros(8))


def test_mae_is_l1():
    assert mnn.MAELoss is mnn.L1Loss


def test_unknown_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction must be one of"):
        mnn.MSELoss(reduction="avg")


def test_backward_before_forward_names_the_loss():
    with pytest.raises(RuntimeError, match=r"MSELoss\(\): backward called before forward"):
        mnn.MSELoss().backward()
