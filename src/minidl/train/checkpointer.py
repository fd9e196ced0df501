"""Checkpointer: the callback that saves a training run to ``RUN_DIR/checkpoints`` as it goes.

``Checkpointer(run_dir, every=1, keep=3, metadata={"config": config})`` saves after every ``every``-th epoch,
after the last epoch, and where training stopped early (a signal, ``stop_training``), mid-epoch included.
A checkpoint holds ``capture_state``'s tensors, progress and callback states plus the run's history (so
figures and summaries of a resumed run cover every epoch), ``every`` and ``keep`` (so ``--resume`` goes on
saving the same way), and the caller's ``metadata`` (the config, the data seed). Put it after the callbacks
that write logs: metrics.csv then has an epoch's row before the checkpoint of that epoch exists.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minidl.checks import is_int
from minidl.errors import ConfigError
from minidl.persist.checkpoint import Checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.train.callbacks import Callback, TrainerView
from minidl.train.state import capture_state

if TYPE_CHECKING:
    from minidl.train.evaluation import EpochResult


class Checkpointer(Callback):
    """Saves every ``every`` epochs (0: only after the last and when stopped), keeping the newest ``keep``."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        every: int = 1,
        keep: int | None = 3,
        metadata: dict[str, Any] | None = None,
        last: Path | None = None,
    ) -> None:
        if not is_int(every) or every < 0:
            raise ConfigError(f"checkpoint_every must be an integer >= 0, got {every!r}")
        self.manager = CheckpointManager(run_dir, keep)
        self.every = every
        self.metadata = dict(metadata or {})
        self.last = last  # the newest checkpoint of this run (a resumed run's: the one it resumed from)
        self.trainer: TrainerView | None = None
        self._saved_at: tuple[int, int] | None = None  # (global step, epochs done) of the last save

    def due(self, epoch: int, epochs: int | None) -> bool:
        """Whether the end of ``epoch`` (of ``epochs``) gets a checkpoint."""
        return epoch == epochs or (self.every > 0 and epoch % self.every == 0)

    def on_fit_begin(self, trainer: TrainerView) -> None:
        self.trainer = trainer
        trainer.last_checkpoint = self.last

    def on_epoch_end(self, result: EpochResult) -> None:
        if self.trainer.stop_training or self.due(result.epoch, self.trainer.loop.epochs):
            self.save_now()

    def on_fit_end(self, trainer: TrainerView) -> None:
        loop = trainer.loop
        if trainer.stop_training and self._saved_at != (loop.global_step, loop.epochs_done):
            self.save_now()

    def save_now(self) -> Path:
        """Save where the loop stands now: after an epoch, or after ``loop.step`` steps of one."""
        trainer = self.trainer
        loop = trainer.loop
        if loop.in_epoch:
            state = capture_state(trainer, loop.epoch, loop.step, loop.loss_sum, loop.loader_state)
        else:
            state = capture_state(trainer, loop.epochs_done, None, None, loop.loader.generator.get_state())
        path = self.save(trainer, state)
        self._saved_at = (loop.global_step, loop.epochs_done)
        return path

    def save(self, trainer: TrainerView, state: Checkpoint) -> Path:
        """Write ``state`` (from ``capture_state``) with the run's history and settings; return its path."""
        metadata = {
            **self.metadata,
            **state.metadata,
            "history": [dataclasses.asdict(result) for result in trainer.history],
            "checkpoint_every": self.every,
            "keep": self.manager.keep,
        }
        self.last = trainer.last_checkpoint = self.manager.save(
            state.metadata["epoch"],
            step=state.metadata["step"],
            model_state=state.model_state,
            optimizer_state=state.optimizer_state,
            scheduler_state=state.scheduler_state,
            rng_states=state.rng_states,
            metadata=metadata,
        )
        return self.last
