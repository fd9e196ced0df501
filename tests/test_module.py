"""Module machinery: parameter discovery, state_dicts both ways with torch.nn, errors, modes, repr."""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.errors import BackwardError, ShapeError, StateDictError


def seed_model_minidl():
    return mnn.Sequential(
        mnn.Linear(2, 25),
        mnn.ReLU(),
        mnn.Linear(25, 25),
        mnn.Tanh(),
        mnn.Linear(25, 25),
        mnn.ReLU(),
        mnn.Linear(25, 1),
    )


def seed_model_torch():
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(2, 25),
        nn.ReLU(),
        nn.Linear(25, 25),
        nn.Tanh(),
        nn.Linear(25, 25),
        nn.ReLU(),
        nn.Linear(25, 1),
    )


@pytest.mark.parametrize("seed", [0, 1, 123])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_seed_gives_bit_identical_weights_as_torch_nn(seed, dtype):
    torch.manual_seed(seed)
    ours = seed_model_minidl().to(dtype=dtype) if dtype == torch.float32 else None
    torch.manual_seed(seed)
    theirs = seed_model_torch()
    if dtype == torch.float64:  # construct directly in float64, as torch.nn does with dtype=
        torch.manual_seed(seed)
        ours = mnn.Linear(7, 5, dtype=dtype)
        torch.manual_seed(seed)
        theirs = torch.nn.Linear(7, 5, dtype=dtype)
    ours_state, theirs_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key in ours_state:
        assert torch.equal(ours_state[key], theirs_state[key]), key


def test_state_dict_keys_are_torch_nn_keys():
    keys = list(seed_model_minidl().state_dict())
    assert keys == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "6.weight", "6.bias"]
    assert keys == list(seed_model_torch().state_dict())


def test_state_dict_round_trip_both_ways():
    torch.manual_seed(0)
    ours = seed_model_minidl()
    torch.manual_seed(1)
    theirs = seed_model_torch()
    x = torch.rand(10, 2)
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(theirs(x).detach(), ours(x), atol=0, rtol=0)
    torch.manual_seed(2)
    theirs = seed_model_torch()
    ours.load_state_dict(theirs.state_dict())
    torch.testing.assert_close(ours(x), theirs(x).detach(), atol=0, rtol=0)


def test_load_state_dict_reports_every_problem_at_once():
    model = seed_model_minidl()
    state = dict(model.state_dict())
    del state["2.bias"]
    state["9.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(3, 3)
    with pytest.raises(StateDictError) as info:
        model.load_state_dict(state)
    message = str(info.value)
    assert "missing key(s): 2.bias" in message
    assert "unexpected key(s): 9.weight" in message
    assert "size mismatch for 0.weight: copying a tensor of shape (3, 3), the shape in this model is (25, 2)" in message


def test_load_state_dict_non_strict_returns_the_keys():
    model = mnn.Linear(2, 3)
    result = model.load_state_dict({"weight": torch.ones(3, 2), "extra": torch.ones(1)}, strict=False)
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["extra"]
    assert torch.equal(model.weight.data, torch.ones(3, 2))


def test_load_state_dict_does_not_change_anything_on_error():
    model = mnn.Linear(2, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(StateDictError):
        model.load_state_dict({"weight": torch.ones(3, 2), "bias": torch.ones(4)})
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])


class Scale(mnn.Module):
    """A user's own layer: y = a * x with a learnable vector a."""

    def __init__(self, n):
        super().__init__()
        self.a = mnn.Parameter(torch.ones(n))
        self.inner = mnn.Linear(n, n)
        self._x = None

    def forward(self, x):
        self._x = x
        return self.inner(x * self.a.data)

    def backward(self, grad_output):
        g = self.inner.backward(grad_output)
        self.a.accumulate_grad((g * self._cached(self._x)).sum(0))
        return g * self.a.data


def test_custom_layer_parameters_are_found_like_builtins():
    model = mnn.Sequential(Scale(3), mnn.ReLU())
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.a", "0.inner.weight", "0.inner.bias"]
    assert list(model.state_dict()) == names
    assert len(model.param()) == 3
    model.to(dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.grad.dtype == torch.float64 for p in model.parameters())
    x = torch.randn(4, 3, dtype=torch.float64)
    model(x)
    model.backward(torch.ones(4, 3, dtype=torch.float64))
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(torch.count_nonzero(p.grad) == 0 for p in model.parameters())
    model.zero_grad()  # torch's default: set_to_none=True
    assert all(p.grad is None for p in model.parameters())


def test_param_is_the_course_convention():
    layer = mnn.Linear(2, 3)
    pairs = layer.param()
    assert [tuple(t.shape) for t, _ in pairs] == [(3, 2), (3,)]
    assert all(g.shape == t.shape for t, g in pairs)
    assert mnn.ReLU().param() == []


def test_wrong_feature_count_names_layer_and_shapes():
    with pytest.raises(
        ShapeError,
        match=r"Linear\(in_features=2, out_features=25, bias=True\): "
        r"expected input of shape \(N, 2\), got \(8, 3\)",
    ):
        mnn.Linear(2, 25)(torch.zeros(8, 3))


@pytest.mark.parametrize(
    "layer", [mnn.Linear(2, 3), mnn.ReLU(), mnn.Tanh(), mnn.Sigmoid(), mnn.Sequential(mnn.Linear(2, 2))]
)
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(BackwardError, match="backward called before forward"):
        layer.backward(torch.zeros(1, 2))


def test_train_and_eval_propagate():
    model = seed_model_minidl()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_repr_reads_like_torch():
    assert repr(mnn.Linear(2, 25)) == "Linear(in_features=2, out_features=25, bias=True)"
    text = repr(mnn.Sequential(mnn.Linear(2, 3), mnn.ReLU()))
    assert text == "Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): ReLU()\n)"


def test_missing_attribute_raises():
    with pytest.raises(AttributeError):
        _ = mnn.Linear(2, 3).no_such_thing


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_linear_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        mnn.Linear(bad, 3)


def test_parameter_rejects_integer_tensors():
    with pytest.raises(TypeError, match="floating-point"):
        mnn.Parameter(torch.zeros(3, dtype=torch.long))
