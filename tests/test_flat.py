"""Flat parameter storage: packing keeps values, parameters become views, layers and state_dicts still work."""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.optim.flat import FlatGroup, flatten_parameters
from tests.test_module import seed_model_minidl, seed_model_torch


def _snapshot(model: mnn.Module) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {name: (p.data.clone(), p.grad.clone()) for name, p in model.named_parameters()}


def _model_with_grads() -> mnn.Module:
    torch.manual_seed(0)
    model = seed_model_minidl()
    model.backward(torch.rand(5, 1) + model(torch.rand(5, 2)) * 0)  # nonzero grads to preserve
    return model


def test_packing_preserves_data_and_grads_and_makes_views():
    model = _model_with_grads()
    before = _snapshot(model)
    (group,) = flatten_parameters(model.parameters())
    assert group.data.is_contiguous() and group.data.dim() == 1 and group.grad.shape == group.data.shape
    # each parameter starts on a 64-byte boundary (16 float32s), as torch.nn's own tensors do
    sizes = [p.numel() for p in model.parameters()]
    assert sizes == [50, 25, 625, 25, 625, 25, 25, 1]
    assert group.offsets == [0, 64, 96, 736, 768, 1408, 1440, 1472, 1488] and group.numel() == 1488
    assert all(p.data.data_ptr() % 64 == 0 and p.grad.data_ptr() % 64 == 0 for p in model.parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.data, before[name][0], atol=0, rtol=0, msg=name)
        torch.testing.assert_close(p.grad, before[name][1], atol=0, rtol=0, msg=name)
        assert p.data.untyped_storage().data_ptr() == group.data.untyped_storage().data_ptr(), name
        assert p.grad.untyped_storage().data_ptr() == group.grad.untyped_storage().data_ptr(), name
    assert group.is_packed()
    padding = torch.ones(group.numel(), dtype=torch.bool)
    for start, size in zip(group.offsets, sizes, strict=False):
        padding[start : start + size] = False
    assert not group.data[padding].any() and not group.grad[padding].any()


def test_an_update_of_the_flat_buffers_reaches_every_parameter():
    model = _model_with_grads()
    (group,) = flatten_parameters(model.parameters())
    expected = {name: p.data - 0.1 * p.grad for name, p in model.named_parameters()}
    group.data.add_(group.grad, alpha=-0.1)  # one SGD step for all parameters
    group.zero_grad()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.data, expected[name], atol=1e-7, rtol=0, msg=name)
        assert not p.grad.any(), name


def test_linear_backward_accumulates_into_the_flat_grad():
    torch.manual_seed(0)
    layer = mnn.Linear(3, 4)
    (group,) = flatten_parameters(layer.parameters())
    x, g = torch.rand(6, 3), torch.rand(6, 4)
    layer(x)
    layer.backward(g)
    layer(x)
    layer.backward(g)  # twice: grads accumulate
    weight_grad, bias_grad = group.views(group.grad)
    torch.testing.assert_close(weight_grad, 2 * g.t() @ x)
    torch.testing.assert_close(bias_grad, 2 * g.sum(0))
    assert layer.weight.grad.data_ptr() == group.grad.data_ptr()


def test_state_dict_round_trips_with_torch_nn_after_packing():
    torch.manual_seed(0)
    ours = seed_model_minidl()
    (group,) = flatten_parameters(ours.parameters())
    theirs = seed_model_torch()
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(10, 2)
    torch.testing.assert_close(theirs(x).detach(), ours(x), atol=0, rtol=0)
    torch.manual_seed(1)
    other = seed_model_torch()
    ours.load_state_dict(other.state_dict())  # copies into the views, so the flat buffer sees it
    assert group.is_packed()
    torch.testing.assert_close(ours(x), other(x).detach(), atol=0, rtol=0)
    for view, theirs_p in zip(group.views(group.data), other.parameters(), strict=True):
        torch.testing.assert_close(view, theirs_p.detach(), atol=0, rtol=0)


def test_packing_twice_is_idempotent():
    model = _model_with_grads()
    (first,) = flatten_parameters(model.parameters())
    views = [(p.data, p.grad) for p in model.parameters()]
    (second,) = flatten_parameters(model.parameters())
    assert second.data.data_ptr() == first.data.data_ptr() and second.grad.data_ptr() == first.grad.data_ptr()
    assert all(p.data is d and p.grad is g for p, (d, g) in zip(model.parameters(), views, strict=True))
    second.data.fill_(3.0)
    assert all(bool((p.data == 3.0).all()) for p in model.parameters())


def test_a_subset_or_a_new_order_is_repacked():
    model = _model_with_grads()
    (first,) = flatten_parameters(model.parameters())
    params = list(model.parameters())
    before = _snapshot(model)
    (subset,) = flatten_parameters(params[:2])
    assert subset.offsets == [0, 64, 96]
    assert not first.is_packed() and subset.is_packed()  # the earlier group no longer backs them all
    (reordered,) = flatten_parameters(reversed(params))
    assert reordered.params == params[::-1] and reordered.is_packed()
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.data, before[name][0], atol=0, rtol=0, msg=name)


def test_one_group_per_dtype_in_order_of_appearance_and_duplicates_once():
    torch.manual_seed(0)
    a, b, c = mnn.Linear(2, 3), mnn.Linear(3, 3, dtype=torch.float64), mnn.Linear(3, 1)
    params = [*a.parameters(), *b.parameters(), *c.parameters(), a.weight]
    groups = flatten_parameters(params)
    assert [g.dtype for g in groups] == [torch.float32, torch.float64]
    assert groups[0].params == [a.weight, a.bias, c.weight, c.bias]
    assert groups[0].offsets == [0, 16, 32, 48, 64]  # 16 float32s = 64 bytes
    assert groups[1].offsets == [0, 16, 24]  # 8 float64s = 64 bytes


def test_views_split_a_flat_state_tensor_per_parameter():
    model = _model_with_grads()
    (group,) = flatten_parameters(model.parameters())
    state = torch.arange(group.numel(), dtype=group.dtype)
    views = group.views(state)
    assert [v.shape for v in views] == [p.shape for p in model.parameters()]
    state.mul_(2)  # the views see an update of the flat state
    for view, start in zip(views, group.offsets, strict=False):
        assert view.reshape(-1)[0] == 2 * start
    with pytest.raises(ValueError, match="expected a tensor of shape"):
        group.views(state[:-1])


def test_moving_after_packing_unpacks_and_the_group_says_so():
    torch.manual_seed(0)
    model = seed_model_minidl()
    (group,) = flatten_parameters(model.parameters())
    model.to(dtype=torch.float32)  # no change: still packed
    assert group.is_packed()
    model.double()  # re-allocates: pack again (create the optimizer after .to)
    assert not group.is_packed()
    (again,) = flatten_parameters(model.parameters())
    assert again.dtype == torch.float64 and again.is_packed()


def test_rebinding_a_parameter_unpacks_it():
    model = _model_with_grads()
    (group,) = flatten_parameters(model.parameters())
    first = next(iter(model.parameters()))
    first.data = first.data.clone()  # what a layer must never do: the group notices
    assert not group.is_packed()
    first.data = group.views(group.data)[0]  # a view at the right place counts as packed again
    assert group.is_packed()


def test_rejects_non_parameters():
    with pytest.raises(TypeError, match="expects minidl Parameters"):
        flatten_parameters([torch.zeros(3)])
    assert flatten_parameters([]) == []
    assert isinstance(flatten_parameters(mnn.Linear(2, 2).parameters())[0], FlatGroup)
