"""Metrics as text: the lines ``minidl train`` and ``minidl evaluate`` print, and summary.md's tables."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from minidl.data.target_scaler import TargetScaler
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics, target_mean
from minidl.train.trainer import Evaluation


def with_baseline(evaluation: Evaluation, target: torch.Tensor, train_target: torch.Tensor) -> Evaluation:
    """A regression evaluation on ``target`` with the MSE of predicting ``train_target``'s mean added."""
    if not isinstance(evaluation.metrics, RegressionMetrics):
        return evaluation
    metrics = evaluation.metrics.with_baseline(target, target_mean(train_target))
    return dataclasses.replace(evaluation, metrics=metrics)


def in_data_units(evaluation: Evaluation, output: torch.Tensor, y: torch.Tensor, scaler: TargetScaler) -> Evaluation:
    """A regression evaluation of a model trained on standardised targets, its metrics recomputed from the
    outputs ``scaler`` turns back into the data's units against the raw targets ``y`` (the loss stays the
    training objective's, on the standardised targets)."""
    target = (y if y.dim() == 2 else y.unsqueeze(1)).to(device=output.device, dtype=output.dtype)
    metrics = RegressionMetrics.from_outputs(scaler.inverse(output), target, evaluation.loss)
    return dataclasses.replace(evaluation, metrics=metrics)


def metrics_lines(evaluation: Evaluation, classes: list[Any], prefix: str = "test") -> list[str]:
    """Binary: counts and scores (and the ROC AUC where the model gives probabilities). Multi-class:
    scores, a per-class table and the confusion matrix. Regression: loss, MSE, RMSE, MAE, R², and the
    MSE of predicting the training mean."""
    m = evaluation.metrics
    if isinstance(m, RegressionMetrics):
        lines = [
            f"{prefix}: loss {evaluation.loss:.6f}  MSE {m.mse:.6f}  RMSE {m.rmse:.6f}  MAE {m.mae:.6f}  R² {m.r2:.4f}"
        ]
        if m.baseline_mse is not None:
            lines.append(f"{prefix}: baseline (predicting the training mean): MSE {m.baseline_mse:.6f}")
        return lines
    assert isinstance(m, ClassificationMetrics)
    names = [str(c) for c in classes] or [str(i) for i in range(len(m.per_class))]
    if len(m.per_class) == 2:
        auc = "" if m.auc is None else f"  AUC {m.auc:.4f}"
        return [
            f"{prefix}: TP {m.tp}  TN {m.tn}  FP {m.fp}  FN {m.fn}",
            f"{prefix}: loss {evaluation.loss:.6f}  accuracy {m.accuracy:.4f}  precision {m.precision:.4f}  "
            f"recall {m.recall:.4f}  F1 {m.f1:.4f}{auc}",
        ]
    width = max(5, *(len(n) for n in names))
    lines = [
        f"{prefix}: loss {evaluation.loss:.6f}  accuracy {m.accuracy:.4f}  macro precision {m.precision:.4f}  "
        f"recall {m.recall:.4f}  F1 {m.f1:.4f}",
        f"{prefix}: {'class':<{width}}  precision  recall      F1  support",
    ]
    for name, c in zip(names, m.per_class, strict=True):
        lines.append(
            f"{prefix}: {name:<{width}}  {c['precision']:9.4f}  {c['recall']:6.4f}  {c['f1']:6.4f}  {c['support']:7d}"
        )
    cell = max(4, *(len(n) + 2 for n in names), len(str(int(m.confusion.max()))) + 2)
    lines.append(f"{prefix}: confusion matrix (rows: true class, columns: predicted class)")
    lines.append(f"{prefix}: {'':<{width}}" + "".join(f"{n:>{cell}}" for n in names))
    for name, row in zip(names, m.confusion.tolist(), strict=True):
        lines.append(f"{prefix}: {name:<{width}}" + "".join(f"{v:>{cell}d}" for v in row))
    return lines


def metrics_markdown(evaluation: Evaluation, classes: list[Any]) -> str:
    """The same numbers as Markdown tables."""
    m = evaluation.metrics
    rows = [("loss", f"{evaluation.loss:.6f}")]
    if isinstance(m, RegressionMetrics):
        rows += [("MSE", f"{m.mse:.6f}"), ("RMSE", f"{m.rmse:.6f}"), ("MAE", f"{m.mae:.6f}"), ("R²", f"{m.r2:.4f}")]
        if m.baseline_mse is not None:
            rows.append(("baseline MSE (predicting the training mean)", f"{m.baseline_mse:.6f}"))
    else:
        assert isinstance(m, ClassificationMetrics)
        rows.append(("accuracy", f"{m.accuracy:.4f}"))
        if len(m.per_class) == 2:
            rows += [("TP", str(m.tp)), ("TN", str(m.tn)), ("FP", str(m.fp)), ("FN", str(m.fn))]
        macro = "" if len(m.per_class) == 2 else "macro "
        rows += [(f"{macro}precision", f"{m.precision:.4f}"), (f"{macro}recall", f"{m.recall:.4f}")]
        rows.append((f"{macro}F1", f"{m.f1:.4f}"))
        if m.auc is not None:
            rows.append(("ROC AUC", f"{m.auc:.4f}"))
    text = "| metric | value |\n|---|---:|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    if isinstance(m, ClassificationMetrics) and len(m.per_class) > 2:
        names = [str(c) for c in classes]
        text += "\n| class | precision | recall | F1 | support |\n|---|---:|---:|---:|---:|\n"
        for name, c in zip(names, m.per_class, strict=True):
            text += f"| {name} | {c['precision']:.4f} | {c['recall']:.4f} | {c['f1']:.4f} | {c['support']} |\n"
    return text
