"""minidl.train: the training loop, tasks and metrics."""

from minidl.train.metrics import ClassificationMetrics, confusion_matrix
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Evaluation, Trainer

__all__ = ["ClassificationMetrics", "EpochResult", "Evaluation", "Task", "Trainer", "confusion_matrix"]
