"""The training loop, tasks and metrics."""

from __future__ import annotations

import pytest
import torch

import minidl.nn as mnn
from minidl.optim import SGD
from minidl.train import ClassificationMetrics, Task, Trainer


def test_metrics_binary_counts_and_scores():
    predicted = torch.tensor([1, 1, 0, 0, 1, 0])
    labels = torch.tensor([1, 0, 0, 1, 1, 0])
    m = ClassificationMetrics.from_predictions(predicted, labels, 2)
    assert (m.tp, m.tn, m.fp, m.fn) == (2, 2, 1, 1)
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.precision == pytest.approx(2 / 3) and m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)


def test_metrics_without_positive_predictions_are_zero_not_nan():
    m = ClassificationMetrics.from_predictions(torch.zeros(4, dtype=torch.long), torch.tensor([0, 1, 0, 1]), 2)
    assert m.precision == 0.0 and m.f1 == 0.0 and m.recall == 0.0


def test_metrics_multiclass_confusion_matrix():
    m = ClassificationMetrics.from_predictions(torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1, 1, 2]), 3)
    assert m.confusion.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]
    assert m.accuracy == 0.75


def test_task_inference_and_targets():
    loss = mnn.MSELoss()
    binary = Task.infer(torch.tensor([0, 1, 1]))
    assert binary == Task("binary", 2) and binary.out_features(loss) == 1
    assert binary.targets(torch.tensor([0, 1]), loss, 1, torch.float32).tolist() == [[0.0], [1.0]]
    multi = Task.infer(torch.tensor([0, 2, 1]))
    assert multi == Task("multiclass", 3) and multi.out_features(loss) == 3
    assert multi.targets(torch.tensor([2]), loss, 3, torch.float32).tolist() == [[0.0, 0.0, 1.0]]
    assert Task.infer(torch.tensor([0.5, 1.5])).kind == "regression"
    assert binary.predict(torch.tensor([[0.7], [0.2]]), loss).tolist() == [1, 0]


def test_fit_learns_a_linearly_separable_problem_and_reports_every_epoch():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=gen)
    y = (x[:, 0] > x[:, 1]).long()
    model = mnn.Sequential(mnn.Linear(2, 8), mnn.Tanh(), mnn.Linear(8, 1))
    seen = []
    trainer = Trainer(model, mnn.MSELoss(), SGD(model.parameters(), lr=0.1, momentum=0.9), callbacks=[seen.append])
    history = trainer.fit(x, y, epochs=30, batch_size=4, seed=0)
    assert [r.epoch for r in seen] == list(range(1, 31)) and seen == history
    assert history[-1].loss < history[0].loss
    assert history[-1].accuracy >= 0.95
    result = trainer.evaluate(x, y)
    assert result.accuracy == history[-1].accuracy
    assert result.metrics.total == 200


def test_fit_is_reproducible():
    def run():
        torch.manual_seed(3)
        x = torch.rand(50, 2, generator=torch.Generator().manual_seed(1))
        y = (x.sum(1) > 1).long()
        model = mnn.Sequential(mnn.Linear(2, 4), mnn.ReLU(), mnn.Linear(4, 1))
        Trainer(model, mnn.MSELoss(), SGD(model.parameters(), lr=0.05)).fit(x, y, epochs=3, batch_size=4, seed=9)
        return model.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)
