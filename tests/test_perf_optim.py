"""The flat-buffer optimizers: the numbers of one update per parameter, and every way off the flat path.

Each optimizer packs its parameter groups into flat buffers and runs its rule once per buffer. These
tests pin that this changes no number (against the same optimizer forced onto the per-parameter path,
bit for bit, with built-in and user-written layers) and that each event which breaks the packing falls
back safely: ``model.to()`` after the optimizer was made, a second optimizer packing other parameters,
loaded state the flat buffers cannot hold, a parameter listed twice.
"""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.optim import OPTIMIZERS, SGD, Adam
from tests.test_docs import DOCS, python_blocks
from tests.test_module import Scale, seed_model_minidl
from tests.test_optim_adaptive import assert_same_weights, batches, minidl_step, torch_optimizer, twin_models

CASES = [
    ("sgd", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(lr=1e-3, momentum=0.5, nesterov=True, maximize=True)),
    ("adam", dict(lr=1e-2, amsgrad=True, weight_decay=0.1)),
    ("adamw", dict(lr=1e-3, maximize=True)),
    ("rmsprop", dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=0.1)),
    ("adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
]


def swish_class() -> type:
    """The learnable-β Swish of docs/custom-layer.md, a user's own layer, from the page's code."""
    namespace: dict = {"__name__": "docs.custom_layer"}
    for block in python_blocks((DOCS / "custom-layer.md").read_text(encoding="utf-8")):
        exec(compile(block, "custom-layer.md", "exec"), namespace)
        if "Swish" in namespace:
            return namespace["Swish"]
    raise AssertionError("docs/custom-layer.md defines no Swish")


class WithSpare(mnn.Module):
    """A model with a parameter that never gets a gradient (its grad stays zero)."""

    def __init__(self) -> None:
        self.net = mnn.Sequential(mnn.Linear(2, 4), mnn.Tanh(), mnn.Linear(4, 1))
        self.spare = mnn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        return self.net.backward(grad_output)


MODELS = {
    "seed-mlp": seed_model_minidl,
    "user-Scale": lambda: mnn.Sequential(Scale(2), mnn.ReLU(), mnn.Linear(2, 1)),
    "user-Swish": lambda: mnn.Sequential(mnn.Linear(2, 5), swish_class()(0.5), mnn.Linear(5, 1)),
    "unused-parameter": WithSpare,
}


def twins(make) -> tuple[mnn.Module, mnn.Module]:
    torch.manual_seed(0)
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    return a, b


def unpack(model: mnn.Module) -> None:
    """Rebind every parameter to its own tensors: the optimizer's flat buffers no longer back them."""
    for p in model.parameters():
        p.data, p.grad = p.data.clone(), p.grad.clone()


def one_storage(tensors) -> bool:
    return len({t.untyped_storage().data_ptr() for t in tensors}) == 1


def float32_batches(n: int):
    for x, y in batches(n):
        yield x.float(), y.float()


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("name", "config"), CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_flat_and_per_parameter_updates_are_bit_identical(model, name, config):
    flat, single = twins(MODELS[model])
    opt_flat = OPTIMIZERS[name](flat.parameters(), **config)
    opt_single = OPTIMIZERS[name](single.parameters(), **config)
    unpack(single)  # the per-parameter path from now on
    for x, y in float32_batches(15):
        minidl_step(flat, opt_flat, x, y)
        minidl_step(single, opt_single, x, y)
    assert one_storage(p.data for p in flat.parameters())  # still packed: the flat path ran
    assert not one_storage(p.data for p in single.parameters())
    for key, value in single.state_dict().items():
        assert torch.equal(flat.state_dict()[key], value), key
    saved_flat, saved_single = opt_flat.state_dict(), opt_single.state_dict()
    assert saved_flat["param_groups"] == saved_single["param_groups"]
    assert saved_flat["state"].keys() == saved_single["state"].keys()
    for index, entry in saved_single["state"].items():
        for key, value in entry.items():
            assert torch.equal(torch.as_tensor(saved_flat["state"][index][key]), torch.as_tensor(value)), key


def test_state_is_per_parameter_views_of_flat_tensors_and_state_dict_is_a_snapshot():
    model = seed_model_minidl()
    opt = Adam(model.parameters(), lr=0.01, amsgrad=True)
    assert opt.state == {} and opt.state_dict()["state"] == {}  # as torch.optim before the first step
    minidl_step(model, opt, *next(float32_batches(1)))
    params = list(model.parameters())
    for name in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
        views = [opt.state[p][name] for p in params]
        assert one_storage(views) and [v.shape for v in views] == [p.shape for p in params], name
    saved = opt.state_dict()
    assert [saved["state"][i]["exp_avg"].shape for i in range(len(params))] == [p.shape for p in params]
    assert not one_storage(saved["state"][i]["exp_avg"] for i in range(len(params)))  # own copies
    assert all(saved["state"][i]["step"] == 1.0 for i in range(len(params)))


