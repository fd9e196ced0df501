"""minidl.train: the training loop, tasks, metrics, experiments, run folders and checkpoints."""

from minidl.persist.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.persist.rng import capture_rng_states, module_generators, restore_rng_states
from minidl.train.callbacks import Callback
from minidl.train.checkpointer import Checkpointer
from minidl.train.divergence import DivergenceError
from minidl.train.interrupt import TrainingInterrupted, stop_on_signals
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics, confusion_matrix
from minidl.train.state import FitStart, capture_state, restore_state
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Evaluation, Trainer, evaluate_model

__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointManager",
    "Checkpointer",
    "ClassificationMetrics",
    "DivergenceError",
    "EpochResult",
    "Evaluation",
    "FitStart",
    "RegressionMetrics",
    "Task",
    "Trainer",
    "TrainingInterrupted",
    "capture_rng_states",
    "capture_state",
    "confusion_matrix",
    "evaluate_model",
    "load_checkpoint",
    "module_generators",
    "restore_rng_states",
    "restore_state",
    "save_checkpoint",
    "stop_on_signals",
]
