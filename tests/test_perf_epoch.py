"""What ``Trainer.fit`` does once per epoch, made cheaper (issue 10's benchmark case 2: ~20 % of an epoch of
32 steps was the epoch's own work) without changing a result: the finiteness check over all parameters,
metrics worked out when read, the optimizer's state_dict without a deep copy of plain options."""

from __future__ import annotations

import math

import pytest
import torch

from minidl import nn, optim
from minidl.train import Trainer
from minidl.train.divergence import all_finite
from minidl.train.metrics import ClassificationMetrics

F32, F64 = torch.float32, torch.float64
CASES = [  # tensors, all finite?
    ([], True),
    ([torch.ones(3), torch.zeros((), dtype=F64), torch.ones(2, 2)], True),  # mixed dtypes and a 0-dim tensor
    ([torch.ones(3), torch.tensor(math.nan)], False),
    ([torch.tensor([1.0, math.inf]), torch.ones(1, dtype=F64)], False),
    ([torch.full((2,), -math.inf, dtype=F64)], False),
    ([torch.tensor([3e38, 3e38])], True),  # large but finite: a sum would overflow, the check must not
    ([torch.empty(0), torch.ones(1)], True),
]


@pytest.mark.parametrize(("tensors", "expected"), CASES)
def test_all_finite(tensors, expected):
    assert all_finite(tensors) is expected
    assert all_finite(iter(tensors)) is expected  # a generator, as DivergenceGuard passes it
    per_tensor = all(bool(torch.isfinite(t).all()) for t in tensors)
    assert per_tensor is expected


def test_all_finite_checks_each_tensor_where_they_cannot_be_joined(monkeypatch):
    def refuse(tensors):
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(torch, "cat", refuse)
    for tensors, expected in CASES[1:]:
        assert all_finite(tensors) is expected


def test_auc_and_per_class_are_worked_out_when_read_and_equal_the_eager_ones():
    torch.manual_seed(0)
    labels = torch.randint(0, 2, (50,))
    scores = torch.rand(50)
    predicted = (scores > 0.5).long()
    calls = []

    def lazily():
        calls.append(1)
        return scores

    lazy = ClassificationMetrics.from_predictions(predicted, labels, 2, 0.3, lazily)
    assert lazy.accuracy == pytest.approx(float((predicted == labels).float().mean()))
    assert calls == []  # the accuracy needs no score
    eager = ClassificationMetrics.from_predictions(predicted, labels, 2, 0.3, scores)
    assert lazy.auc == eager.auc is not None and calls == [1]
    assert lazy.auc == lazy.auc and calls == [1]  # once
    assert lazy.per_class == eager.per_class and lazy.as_dict() == eager.as_dict()
    assert ClassificationMetrics.from_predictions(predicted, labels, 2, 0.3, lambda: None).auc is None


def test_fit_on_a_binary_task_never_ranks_scores_until_the_auc_is_read(monkeypatch):
    import minidl.train.metrics as metrics

    ranked = []
    monkeypatch.setattr(metrics, "roc_auc", lambda s, y: ranked.append(len(s)) or 0.5)
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    trainer = Trainer(model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    trainer.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y))
    assert ranked == []
    assert trainer.evaluate(x, y).metrics.auc == 0.5 and ranked == [64]


@pytest.mark.parametrize("options", [{}, {"betas": [0.8, 0.9]}, {"lr": torch.tensor(0.01)}])
def test_optimizer_state_dict_options_are_copies_where_they_could_change(options):
    model = nn.Linear(2, 1)
    opt = optim.Adam(model.parameters(), **options)
    saved = opt.state_dict()["param_groups"][0]
    group = opt.param_groups[0]
    for key, value in saved.items():
        if key == "params":
            continue
        assert value == group[key] if not isinstance(value, torch.Tensor) else torch.equal(value, group[key])
        if isinstance(value, (list, dict, torch.Tensor)):
            assert value is not group[key]  # mutable: a copy, so a later change is not in the snapshot
