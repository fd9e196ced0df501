"""The losses' kept numbers (Loss._kept) and mean as sum / N give torch's results bit for bit on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minidl import nn


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (32, 1), (0, 1)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_equals_torch_bit_for_bit(dtype, shape, reduction):
    torch.manual_seed(0)
    x = (torch.randn(shape, dtype=torch.float64) * 37).to(dtype).requires_grad_()
    t = torch.randn(shape, dtype=torch.float64).to(dtype)
    loss = nn.MSELoss(reduction)
    for _ in range(2):  # the second call uses the kept numbers
        value = loss(x.detach(), t)
        grad = loss.backward()
    expected = F.mse_loss(x, t, reduction=reduction)
    assert torch.equal(value, expected.detach()) or (value.isnan() and expected.isnan())
    if (
        x.numel() and dtype != torch.bfloat16
    ):  # bfloat16's gradient rounds apart from torch's (as before the kept numbers)
        (expected_grad,) = torch.autograd.grad(expected, x)
        assert torch.equal(grad, expected_grad)
        assert grad.dtype == dtype


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bce_with_logits_mean_equals_torch_in_the_last_bit_budget(dtype):
    torch.manual_seed(1)
    x = torch.randn(32, 1, dtype=dtype, requires_grad=True)
    t = torch.randint(0, 2, (32, 1)).to(dtype)
    loss = nn.BCEWithLogitsLoss()
    value, grad = loss(x.detach(), t), loss.backward()
    expected = F.binary_cross_entropy_with_logits(x, t)
    (expected_grad,) = torch.autograd.grad(expected, x)
    torch.testing.assert_close(value, expected.detach(), rtol=0, atol=1e-15 if dtype == torch.float64 else 1e-6)
    torch.testing.assert_close(grad, expected_grad, rtol=0, atol=1e-16 if dtype == torch.float64 else 1e-8)


def test_kept_numbers_are_normal_tensors_usable_outside_inference_mode():
    loss = nn.MSELoss()
    x, t = torch.randn(4, 1), torch.randn(4, 1)
    with torch.inference_mode():
        loss(x, t)
        loss.backward()
    assert all(not kept.is_inference() for kept in loss._numbers.values())
    value = loss(x, t)
    assert torch.equal(value, F.mse_loss(x, t))
