"""minidl.train: the training loop (``Trainer``), its callbacks, tasks and metrics.

The loop's concerns are callbacks: ``DivergenceGuard`` and ``LRSchedule`` (the trainer adds them),
``Checkpointer``, ``StopOnSignal`` and ``EarlyStopping`` (a run adds them). The checkpoint files themselves are
``minidl.persist``'s, re-exported here; a run assembled from a config is ``minidl.experiment``.
"""

from minidl.persist.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.persist.rng import capture_rng_states, module_generators, restore_rng_states
from minidl.train.callbacks import Callback, CallbackList
from minidl.train.checkpointer import Checkpointer
from minidl.train.divergence import DivergenceError, DivergenceGuard
from minidl.train.early_stopping import EarlyStopping
from minidl.train.evaluation import EpochResult, Evaluation, eval_mode, evaluate_model
from minidl.train.interrupt import StopOnSignal, TrainingInterrupted, stop_on_signals
from minidl.train.loop import Loop
from minidl.train.metrics import ClassificationMetrics, RegressionMetrics, confusion_matrix
from minidl.train.schedule import LRSchedule
from minidl.train.state import FitStart, capture_state, restore_state
from minidl.train.task import Task
from minidl.train.trainer import Trainer

__all__ = [
    "Callback",
    "CallbackList",
    "Checkpoint",
    "CheckpointManager",
    "Checkpointer",
    "ClassificationMetrics",
    "DivergenceError",
    "DivergenceGuard",
    "EarlyStopping",
    "EpochResult",
    "Evaluation",
    "FitStart",
    "LRSchedule",
    "Loop",
    "RegressionMetrics",
    "StopOnSignal",
    "Task",
    "Trainer",
    "TrainingInterrupted",
    "capture_rng_states",
    "capture_state",
    "confusion_matrix",
    "eval_mode",
    "evaluate_model",
    "load_checkpoint",
    "module_generators",
    "restore_rng_states",
    "restore_state",
    "save_checkpoint",
    "stop_on_signals",
]
