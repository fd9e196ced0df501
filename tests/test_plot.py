"""Figures: real PNG files of a sensible size, for each kind of data; matplotlib only when drawing."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from minidl.experiment.config import resolve
from minidl.experiment.experiment import Experiment
from minidl.plot.curves import training_png
from minidl.plot.points import bounds_of
from minidl.plot.run import run_figures
from minidl.train import EpochResult
from tests.pngs import assert_sensible_png, png_size


def _figures(layer):
    experiment = Experiment(resolve({"epochs": 2, "batch_size": 16, **layer}))
    history = experiment.fit()
    return run_figures(experiment, experiment.saved_model(), experiment.evaluate("test"), history)


def test_figures_for_2d_multiclass_data():
    """(The disk's three figures are checked on the default run in test_cli.)"""
    figures = _figures({"data": {"dataset": "blobs", "n_train": 90, "n_test": 45}})
    assert list(figures) == ["dataset.png", "training.png", "predictions.png", "confusion.png"]
    for png in figures.values():
        assert_sensible_png(png)


def test_figures_for_regression(tmp_path):
    rows = "".join(f"{i / 10},{(i % 7) / 3},{i / 5 + 0.25}\n" for i in range(60))
    (tmp_path / "r.csv").write_text("a,b,y\n" + rows)
    figures = _figures({"data": {"dataset": str(tmp_path / "r.csv")}})
    assert list(figures) == ["training.png", "predictions.png"]
    for png in figures.values():
        assert_sensible_png(png)


def test_training_figure_grows_a_panel_when_the_lr_moves():
    history = [EpochResult(epoch=e, loss=1 / e, accuracy=0.5, lr=0.1, seconds=0.0) for e in range(1, 4)]
    width, _ = png_size(training_png(history, title="t"))
    history[-1].lr = 0.01
    assert png_size(training_png(history, title="t"))[0] > width


def test_bounds_pad_the_points():
    (x0, x1), (y0, y1) = bounds_of(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
    assert (x0, x1, y0, y1) == pytest.approx((-0.05, 1.05, -0.1, 2.1))


def test_matplotlib_is_imported_only_when_drawing_and_pyplot_never():
    code = (
        "import sys, minidl, minidl.plot, minidl.cli.main\n"
        "assert 'matplotlib' not in sys.modules, 'imported at import time'\n"
        "from minidl.plot.curves import training_png\n"
        "from minidl.train import EpochResult\n"
        "training_png([EpochResult(epoch=1, loss=1.0, accuracy=None, lr=0.1, seconds=0.0)], title='t')\n"
        "assert 'matplotlib' in sys.modules and 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
