"""Issue 10, optimizers and schedulers: each torch.optim habit compared with torch (float64, 1e-10)."""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

import minidl.nn as mnn
import minidl.optim as mo
from minidl.errors import ConfigError
from tests.test_docs import run_page

TOL = {"atol": 1e-10, "rtol": 1e-10}
DT = torch.float64

OPTIMIZERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01}),
]
IDS = [f"{name}-{i}" for i, (name, _) in enumerate(OPTIMIZERS)]


def twins(n: int = 3, seed: int = 0):
    """n parameters of different shapes in both frameworks, with equal values."""
    gen = torch.Generator().manual_seed(seed)
    values = [torch.randn(shape, generator=gen, dtype=DT) for shape in [(3, 2), (3,), (1, 3), (1,)][:n]]
    return [mnn.Parameter(v.clone()) for v in values], [torch.nn.Parameter(v.clone()) for v in values]


def set_grads(ours, theirs, step: int, skip=()):
    """The same gradients in both; a parameter in ``skip`` gets none (None, after zero_grad)."""
    gen = torch.Generator().manual_seed(100 + step)
    for i, (p, q) in enumerate(zip(ours, theirs, strict=True)):
        g = torch.randn(p.shape, generator=gen, dtype=DT)
        if i in skip:
            continue
        p.grad = g.clone()
        q.grad = g.clone()


def same_params(ours, theirs):
    for p, q in zip(ours, theirs, strict=True):
        torch.testing.assert_close(p.data, q.detach(), **TOL)


def run_steps(opt_ours, opt_theirs, ours, theirs, steps, first=0, skip=()):
    for step in range(first, first + steps):
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        set_grads(ours, theirs, step, skip)
        opt_ours.step()
        opt_theirs.step()
        same_params(ours, theirs)


# -- item 4: editing optimizer.state ---------------------------------------------------------------------

STATE_EDITS = {
    "clear": lambda opt, params: opt.state.clear(),
    "replace": lambda opt, params: setattr(opt, "state", defaultdict(dict)),
    "delete-one": lambda opt, params: opt.state.pop(params[0]),
    "assign-buffer": lambda opt, params: [
        opt.state[p].__setitem__(name, torch.full_like(value, 0.5))
        for p in params
        for name, value in list(opt.state[p].items())
        if name != "step"
    ],
}


@pytest.mark.parametrize("edit", list(STATE_EDITS))
@pytest.mark.parametrize(("name", "config"), OPTIMIZERS[:1] + OPTIMIZERS[2:3], ids=["SGD", "Adam"])
def test_editing_state_takes_effect_as_torch(name, config, edit):
    ours, theirs = twins()
    opt_ours, opt_theirs = getattr(mo, name)(ours, **config), getattr(torch.optim, name)(theirs, **config)
    run_steps(opt_ours, opt_theirs, ours, theirs, 3)
    STATE_EDITS[edit](opt_ours, ours)
    STATE_EDITS[edit](opt_theirs, theirs)
    assert opt_ours.state_dict()["state"].keys() == opt_theirs.state_dict()["state"].keys()
    run_steps(opt_ours, opt_theirs, ours, theirs, 3, first=3)
    saved, reference = opt_ours.state_dict()["state"], opt_theirs.state_dict()["state"]
    assert saved.keys() == reference.keys()
    for i in reference:
        for key, value in reference[i].items():
            torch.testing.assert_close(
                torch.as_tensor(saved[i][key], dtype=DT), torch.as_tensor(value, dtype=DT), **TOL
            )


# -- item 5: a parameter listed twice ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:optimizer contains a parameter group with duplicate parameters")
@pytest.mark.parametrize(("name", "config"), OPTIMIZERS, ids=IDS)
def test_a_parameter_listed_twice_is_stepped_as_torch(name, config):
    ours, theirs = twins(2)
    opt_ours = getattr(mo, name)([ours[0], ours[1], ours[0]], **config)
    opt_theirs = getattr(torch.optim, name)([theirs[0], theirs[1], theirs[0]], **config)
    run_steps(opt_ours, opt_theirs, ours, theirs, 4)


# -- item 6: zero_grad(set_to_none=True) and torch's skip ---------------------------------------------


