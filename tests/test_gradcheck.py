"""minidl.gradcheck: it catches wrong backward passes, names the place, and leaves no trace."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

import minidl
import minidl.nn as mnn
from minidl import GradientCheckError


class WrongSigmoid(mnn.Sigmoid):
    """The classic mistake: σ(x) instead of σ(x)(1 − σ(x))."""

    def backward(self, grad_output):
        (y,) = self.saved_for_backward()
        return grad_output * y


class WrongWeightLinear(mnn.Linear):
    """Correct except for one element of the weight gradient."""

    def backward(self, grad_output):
        grad_input = super().backward(grad_output)
        self.weight.grad[1, 2] += 0.5
        return grad_input


class ForgetsBiasLinear(mnn.Linear):
    def backward(self, grad_output):
        (x,) = self.saved_for_backward()
        self.weight.accumulate_grad(grad_output.t() @ x)
        return grad_output @ self.weight.data


class WrongShapeLinear(mnn.Linear):
    def backward(self, grad_output):
        return super().backward(grad_output).t()


class HalfMSELoss(mnn.MSELoss):
    """Forgets the 2 of d(x − y)²/dx."""

    def backward(self, grad_output=None):
        (diff,) = self.saved_for_backward()
        return self._chain(diff, grad_output)


class ConstantStatsBatchNorm(mnn.BatchNorm1d):
    """Treats the batch mean and variance as constants in train mode: wrong."""

    def backward(self, grad_output):
        saved = self.saved_for_backward()
        self.save_for_backward(*saved)  # back for the parent's backward
        super().backward(grad_output)
        inv_std = saved[1]
        return grad_output * self.weight.data * inv_std


class HiddenRandomness(mnn.Module):
    """Multiplies by noise from a generator gradcheck cannot see (hidden in a list)."""

    def __init__(self):
        self._rng = [torch.Generator().manual_seed(0)]
        self._noise = None

    def forward(self, x):
        self._noise = torch.rand(x.shape, generator=self._rng[0], dtype=x.dtype)
        return x * self._noise

    def backward(self, grad_output):
        return grad_output * self._noise


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize(
    ("module", "inputs", "message"),
    [
        (WrongSigmoid(), (_x(3, 4),), r"gradcheck WrongSigmoid\(\): input 0 disagrees at index \(0, 0\)"),
        (
            mnn.Sequential(mnn.Linear(3, 4), mnn.Tanh(), ForgetsBiasLinear(4, 2)),
            (_x(5, 3),),
            r"gradcheck Sequential\(\): parameter '2.bias' disagrees at index \(0,\)",
        ),
        (WrongShapeLinear(3, 4), (_x(5, 3),), r"input 0: analytical gradient has shape \(3, 5\), expected \(5, 3\)"),
        (HalfMSELoss(), (_x(4, 2), _x(4, 2) + 1), r"gradcheck HalfMSELoss\(\): input \(prediction\) disagrees"),
        (
            ConstantStatsBatchNorm(3),
            (_x(6, 3),),
            r"gradcheck ConstantStatsBatchNorm\(3, .*\): input 0 disagrees at index",
        ),
    ],
    ids=["sigmoid-derivative", "forgotten-bias-in-sequential", "wrong-shape", "loss", "batchnorm-train"],
)
def test_wrong_backward_is_caught_and_named(module, inputs, message):
    with pytest.raises(GradientCheckError, match=message):
        minidl.gradcheck(module.double(), *inputs)


def test_message_gives_the_first_bad_index_and_both_values():
    torch.manual_seed(0)
    layer = WrongWeightLinear(4, 3).double()
    with pytest.raises(GradientCheckError) as caught:
        minidl.gradcheck(layer, _x(5, 4))
    message = str(caught.value)
    found = re.search(
        r"parameter 'weight' disagrees at index \(1, 2\): numerical (\S+), analytical (\S+) \(1 of 12", message
    )
    assert found, message
    numerical, analytical = float(found[1]), float(found[2])
    assert analytical - numerical == pytest.approx(0.5, abs=1e-6)
    assert isinstance(caught.value, AssertionError) and isinstance(caught.value, minidl.MinidlError)


def test_float32_warns_and_float64_does_not():
    layer = mnn.Sequential(mnn.Linear(3, 2), mnn.Tanh())
    with pytest.warns(UserWarning, match=r"not float64.*Call module.double\(\)"):
        minidl.gradcheck(layer, torch.randn(4, 3), eps=1e-3, atol=1e-2, rtol=1e-1)
    with pytest.warns(UserWarning, match=r"gradcheck Tanh\(\): inputs or parameters are not float64"):
        minidl.gradcheck(mnn.Tanh(), torch.randn(4, 3), eps=1e-3, atol=1e-2, rtol=1e-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert minidl.gradcheck(layer.double(), torch.randn(4, 3, dtype=torch.float64))


def test_a_correct_model_in_train_mode_passes_and_nothing_changes():
    torch.manual_seed(0)
    model = mnn.Sequential(
        mnn.Linear(3, 5), mnn.BatchNorm1d(5), mnn.SiLU(), mnn.Dropout(0.4, generator=1), mnn.Linear(5, 2)
    ).double()
    model[0].weight.grad += 1.0  # gradients the caller had accumulated stay as they were
    grads = [p.grad.clone() for p in model.parameters()]
    state = {key: value.clone() for key, value in model.state_dict().items()}
    rng, dropout_rng = torch.get_rng_state(), model[3].generator.get_state()
    x = _x(6, 3)
    x_before = x.clone()
    assert minidl.gradcheck(model, x)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(model[3].generator.get_state(), dropout_rng)
    assert torch.equal(x, x_before)


def test_dropout_on_the_global_rng_passes_in_train_mode():
    assert minidl.gradcheck(mnn.Sequential(mnn.Linear(4, 4), mnn.Dropout(0.5)).double(), _x(3, 4))


def test_randomness_gradcheck_cannot_freeze_is_reported():
    with pytest.raises(GradientCheckError, match=r"two forwards at the same point differ"):
        minidl.gradcheck(HiddenRandomness(), _x(3, 2))
