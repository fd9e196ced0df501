"""Figures as matplotlib ``Figure`` objects (see docs/plotting.md); importing this never imports matplotlib."""

from minidl.plot.api import confusion_matrix, decision_surface, predicted_vs_true, roc_curve, training_curves

__all__ = ["confusion_matrix", "decision_surface", "predicted_vs_true", "roc_curve", "training_curves"]