@pytest.mark.parametrize(("name", "config"), OPTIMIZERS, ids=IDS)
def test_a_parameter_without_gradient_is_skipped_as_torch(name, config):
    ours, theirs = twins(4)
    opt_ours, opt_theirs = getattr(mo, name)(ours, **config), getattr(torch.optim, name)(theirs, **config)
    run_steps(opt_ours, opt_theirs, ours, theirs, 2)
    run_steps(opt_ours, opt_theirs, ours, theirs, 3, first=2, skip={1, 3})  # weight decay, momentum: still
    run_steps(opt_ours, opt_theirs, ours, theirs, 2, first=5)
    assert all(p.grad is not None for p in ours)
    opt_ours.zero_grad()
    assert all(p.grad is None for p in ours)
    opt_ours.zero_grad(set_to_none=False)  # a None grad stays None, as torch
    assert all(p.grad is None for p in ours)


@pytest.mark.parametrize(("name", "config"), OPTIMIZERS, ids=IDS)
def test_a_frozen_parameter_never_moves(name, config):
    ours, theirs = twins(4)
    ours[2].requires_grad = False
    theirs[2].requires_grad = False
    opt_ours, opt_theirs = getattr(mo, name)(ours, **config), getattr(torch.optim, name)(theirs, **config)
    before = ours[2].data.clone()
    run_steps(opt_ours, opt_theirs, ours, theirs, 3, skip={2})
    assert torch.equal(ours[2].data, before)


# -- items 7 and 8: schedulers and state_dicts both ways --------------------------------------------------


def test_chained_schedulers_restored_in_another_order_keep_the_saved_lr_as_torch():
    def make(framework, params):
        opt = framework.SGD(params, lr=0.75)
        return opt, framework.lr_scheduler.ExponentialLR(opt, 0.9), framework.lr_scheduler.StepLR(opt, 2, 0.9)

    restored = []
    for framework, params in ((mo, twins()[0]), (torch.optim, twins()[1])):
        if framework is mo:
            framework.lr_scheduler = mo  # minidl keeps its schedulers in minidl.optim itself
        opt, first, second = make(framework, params)
        for _ in range(2):
            first.step(), second.step()
        saved = (opt.state_dict(), first.state_dict(), second.state_dict())
        opt2, first2, second2 = make(framework, params)
        opt2.load_state_dict(saved[0])
        second2.load_state_dict(saved[2])  # the other order
        first2.load_state_dict(saved[1])
        assert opt2.param_groups[0]["lr"] == saved[0]["param_groups"][0]["lr"] == pytest.approx(0.75 * 0.9**3)
        restored.append(opt2.param_groups[0]["lr"])
    del mo.lr_scheduler
    assert restored[0] == restored[1]


@pytest.mark.parametrize(("name", "config"), OPTIMIZERS, ids=IDS)
def test_optimizer_state_dicts_load_into_torch_and_back(name, config):
    ours, theirs = twins()
    opt_ours, opt_theirs = getattr(mo, name)(ours, **config), getattr(torch.optim, name)(theirs, **config)
    run_steps(opt_ours, opt_theirs, ours, theirs, 3)
    fresh_theirs = getattr(torch.optim, name)(theirs, **config)
    fresh_theirs.load_state_dict(opt_ours.state_dict())  # minidl -> torch
    run_steps(opt_ours, fresh_theirs, ours, theirs, 3, first=3)
    fresh_ours = getattr(mo, name)(ours, **config)
    fresh_ours.load_state_dict(fresh_theirs.state_dict())  # torch -> minidl
    run_steps(fresh_ours, fresh_theirs, ours, theirs, 3, first=6)


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
    ("LinearLR", {"start_factor": 0.25, "total_iters": 6}),
    ("ReduceLROnPlateau", {"patience": 1, "factor": 0.5}),
]


def advance(scheduler, epoch):
    scheduler.step(1.0 / (1 + epoch % 3)) if "Plateau" in type(scheduler).__name__ else scheduler.step()


@pytest.mark.parametrize(("name", "config"), SCHEDULERS, ids=[name for name, _ in SCHEDULERS])
def test_scheduler_state_dicts_load_into_torch_and_back(name, config):
    ours, theirs = twins()
    opt_ours, opt_theirs = mo.SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    sched = getattr(mo, name)(opt_ours, **config)
    for epoch in range(4):
        advance(sched, epoch)
    ref = getattr(torch.optim.lr_scheduler, name)(opt_theirs, **config)
    opt_theirs.load_state_dict(opt_ours.state_dict())
    ref.load_state_dict(sched.state_dict())  # minidl -> torch
    for epoch in range(4, 12):
        advance(sched, epoch)
        advance(ref, epoch)
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr(), abs=1e-12, rel=0)
    back = getattr(mo, name)(mo.SGD(twins()[0], lr=0.1), **config)
    back.optimizer.load_state_dict(opt_theirs.state_dict())
    back.load_state_dict(ref.state_dict())  # torch -> minidl
    for epoch in range(12, 20):
        advance(back, epoch)
        advance(ref, epoch)
        assert back.get_last_lr() == pytest.approx(ref.get_last_lr(), abs=1e-12, rel=0)


