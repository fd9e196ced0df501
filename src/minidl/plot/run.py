"""The figures of a run folder, chosen by the data: which exist depends on the data's shape and task.

* 2-D features: ``dataset.png`` (Figure 1), ``predictions.png`` (Figure 3, the decision surface;
  over [0, 1]² for the disk, with the true circle drawn).
* 8×8 images (digits): ``dataset.png`` and ``predictions.png`` as grids of images.
* Regression: ``predictions.png``, predicted against true values.
* Always ``training.png`` (Figure 2); with more than two classes also ``confusion.png``.
* Two classes: ``confusion.png`` for data from a file, and ``roc.png`` (with the AUC) where the model
  gives probabilities; the generated 2-D sets keep the report's three figures (Figure 3 shows each mistake).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minidl.data.datasets import DISK_RADIUS
from minidl.plot.curves import training_png
from minidl.plot.images import images_png, label_titles
from minidl.plot.matrix import confusion_png
from minidl.plot.points import bounds_of, dataset_png, predictions_png
from minidl.plot.regression import regression_png
from minidl.plot.roc import roc_png
from minidl.train.metrics import ClassificationMetrics
from minidl.train.proba import roc_curve
from minidl.train.trainer import EpochResult, Evaluation


def run_figures(experiment: Any, saved: Any, test: Evaluation, history: Sequence[EpochResult]) -> dict[str, bytes]:
    """``{file name: PNG bytes}`` for an ``Experiment`` after training, its ``SavedModel`` and test evaluation."""
    data = experiment.data
    name = data.name if data.source != "csv" else data.name.replace("\\", "/").rsplit("/", 1)[-1]
    figures = _figures(experiment, saved, test, name)
    figures["training.png"] = training_png(history, title=f"Figure 2: training on {name}")
    order = ("dataset.png", "training.png", "predictions.png", "confusion.png", "roc.png")
    return {key: figures[key] for key in order if key in figures}


def _figures(experiment: Any, saved: Any, test: Evaluation, name: str) -> dict[str, bytes]:
    data, task = experiment.data, experiment.task
    if not task.is_classification:
        return {"predictions.png": _regression_figure(data, saved, test)}
    predicted = saved.predict_indices(data.test[0])
    figures: dict[str, bytes] = {}
    if data.in_features == 2:
        figures.update(_plane_figures(data, saved, predicted, test.accuracy, name))
    elif data.in_features == 64 and data.source == "digits":
        figures.update(_image_figures(data, predicted, test.accuracy, name))
    figures.update(_metric_figures(data, task, saved, test))
    return figures


def _regression_figure(data: Any, saved: Any, test: Evaluation) -> bytes:
    x_test, y_test = data.test
    predicted = saved.predict_indices(x_test)
    title = f"Figure 3: predictions on the test set ({len(x_test)} samples, MSE {test.metrics.mse:.4g})"
    return regression_png(predicted, y_test, title=title, target_name=data.target_name or "y")


def _plane_figures(data: Any, saved: Any, predicted: torch.Tensor, accuracy: float, name: str) -> dict[str, bytes]:
    """2-D features: the training points (Figure 1) and the decision surface with the test points (Figure 3)."""
    (x_train, y_train), (x_test, y_test) = data.train, data.test
    disk = data.name == "disk"
    bounds = ((0.0, 1.0), (0.0, 1.0)) if disk else bounds_of(x_train, x_test)
    circle = (0.5, 0.5, DISK_RADIUS) if disk else None
    labels = [f"class {c}" for c in data.classes]
    if disk:
        labels = ["class 0: outside the disk", "class 1: inside the disk"]
    common = dict(labels=labels, bounds=bounds, names=data.feature_names, circle=circle)
    wrong = int((predicted != y_test).sum())
    return {
        "dataset.png": dataset_png(
            x_train, y_train, title=f"Figure 1: {name}, {len(x_train)} training points", **common
        ),
        "predictions.png": predictions_png(
            saved.predict_indices,
            x_test,
            y_test,
            predicted,
            title=f"Figure 3: test predictions, accuracy {accuracy:.4f} ({wrong} of {len(x_test)} wrong)",
            **common,
        ),
    }


def _image_figures(data: Any, predicted: torch.Tensor, accuracy: float, name: str) -> dict[str, bytes]:
    """8×8 images: the first training images (Figure 1) and test images with their predictions, mistakes first."""
    (x_train, y_train), (x_test, y_test) = data.train, data.test
    wrong = int((predicted != y_test).sum())
    order = torch.cat([(predicted != y_test).nonzero().squeeze(1), (predicted == y_test).nonzero().squeeze(1)])[:40]
    titles = [
        f"{p} (true {t})" if p != t else p
        for p, t in zip(
            label_titles(predicted[order], data.classes), label_titles(y_test[order], data.classes), strict=True
        )
    ]
    return {
        "dataset.png": images_png(
            x_train[:40],
            label_titles(y_train[:40], data.classes),
            title=f"Figure 1: {name}, the first 40 training images",
        ),
        "predictions.png": images_png(
            x_test[order],
            titles,
            wrong=[bool(predicted[i] != y_test[i]) for i in order],
            title=f"Figure 3: predicted test labels (true label in brackets), accuracy {accuracy:.4f}; "
            f"the {wrong} mistakes first",
        ),
    }


def _metric_figures(data: Any, task: Any, saved: Any, test: Evaluation) -> dict[str, bytes]:
    """The confusion matrix (several classes; two classes from a file) and the ROC curve (binary, probabilities)."""
    m, figures = test.metrics, {}
    if not isinstance(m, ClassificationMetrics):
        return figures
    binary_extras = task.num_classes == 2 and (data.source != "generated" or m.auc is not None)
    if task.num_classes > 2 or binary_extras:
        figures["confusion.png"] = confusion_png(
            m.confusion, classes=data.classes, title=f"Confusion matrix on the test set (accuracy {test.accuracy:.4f})"
        )
    if m.auc is not None:
        x_test, y_test = data.test
        fpr, tpr = roc_curve(saved.predict_proba(x_test)[:, 1], y_test)
        positive = data.classes[1] if len(data.classes) == 2 else 1
        figures["roc.png"] = roc_png(
            fpr, tpr, auc=m.auc, title=f"ROC curve on the test set (positive class {positive}), AUC {m.auc:.4f}"
        )
    return figures
