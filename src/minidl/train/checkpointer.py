"""Checkpointer: when and how a training run saves itself to ``RUN_DIR/checkpoints``.

``Trainer.checkpointer = Checkpointer(run_dir, every=1, keep=3, metadata={"config": config})``: the trainer
saves after every ``every``-th epoch, after the last epoch, and at the step where a signal stopped it. A
checkpoint holds ``capture_state``'s tensors and progress plus the run's history (so figures and summaries
of a resumed run cover every epoch), ``every`` and ``keep`` (so ``--resume`` goes on saving the same way),
and the caller's ``metadata`` (the config, the data seed).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minidl.errors import ConfigError
from minidl.persist.checkpoint import Checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager

if TYPE_CHECKING:
    from minidl.train.trainer import Trainer


class Checkpointer:
    """Saves every ``every`` epochs (0: only after the last and when interrupted), keeping the newest ``keep``."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        every: int = 1,
        keep: int | None = 3,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ConfigError(f"checkpoint_every must be an integer >= 0, got {every!r}")
        self.manager = CheckpointManager(run_dir, keep)
        self.every = every
        self.metadata = dict(metadata or {})
        self.last: Path | None = None  # the newest checkpoint of this run: the last good state

    def due(self, epoch: int, epochs: int) -> bool:
        """Whether the end of ``epoch`` (of ``epochs``) gets a checkpoint."""
        return epoch == epochs or (self.every > 0 and epoch % self.every == 0)

    def save(self, trainer: Trainer, state: Checkpoint) -> Path:
        """Write ``state`` (from ``capture_state``) with the run's history and settings; return its path."""
        metadata = {
            **self.metadata,
            **state.metadata,
            "history": [dataclasses.asdict(result) for result in trainer.history],
            "checkpoint_every": self.every,
            "keep": self.manager.keep,
        }
        self.last = self.manager.save(
            state.metadata["epoch"],
            step=state.metadata["step"],
            model_state=state.model_state,
            optimizer_state=state.optimizer_state,
            scheduler_state=state.scheduler_state,
            rng_states=state.rng_states,
            metadata=metadata,
        )
        return self.last
