"""The figures as functions that return a matplotlib ``Figure``: shown inline in Jupyter, saved with
``fig.savefig("name.png")``. Each is what the run folder draws (the run folder calls the same code).

matplotlib is imported when a function is called, never by ``import minidl.plot``, and no global backend
is chosen: each figure has its own Agg canvas and gives Jupyter its PNG.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from minidl.errors import ShapeError
from minidl.nn.module import Module
from minidl.plot.curves import training_figure
from minidl.plot.matrix import confusion_figure
from minidl.plot.points import bounds_of, decision_figure
from minidl.plot.regression import regression_figure
from minidl.plot.roc import roc_figure
from minidl.train import metrics, proba


def decision_surface(
    model: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    classes: Sequence[Any] = (),
    feature_names: Sequence[str] = ("x1", "x2"),
    threshold: float = 0.5,
    resolution: int = 300,
    title: str | None = None,
) -> Any:
    """The model's class regions over the points' bounding box, the points coloured by their class
    ``y`` (indices), and a cross on every point the model gets wrong. ``x`` has two features.

    ``model`` is a ``SavedModel`` (raw features), a ``Trainer`` or a ``Module`` (features as the model
    reads them; one output means class 1 above ``threshold``: 0.5 for values and probabilities, pass 0
    for logits), or a function from features to class indices.
    """
    if x.dim() != 2 or x.shape[1] != 2:
        raise ShapeError(f"decision_surface: expected points of shape (N, 2), got {tuple(x.shape)}")
    predict = _class_predictor(model, threshold)
    predicted = predict(x)
    k = max(len(classes), int(y.max()) + 1 if len(y) else 0, 2)
    labels = [f"class {c}" for c in (classes or range(k))]
    accuracy = float((predicted == y).double().mean()) if len(y) else 0.0
    wrong = int((predicted != y).sum())
    return decision_figure(
        predict,
        x,
        y,
        predicted,
        labels=labels,
        title=title or f"decision surface: accuracy {accuracy:.4f} ({wrong} of {len(x)} wrong)",
        bounds=bounds_of(x),
        names=list(feature_names),
        resolution=resolution,
    )


def _class_predictor(model: Any, threshold: float) -> Callable[[torch.Tensor], torch.Tensor]:
    if hasattr(model, "predict_indices"):  # SavedModel: labels -> indices
        return model.predict_indices
    if isinstance(model, Module):

        def predict(x: torch.Tensor) -> torch.Tensor:
            was_training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    out = model(x)
            finally:
                model.train(was_training)
            return (out.squeeze(-1) > threshold).long() if out.shape[-1] == 1 else out.argmax(-1)

        return predict
    if hasattr(model, "predict"):  # Trainer: class indices
        return model.predict
    if callable(model):
        return model
    raise TypeError(f"decision_surface: cannot predict with a {type(model).__name__}")


def training_curves(history: Any, *, title: str = "training") -> Any:
    """Loss per epoch (and accuracy for classification, and the learning rate if it moved), training
    against validation. ``history`` is a list of ``EpochResult`` (what ``Trainer.fit`` returns) or a
    ``Trainer``."""
    history = getattr(history, "history", history)
    if not history:
        raise ValueError("training_curves: the history is empty (train for at least one epoch)")
    return training_figure(list(history), title=title)


def confusion_matrix(
    y_true: torch.Tensor, y_pred: torch.Tensor, *, classes: Sequence[Any] = (), title: str | None = None
) -> Any:
    """Counts of true class (rows) against predicted class (columns); ``y_true`` and ``y_pred`` are class
    indices, ``classes[i]`` names class ``i``."""
    k = max(len(classes), int(torch.cat([y_true.flatten(), y_pred.flatten()]).max()) + 1, 2)
    m = metrics.confusion_matrix(y_pred, y_true, k)
    accuracy = float(m.diagonal().sum()) / max(1, int(m.sum()))
    return confusion_figure(
        m, classes=list(classes), title=title or f"confusion matrix (accuracy {accuracy:.4f})", unit="samples"
    )


def roc_curve(y_true: torch.Tensor, scores: torch.Tensor, *, title: str | None = None) -> Any:
    """The ROC curve of scores for class 1 (``SavedModel.predict_proba(x)[:, 1]``) against 0/1 labels,
    its AUC in the legend."""
    auc = proba.roc_auc(scores, y_true)
    if auc is None:
        raise ValueError("roc_curve: needs both classes among the labels")
    fpr, tpr = proba.roc_curve(scores, y_true)
    return roc_figure(fpr, tpr, auc=auc, title=title or f"ROC curve (AUC {auc:.4f})")


def predicted_vs_true(
    predicted: torch.Tensor, target: torch.Tensor, *, target_name: str = "target", title: str | None = None
) -> Any:
    """Regression: each sample's prediction against its true value, with the line of perfect predictions."""
    r2 = metrics.r2_score(predicted.reshape(len(target), -1), target.reshape(len(target), -1))
    return regression_figure(
        predicted,
        target,
        title=title or f"predicted against true {target_name} (R² {r2:.4f})",
        target_name=target_name,
        label="samples",
    )