@pytest.mark.parametrize(("name", "config"), [CASES[0], CASES[2], CASES[4], CASES[5]], ids=str)
def test_loading_a_state_dict_keeps_the_flat_path_and_resumes_bit_for_bit(name, config):
    a, b = twins(seed_model_minidl)
    opt_a = OPTIMIZERS[name](a.parameters(), **config)
    data = list(float32_batches(20))
    for x, y in data[:10]:
        minidl_step(a, opt_a, x, y)
    b.load_state_dict(a.state_dict())
    opt_b = OPTIMIZERS[name](b.parameters(), **config)
    opt_b.load_state_dict(opt_a.state_dict())
    first = next(iter(opt_b.state.values()))
    for state_name in first:
        if state_name != "step":
            assert one_storage(opt_b.state[p][state_name] for p in b.parameters()), state_name  # flat again
    for x, y in data[10:]:
        minidl_step(a, opt_a, x, y)
        minidl_step(b, opt_b, x, y)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key


def test_sgd_loads_torchs_momentum_and_continues_like_torch():
    ours, theirs = twin_models(small=True)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, dampening=0.1)
    data = list(batches(20))
    for x, y in data[:5]:
        ref.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        ref.step()
    ours.load_state_dict({k: v.detach() for k, v in theirs.state_dict().items()})
    opt = SGD(ours.parameters(), lr=1.0)
    opt.load_state_dict(ref.state_dict())
    for x, y in data[5:]:
        minidl_step(ours, opt, x, y)
        ref.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        ref.step()
    assert_same_weights(ours, theirs, atol=1e-10)


def test_torch_state_with_different_step_counts_falls_back_per_parameter_and_tracks_torch():
    """A parameter torch skipped (grad None) has fewer steps: one flat step count cannot hold that."""
    ours, theirs = twin_models(small=True)
    ref = torch_optimizer("adam", theirs.parameters(), lr=0.01)
    data = list(batches(25))
    for i, (x, y) in enumerate(data[:5]):
        ref.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        if i >= 3:
            theirs[2].bias.grad = None  # torch skips this parameter on steps 4 and 5
        ref.step()
    assert [float(s["step"]) for s in ref.state_dict()["state"].values()] == [5, 5, 5, 3]
    ours.load_state_dict({k: v.detach() for k, v in theirs.state_dict().items()})
    opt = Adam(ours.parameters(), lr=0.01)
    opt.load_state_dict(ref.state_dict())
    for x, y in data[5:]:
        minidl_step(ours, opt, x, y)
        ref.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        ref.step()
    assert_same_weights(ours, theirs, atol=1e-10)
    assert [s["step"] for s in opt.state_dict()["state"].values()] == [25, 25, 25, 23]


@pytest.mark.parametrize(("name", "config"), [CASES[0], CASES[2]], ids=str)
def test_moving_the_model_after_making_the_optimizer_falls_back_safely(name, config):
    """Make the optimizer after ``.to()`` (as with torch.optim); made before, it still steps correctly."""
    early, late = twins(seed_model_minidl)
    opt_early = OPTIMIZERS[name](early.parameters(), **config)
    early.double()  # re-allocates every parameter: the flat buffers no longer back them
    late.double()
    opt_late = OPTIMIZERS[name](late.parameters(), **config)
    for x, y in batches(10):
        minidl_step(early, opt_early, x, y)
        minidl_step(late, opt_late, x, y)
    for key, value in late.state_dict().items():
        assert value.dtype == torch.float64 and torch.equal(early.state_dict()[key], value), key


def test_a_second_optimizer_over_other_parameters_leaves_the_first_one_correct():
    a, b = twins(seed_model_minidl)
    opt_a, opt_b = SGD(a.parameters(), lr=0.05, momentum=0.9), SGD(b.parameters(), lr=0.05, momentum=0.9)
    data = list(float32_batches(10))
    for x, y in data[:5]:
        minidl_step(a, opt_a, x, y)
        minidl_step(b, opt_b, x, y)
    SGD(list(b.parameters())[:2], lr=0.1)  # packs a subset anew: opt_b's buffers no longer back them all
    for x, y in data[5:]:
        minidl_step(a, opt_a, x, y)
        minidl_step(b, opt_b, x, y)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key


def test_param_groups_are_packed_separately_with_their_own_options():
    model = seed_model_minidl()
    params = list(model.parameters())
    opt = Adam([{"params": params[:4]}, {"params": params[4:], "lr": 0.1, "weight_decay": 0.5}], lr=0.01)
    minidl_step(model, opt, *next(float32_batches(1)))
    first = [opt.state[p]["exp_avg"] for p in params[:4]]
    second = [opt.state[p]["exp_avg"] for p in params[4:]]
    assert one_storage(first) and one_storage(second) and not one_storage([*first, *second])


def test_a_parameter_listed_twice_is_stepped_twice_like_torch():
    layer = mnn.Linear(2, 1).double()
    theirs = torch.nn.Linear(2, 1).double()
    theirs.load_state_dict(layer.state_dict())
    opt = SGD([layer.weight, layer.weight, layer.bias], lr=0.1)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        ref = torch.optim.SGD([theirs.weight, theirs.weight, theirs.bias], lr=0.1)
    for x, y in batches(3):
        minidl_step(layer, opt, x, y)
        ref.zero_grad()
        torch.nn.functional.mse_loss(theirs(x), y).backward()
        ref.step()
    assert_same_weights(layer, theirs, atol=1e-12)