@pytest.mark.parametrize(("name", "config"), SCHEDULERS[:5], ids=[name for name, _ in SCHEDULERS[:5]])
def test_last_epoch_resumes_as_torch(name, config):
    ours, theirs = twins()
    opt_ours, opt_theirs = mo.SGD(ours, lr=0.1), torch.optim.SGD(theirs, lr=0.1)
    with pytest.raises(ConfigError, match="initial_lr"):
        getattr(mo, name)(opt_ours, **config, last_epoch=3)
    for opt in (opt_ours, opt_theirs):
        opt.param_groups[0]["initial_lr"] = 0.2
    sched = getattr(mo, name)(opt_ours, **config, last_epoch=3)
    ref = getattr(torch.optim.lr_scheduler, name)(opt_theirs, **config, last_epoch=3)
    for epoch in range(10):
        assert sched.last_epoch == ref.last_epoch
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr(), abs=1e-12, rel=0)
        advance(sched, epoch), advance(ref, epoch)


# -- missing features: step(closure), implementation keywords ----------------------------------------


@pytest.mark.parametrize(("name", "config"), OPTIMIZERS, ids=IDS)
def test_step_with_a_closure_as_torch(name, config):
    torch.manual_seed(6)
    model = mnn.Linear(3, 1).double()
    ref = torch.nn.Linear(3, 1).double()
    ref.load_state_dict(model.state_dict())
    x, y = torch.randn(8, 3, dtype=DT), torch.randn(8, 1, dtype=DT)
    opt_ours, opt_theirs = (
        getattr(mo, name)(model.parameters(), **config),
        getattr(torch.optim, name)(ref.parameters(), **config),
    )
    loss_ours, loss_theirs = mnn.MSELoss(), torch.nn.MSELoss()

    def closure_ours():
        opt_ours.zero_grad()
        value = loss_ours(model(x), y)
        model.backward(loss_ours.backward())
        return value

    def closure_theirs():
        opt_theirs.zero_grad()
        value = loss_theirs(ref(x), y)
        value.backward()
        return value

    for _ in range(3):
        torch.testing.assert_close(opt_ours.step(closure_ours), opt_theirs.step(closure_theirs).detach(), **TOL)
    same_params(list(model.parameters()), list(ref.parameters()))
    assert opt_ours.step() is None


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_torchs_implementation_keywords_accepted_or_refused_in_one_line(name):
    ours, theirs = twins()
    a = getattr(mo, name)(ours, lr=0.1, foreach=True)
    b = getattr(torch.optim, name)(theirs, lr=0.1, foreach=False)
    run_steps(a, b, ours, theirs, 2)
    for flag in ("fused", "capturable", "differentiable"):
        if flag not in getattr(torch.optim, name).__init__.__code__.co_varnames:
            continue
        with pytest.raises(ConfigError, match=rf"^{name}: {flag}=True is not supported \(.*\); leave {flag} unset$"):
            getattr(mo, name)(ours, lr=0.1, **{flag: True})
        getattr(mo, name)(ours, lr=0.1, **{flag: False})


# -- item 10: the elementwise opt-out, from docs/custom-optimizer.md ------------------------------------


def test_custom_optimizer_page_runs_and_its_rule_is_per_parameter(capsys):
    ns = run_page("custom-optimizer.md")
    assert ns["worst"] == 0.0
    assert "largest difference from the per-parameter reference: 0.0" in capsys.readouterr().out
    # the same rule without the opt-out is wrong: the norm would be taken over every parameter together
    flat_class = type("FlatNormalizedSGD", (ns["NormalizedSGD"],), {"elementwise": True})
    params, _ = twins()
    reference = [p.data.clone() for p in params]
    opt = flat_class(params, lr=0.05)
    opt.zero_grad()
    for p in params:
        p.accumulate_grad(torch.ones_like(p.data))  # in place: the parameters stay packed
    opt.step()
    per_parameter = [r - 0.05 * torch.ones_like(r) / (torch.ones_like(r).norm() + 1e-8) for r in reference]
    assert any(not torch.allclose(p.data, e) for p, e in zip(params, per_parameter, strict=True))
