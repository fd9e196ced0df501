"""Every layer against torch.nn + torch.autograd, and against central differences.

A new layer is one new row in LAYERS: (name, minidl factory, torch factory, input feature count).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minidl
import minidl.nn as mnn
from tests.oracle import copy_weights, minidl_grads, torch_grads

LAYERS = [
    ("Linear", lambda: mnn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), 5),
    ("Linear-nobias", lambda: mnn.Linear(4, 7, bias=False), lambda: torch.nn.Linear(4, 7, bias=False), 4),
    ("Linear-1x1", lambda: mnn.Linear(1, 1), lambda: torch.nn.Linear(1, 1), 1),
    ("ReLU", mnn.ReLU, torch.nn.ReLU, 6),
    ("Tanh", mnn.Tanh, torch.nn.Tanh, 6),
    ("Sigmoid", mnn.Sigmoid, torch.nn.Sigmoid, 6),
    (
        "Sequential",
        lambda: mnn.Sequential(
            mnn.Linear(3, 8), mnn.ReLU(), mnn.Linear(8, 5), mnn.Tanh(), mnn.Linear(5, 2), mnn.Sigmoid()
        ),
        lambda: torch.nn.Sequential(
            torch.nn.Linear(3, 8),
            torch.nn.ReLU(),
            torch.nn.Linear(8, 5),
            torch.nn.Tanh(),
            torch.nn.Linear(5, 2),
            torch.nn.Sigmoid(),
        ),
        3,
    ),
]
IDS = [row[0] for row in LAYERS]


def _pair(make_minidl, make_torch, dtype):
    torch.manual_seed(0)
    ours = make_minidl().to(dtype=dtype)
    theirs = make_torch().to(dtype)
    copy_weights(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize(("name", "make_minidl", "make_torch", "features"), LAYERS, ids=IDS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@given(batch=st.integers(1, 17), seed=st.integers(0, 2**31 - 1))
def test_matches_torch(name, make_minidl, make_torch, features, dtype, tol, batch, seed):
    ours, theirs = _pair(make_minidl, make_torch, dtype)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, features, generator=gen, dtype=torch.float64).to(dtype) * 3
    y_t = theirs(x)
    g = torch.randn(y_t.shape, generator=gen, dtype=torch.float64).to(dtype)
    out_t, gx_t, grads_t = torch_grads(theirs, x, g)
    out, gx, grads = minidl_grads(ours, x, g)
    torch.testing.assert_close(out, out_t, atol=tol, rtol=tol)
    torch.testing.assert_close(gx, gx_t, atol=tol, rtol=tol)
    assert grads.keys() == grads_t.keys()
    for key in grads:
        torch.testing.assert_close(grads[key], grads_t[key], atol=tol, rtol=tol, msg=f"{name}: grad of {key}")


@pytest.mark.parametrize(("name", "make_minidl", "make_torch", "features"), LAYERS, ids=IDS)
@pytest.mark.parametrize("batch", [1, 4])
def test_central_differences(name, make_minidl, make_torch, features, batch):
    torch.manual_seed(1)
    layer = make_minidl().double()
    x = torch.randn(batch, features, dtype=torch.float64)
    assert minidl.gradcheck(layer, x)


def test_linear_accepts_leading_dimensions():
    ours, theirs = _pair(lambda: mnn.Linear(4, 3), lambda: torch.nn.Linear(4, 3), torch.float64)
    x = torch.randn(2, 5, 4, dtype=torch.float64)
    g = torch.randn(2, 5, 3, dtype=torch.float64)
    out_t, gx_t, grads_t = torch_grads(theirs, x, g)
    out, gx, grads = minidl_grads(ours, x, g)
    torch.testing.assert_close(out, out_t, atol=1e-12, rtol=0)
    torch.testing.assert_close(gx, gx_t, atol=1e-12, rtol=0)
    torch.testing.assert_close(grads["weight"], grads_t["weight"], atol=1e-12, rtol=0)


def test_gradients_accumulate_until_zeroed():
    layer = mnn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    g = torch.randn(4, 2, dtype=torch.float64)
    layer(x)
    layer.backward(g)
    once = layer.weight.grad.clone()
    layer(x)
    layer.backward(g)
    torch.testing.assert_close(layer.weight.grad, 2 * once)
    layer.zero_grad()
    assert torch.count_nonzero(layer.weight.grad) == 0


@pytest.mark.parametrize("make", [mnn.Sigmoid, mnn.Tanh, mnn.ReLU])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_activations_stay_finite_at_large_inputs(make, dtype):
    layer = make()
    x = torch.tensor([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=dtype)
    out = layer(x)
    grad = layer.backward(torch.ones_like(out))
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


def test_sigmoid_gradient_is_sigma_times_one_minus_sigma():
    # the public implementations of the course exercise get this one wrong
    x = torch.tensor([[-2.0, 0.0, 3.0]], dtype=torch.float64)
    layer = mnn.Sigmoid()
    layer(x)
    s = torch.sigmoid(x)
    torch.testing.assert_close(layer.backward(torch.ones_like(x)), s * (1 - s), atol=1e-15, rtol=0)


def test_relu_gradient_at_zero_is_zero():
    layer = mnn.ReLU()
    layer(torch.zeros(1, 3))
    assert torch.equal(layer.backward(torch.ones(1, 3)), torch.zeros(1, 3))
