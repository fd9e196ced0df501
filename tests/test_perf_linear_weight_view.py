"""Linear keeps its Wᵀ view between calls: it must always be the transpose of the current weight.data."""

from __future__ import annotations

import copy

import pytest
import torch

from minidl import nn
from minidl.optim.flat import flatten_parameters


def _expected(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ layer.weight.data.clone().t() + layer.bias.data


@pytest.mark.parametrize(
    "change",
    [
        lambda lin: lin.weight.data.add_(1.0),  # in place (an optimizer step)
        lambda lin: setattr(lin.weight, "data", torch.randn(2, 3, dtype=torch.float64)),  # rebound
        lambda lin: lin.load_state_dict({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}),
        lambda lin: flatten_parameters(lin.parameters()),  # rebound to views of a flat buffer
        lambda lin: lin.to(torch.float64),  # a new tensor
    ],
)
def test_forward_uses_the_current_weight_after_it_changes(change):
    torch.manual_seed(0)
    layer = nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    with torch.inference_mode():
        layer(x)  # the view is made inside the Trainer's inference mode
    change(layer)
    assert torch.equal(layer(x), _expected(layer, x))


def test_a_deep_copy_trains_its_own_weight():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    layer(x)
    twin = copy.deepcopy(layer)
    twin.weight.data.mul_(-2.0)
    assert torch.equal(twin(x), _expected(twin, x))
    assert torch.equal(layer(x), _expected(layer, x))
    assert not torch.equal(layer(x), twin(x))


def test_the_kept_ones_follow_batch_size_dtype_and_device_changes():
    torch.manual_seed(0)
    layer = nn.Linear(3, 2)
    f32, f64 = torch.float32, torch.float64
    for n, dtype in [(4, f32), (3, f32), (1, f32), (4, f32), (3, f64)]:
        layer.to(dtype)
        layer.zero_grad(set_to_none=True)
        x, g = torch.randn(n, 3, dtype=dtype), torch.randn(n, 2, dtype=dtype)
        layer(x)
        layer.backward(g)
        assert torch.allclose(layer.bias.grad, g.sum(0), rtol=1e-6, atol=1e-6)
        assert layer._ones[n].shape == (n,) and layer._ones[n].dtype == dtype
    assert sorted(layer._ones) == [1, 3, 4]  # one vector per batch size; that of 3 was made again in float64


def test_the_kept_ones_are_bounded():
    layer = nn.Linear(3, 2)
    for n in range(1, 30):
        layer(torch.randn(n, 3))
        layer.backward(torch.randn(n, 2))
    assert 1 <= len(layer._ones) <= 8 and 29 in layer._ones
