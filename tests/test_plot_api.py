"""minidl.plot: functions that return matplotlib Figures, shown inline in Jupyter, no pyplot (issue 12)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import minidl.plot
from minidl.data.datasets import DATASETS
from minidl.errors import ShapeError
from minidl.experiment.config import resolve
from minidl.experiment.experiment import Experiment
from minidl.nn import Linear, ReLU, Sequential
from tests.pngs import assert_sensible_png, png_size


@pytest.fixture(scope="module")
def trained():
    experiment = Experiment(resolve({"epochs": 3, "batch_size": 16, "loss": {"name": "bce-logits"}}))
    history = experiment.fit()
    return experiment, history


def _png(figure) -> bytes:
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure)
    png = figure._repr_png_()  # what Jupyter shows inline
    assert_sensible_png(png)
    return png


def test_every_function_returns_a_figure_that_jupyter_shows_as_png(trained):
    experiment, history = trained
    saved = experiment.saved_model()
    x, y = experiment.data.test
    figures = {
        "decision": minidl.plot.decision_surface(saved, x, y, classes=experiment.data.classes),
        "curves": minidl.plot.training_curves(history),
        "curves of a trainer": minidl.plot.training_curves(experiment.trainer),
        "confusion": minidl.plot.confusion_matrix(y, saved.predict_indices(x), classes=["out", "in"]),
        "roc": minidl.plot.roc_curve(y, saved.predict_proba(x)[:, 1]),
        "regression": minidl.plot.predicted_vs_true(torch.arange(10.0) + 0.5, torch.arange(10.0)),
    }
    for name, figure in figures.items():
        _png(figure)
        assert figure.axes, name
    assert "accuracy" in figures["decision"].axes[0].get_title()
    auc = experiment.evaluate("test").metrics.auc
    assert f"AUC {auc:.4f}" in figures["roc"].axes[0].get_title()
    texts = [t.get_text() for t in figures["confusion"].axes[0].texts]
    m = experiment.evaluate("test").metrics.confusion
    assert texts == [str(int(v)) for v in m.flatten()]


def test_decision_surface_takes_a_module_a_trainer_or_a_function():
    x, y = DATASETS["disk"](200, seed=0)
    module = Sequential(Linear(2, 8), ReLU(), Linear(8, 1))
    by_module = minidl.plot.decision_surface(module, x, y, threshold=0.0)
    by_function = minidl.plot.decision_surface(lambda p: (p[:, 0] > 0.5).long(), x, y)
    assert png_size(_png(by_module)) == png_size(_png(by_function))
    with pytest.raises(ShapeError, match=r"expected points of shape \(N, 2\), got \(200, 3\)"):
        minidl.plot.decision_surface(module, torch.cat([x, x[:, :1]], 1), y)


def test_the_regression_loss_curve_is_logarithmic(tmp_path):
    rows = "".join(f"{i / 10},{(i % 7) / 3},{i / 5 + 0.25}\n" for i in range(60))
    (tmp_path / "r.csv").write_text("a,b,y\n" + rows)
    experiment = Experiment(resolve({"epochs": 2, "batch_size": 16, "data": {"dataset": str(tmp_path / "r.csv")}}))
    figure = minidl.plot.training_curves(experiment.fit())
    assert figure.axes[0].get_yscale() == "log"


def test_importing_and_drawing_never_imports_pyplot_or_sets_a_backend():
    code = (
        "import sys, torch, minidl.plot\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import matplotlib\n"
        "before = matplotlib.rcParams._get('backend')\n"
        "fig = minidl.plot.predicted_vs_true(torch.arange(5.0), torch.arange(5.0))\n"
        "assert fig._repr_png_()[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams._get('backend') is before, 'backend changed'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_plotting_page_runs(capsys):
    from tests.test_docs import run_page

    ns = run_page("plotting.md")
    for name in ("surface", "curves", "confusion", "roc"):
        _png(ns[name])
    title = capsys.readouterr().out.strip()
    assert title.startswith("ROC curve (AUC ") and 0.5 < float(title.split("AUC ")[1].rstrip(")")) <= 1.0
