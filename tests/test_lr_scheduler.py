"""LR schedulers against torch.optim.lr_scheduler: the lr sequences, state_dicts and validation."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minidl.nn as mnn
from minidl.errors import ConfigError, StateDictError
from minidl.optim import (
    SCHEDULERS,
    SGD,
    CosineAnnealingLR,
    ExponentialLR,
    LinearLR,
    MultiStepLR,
    ReduceLROnPlateau,
    StepLR,
)
from tests.test_optim_adaptive import through_json

TORCH_SCHEDULERS = {
    "step": torch.optim.lr_scheduler.StepLR,
    "multistep": torch.optim.lr_scheduler.MultiStepLR,
    "exponential": torch.optim.lr_scheduler.ExponentialLR,
    "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
    "linear": torch.optim.lr_scheduler.LinearLR,
    "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
}

# (scheduler name, arguments); epoch-stepped schedulers first, then ReduceLROnPlateau fed METRICS
CONFIGS = [
    ("step", dict(step_size=3, gamma=0.5)),
    ("step", dict(step_size=1, gamma=0.9)),
    ("multistep", dict(milestones=[5, 10, 10, 30], gamma=0.3)),
    ("multistep", dict(milestones=[40, 0, 7])),
    ("exponential", dict(gamma=0.9)),
    ("exponential", dict(gamma=1.05)),
    ("cosine", dict(T_max=10)),
    ("cosine", dict(T_max=7, eta_min=0.001)),
    ("cosine", dict(T_max=50, eta_min=0.01)),
    ("linear", dict()),
    ("linear", dict(start_factor=0.5, end_factor=0.1, total_iters=10)),
    ("linear", dict(start_factor=1.0, end_factor=0.0, total_iters=20)),
    ("linear", dict(start_factor=0.25, total_iters=60)),
    ("plateau", dict()),
    ("plateau", dict(patience=1, factor=0.5)),
    ("plateau", dict(mode="max", patience=0, factor=0.7, threshold=0.05)),
    ("plateau", dict(patience=2, threshold=0.01, threshold_mode="abs", factor=0.5, cooldown=3, min_lr=1e-3)),
    ("plateau", dict(mode="max", threshold_mode="abs", patience=1, min_lr=[0.05, 0.0], eps=1e-3)),
]
EPOCHS = 50
# improves with bumps, then stalls from epoch 20
METRICS = [
    1.0 / (1 + e) + 0.05 * math.sin(1.7 * e) if e < 20 else 0.12 + 0.05 * abs(math.sin(1.7 * e)) for e in range(EPOCHS)
]
LRS = (0.1, 0.3)  # two parameter groups


def make_optimizers(lr: float = LRS[0]):
    a, b = mnn.Linear(2, 2), mnn.Linear(2, 1)
    ours = SGD([{"params": a.parameters()}, {"params": b.parameters(), "lr": LRS[1]}], lr=lr)
    ta, tb = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    theirs = torch.optim.SGD([{"params": ta.parameters()}, {"params": tb.parameters(), "lr": LRS[1]}], lr=lr)
    return ours, theirs


def advance(scheduler, epoch: int) -> None:
    scheduler.optimizer.step()  # the order torch expects: optimizer first
    if isinstance(scheduler, (ReduceLROnPlateau, torch.optim.lr_scheduler.ReduceLROnPlateau)):
        scheduler.step(METRICS[epoch])
    else:
        scheduler.step()


def lr_sequence(scheduler, epochs: int = EPOCHS) -> list[list[float]]:
    seq = [scheduler.get_last_lr()]
    for epoch in range(epochs):
        advance(scheduler, epoch)
        seq.append(scheduler.get_last_lr())
    return seq


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[f"{n}-{c}" for n, c in CONFIGS])
def test_lr_sequence_equals_torchs(name, config):
    ours, theirs = make_optimizers()
    sched = SCHEDULERS[name](ours, **config)
    ref = TORCH_SCHEDULERS[name](theirs, **config)
    got, expected = lr_sequence(sched), lr_sequence(ref)
    for epoch, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == pytest.approx(e, abs=1e-12, rel=0), f"epoch {epoch}"
    assert [g["lr"] for g in ours.param_groups] == got[-1]
    assert len({tuple(lrs) for lrs in got}) > 1  # the schedule did change the lr


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[f"{n}-{c}" for n, c in CONFIGS])
@pytest.mark.parametrize("optimizer_first", [True, False], ids=["optimizer-first", "scheduler-first"])
def test_state_dict_through_json_resumes_exactly_in_fresh_objects(name, config, optimizer_first):
    opt, _ = make_optimizers()
    sched = SCHEDULERS[name](opt, **config)
    for epoch in range(20):
        advance(sched, epoch)
    saved_opt, saved_sched = through_json(opt.state_dict()), through_json(sched.state_dict())
    expected = [sched.get_last_lr()]
    for epoch in range(20, EPOCHS):
        advance(sched, epoch)
        expected.append(sched.get_last_lr())

    fresh_opt, _ = make_optimizers(lr=7.0)
    if optimizer_first:  # the order that also works in torch: scheduler made before optimizer loads
        fresh = SCHEDULERS[name](fresh_opt, **config)
        fresh_opt.load_state_dict(saved_opt)
    else:
        fresh_opt.load_state_dict(saved_opt)
        fresh = SCHEDULERS[name](fresh_opt, **config)
    fresh.load_state_dict(saved_sched)
    got = [fresh.get_last_lr()]
    for epoch in range(20, EPOCHS):
        advance(fresh, epoch)
        got.append(fresh.get_last_lr())
    assert got == expected


@pytest.mark.parametrize(("name", "config"), CONFIGS, ids=[f"{n}-{c}" for n, c in CONFIGS])
def test_torch_scheduler_state_dict_loads(name, config):
    ours, theirs = make_optimizers()
    ref = TORCH_SCHEDULERS[name](theirs, **config)
    for epoch in range(20):
        advance(ref, epoch)
    sched = SCHEDULERS[name](ours, **config)
    sched.load_state_dict(ref.state_dict())
    assert sched.get_last_lr() == ref.get_last_lr() == [g["lr"] for g in ours.param_groups]
    for epoch in range(20, EPOCHS):
        advance(sched, epoch)
        advance(ref, epoch)
        assert sched.get_last_lr() == pytest.approx(ref.get_last_lr(), abs=1e-12, rel=0)


def test_state_dict_is_plain_numbers_and_lists_without_the_optimizer():
    for name, config in CONFIGS:
        opt, _ = make_optimizers()
        state = SCHEDULERS[name](opt, **config).state_dict()
        assert "optimizer" not in state
        for key, value in state.items():
            if key == "milestones":  # torch's format: a Counter {epoch: times}, so it loads into torch too
                assert isinstance(value, Counter) and all(isinstance(k, int) for k in value.elements())
                continue
            values = value if isinstance(value, list) else [value]
            assert all(v is None or isinstance(v, (bool, int, float, str)) for v in values), (name, key, value)


def test_constructor_records_initial_lr_and_load_checks_keys():
    opt, _ = make_optimizers()
    sched = StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == list(LRS) == sched.base_lrs
    with pytest.raises(StateDictError, match="missing key"):
        sched.load_state_dict({"last_epoch": 3})
    bad = {**sched.state_dict(), "step_size": 0, "last_epoch": 9}
    with pytest.raises(ConfigError, match="step_size must be a positive integer, got 0"):
        sched.load_state_dict(bad)
    assert (sched.step_size, sched.last_epoch) == (2, 0)
    with pytest.raises(TypeError, match="not a minidl Optimizer"):
        StepLR(torch.optim.SGD(torch.nn.Linear(2, 2).parameters()), step_size=2)


def test_registry_names():
    assert {
        "step": StepLR,
        "multistep": MultiStepLR,
        "exponential": ExponentialLR,
        "cosine": CosineAnnealingLR,
        "linear": LinearLR,
        "plateau": ReduceLROnPlateau,
    } == SCHEDULERS


INVALID = [
    (StepLR, dict(step_size=0), "step_size must be a positive integer, got 0"),
    (StepLR, dict(step_size=2.5), "step_size must be a positive integer, got 2.5"),
    (StepLR, dict(step_size=2, gamma=-0.1), "Invalid gamma value: -0.1"),
    (MultiStepLR, dict(milestones=[3, -1]), "milestones must be non-negative integers, got [-1, 3]"),
    (ExponentialLR, dict(gamma=0.0), "Invalid gamma value: 0.0"),
    (CosineAnnealingLR, dict(T_max=0), "T_max must be a positive integer, got 0"),
    (CosineAnnealingLR, dict(T_max=10, eta_min=-1.0), "Invalid eta_min value: -1.0"),
    (LinearLR, dict(start_factor=0.0), "Starting multiplicative factor expected to be greater than 0"),
    (LinearLR, dict(start_factor=1.5), "less or equal to 1, got 1.5"),
    (LinearLR, dict(end_factor=2.0), "Ending multiplicative factor expected to be between 0 and 1, got 2.0"),
    (LinearLR, dict(total_iters=0), "total_iters must be a positive integer, got 0"),
    (ReduceLROnPlateau, dict(mode="mid"), "mode 'mid' is unknown!"),
    (ReduceLROnPlateau, dict(threshold_mode="pct"), "threshold mode 'pct' is unknown!"),
    (ReduceLROnPlateau, dict(factor=1.0), "Factor should be < 1.0 (and >= 0), got 1.0"),
    (ReduceLROnPlateau, dict(patience=-1), "patience must be a non-negative integer, got -1"),
    (ReduceLROnPlateau, dict(cooldown=1.5), "cooldown must be a non-negative integer, got 1.5"),
    (ReduceLROnPlateau, dict(min_lr=[0.1]), "expected 2 min_lrs, got 1"),
    (ReduceLROnPlateau, dict(min_lr=-0.1), "Invalid min_lr value: -0.1"),
]


@pytest.mark.parametrize(("cls", "kwargs", "message"), INVALID, ids=[f"{c.__name__}-{k}" for c, k, _ in INVALID])
def test_invalid_arguments_raise_config_error_with_the_value(cls, kwargs, message):
    opt, _ = make_optimizers()
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        cls(opt, **kwargs)
    assert isinstance(info.value, ValueError)
    assert [g["lr"] for g in opt.param_groups] == list(LRS)  # nothing was changed on the way


gammas = st.floats(0.05, 1.5)
SCHEDULE_CASES = st.one_of(
    st.tuples(st.just("step"), st.fixed_dictionaries(dict(step_size=st.integers(1, 12), gamma=gammas))),
    st.tuples(
        st.just("multistep"),
        st.fixed_dictionaries(dict(milestones=st.lists(st.integers(0, 45), max_size=6), gamma=gammas)),
    ),
    st.tuples(st.just("exponential"), st.fixed_dictionaries(dict(gamma=gammas))),
    st.tuples(st.just("cosine"), st.fixed_dictionaries(dict(T_max=st.integers(1, 40), eta_min=st.floats(0, 0.05)))),
    st.tuples(
        st.just("linear"),
        st.fixed_dictionaries(
            dict(start_factor=st.floats(0.01, 1), end_factor=st.floats(0, 1), total_iters=st.integers(1, 45))
        ),
    ),
    st.tuples(
        st.just("plateau"),
        st.fixed_dictionaries(
            dict(
                mode=st.sampled_from(["min", "max"]),
                factor=st.floats(0, 0.99),
                patience=st.integers(0, 4),
                threshold=st.floats(0, 0.1),
                threshold_mode=st.sampled_from(["rel", "abs"]),
                cooldown=st.integers(0, 3),
                min_lr=st.floats(0, 0.01),
                eps=st.floats(0, 1e-3),
            )
        ),
    ),
)


@given(SCHEDULE_CASES)
def test_any_valid_arguments_give_torchs_lr_sequence(case):
    name, config = case
    ours, theirs = make_optimizers()
    got = lr_sequence(SCHEDULERS[name](ours, **config))
    expected = lr_sequence(TORCH_SCHEDULERS[name](theirs, **config))
    for epoch, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g == pytest.approx(e, abs=1e-12, rel=1e-12), f"epoch {epoch}"
