"""``Trainer.fit(verbose=0|1|2)`` (Keras' values) and ``Evaluation`` printing as a table, attributes kept."""

from __future__ import annotations

import re

import pytest
import torch

import minidl.nn as nn
from minidl.errors import ConfigError
from minidl.optim import SGD
from minidl.train import Trainer


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, generator=g)
    return x, (x[:, 0] > 0).long()


def _fit(verbose: int, **kwargs) -> Trainer:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    trainer = Trainer(model, nn.BCELoss(), SGD(model.parameters(), lr=0.1))
    with torch.no_grad():
        trainer.fit(*_data(), epochs=3, batch_size=8, verbose=verbose, **kwargs)
    return trainer


def test_verbose_2_prints_a_line_per_epoch_and_trains_the_same(capsys) -> None:
    quiet = _fit(0)
    assert capsys.readouterr() == ("", "")  # verbose=0 (the default): nothing
    loud = _fit(2, validation_data=_data())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, (line, result) in enumerate(zip(lines, loud.history, strict=True), 1):
        assert re.fullmatch(rf"Epoch {epoch}/3 - \d+\.\d\ds - loss: \d\.\d{{4}} - accuracy: \d\.\d{{4}} - "
                            r"val_loss: \d\.\d{4} - val_accuracy: \d\.\d{4}", line), line  # fmt: skip
        assert f"loss: {result.loss:.4f}" in line
    for a, b in zip(quiet.model.parameters(), loud.model.parameters(), strict=True):
        assert torch.equal(a.data, b.data)
    assert loud.callbacks == []  # the printer was for that fit only


def test_verbose_1_draws_a_bar_over_each_epochs_steps(capsys) -> None:
    trainer = _fit(1)
    err = capsys.readouterr().err  # tqdm.auto outside a notebook: a text bar on stderr
    for epoch in (1, 2, 3):
        assert f"Epoch {epoch}/3: 100%" in err
    assert "8/8" in err and f"loss: {trainer.history[-1].loss:.4f}" in err


@pytest.mark.parametrize("verbose", [3, -1, "yes"])
def test_other_verbose_values_are_refused(verbose) -> None:
    with pytest.raises(ConfigError, match="verbose must be 0, 1 or 2"):
        _fit(verbose)


def test_evaluation_prints_as_a_table_and_keeps_its_attributes() -> None:
    trainer = _fit(0)
    evaluation = trainer.evaluate(*_data())
    lines = str(evaluation).splitlines()
    assert lines[0].split() == ["metric", "value"]
    table = dict(line.split() for line in lines[1:])
    assert float(table["loss"]) == pytest.approx(evaluation.loss, abs=1e-6)
    assert float(table["accuracy"]) == pytest.approx(evaluation.accuracy, abs=1e-6)
    assert int(table["tp"]) == evaluation.metrics.tp and {"precision", "recall", "f1", "auc"} <= set(table)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 1))
    x, _ = _data()
    regression = Trainer(model, nn.MSELoss(), SGD(model.parameters(), lr=0.1)).evaluate(x, x.sum(1, keepdim=True))
    rows = dict(line.split() for line in str(regression).splitlines()[1:])
    assert {"loss", "mse", "rmse", "mae", "r2"} <= set(rows)
    assert float(rows["mse"]) == pytest.approx(regression.metrics.mse, abs=1e-6)
