"""minidl.train: the training loop, tasks, metrics, experiments and run folders."""

from minidl.train.callbacks import Callback
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics, confusion_matrix
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Evaluation, Trainer, evaluate_model

__all__ = [
    "Callback",
    "ClassificationMetrics",
    "EpochResult",
    "Evaluation",
    "RegressionMetrics",
    "Task",
    "Trainer",
    "confusion_matrix",
    "evaluate_model",
]
