"""A run's checkpoint folder: numbered checkpoints, the newest k kept, the newest readable one found.

``RUN_DIR/checkpoints/epoch-0003.safetensors`` is the state after epoch 3 (epochs count from 1);
``epoch-0004-step-000037.safetensors`` the state after 37 batches of epoch 4 (an interrupted epoch). They
sort in training order; other names in the folder are left alone, and the temporary files of a crashed
write are deleted by the next ``save``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minidl.checks import is_int
from minidl.errors import CheckpointError, ConfigError
from minidl.persist.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from minidl.persist.durable import remove_temp_files

_NAME = re.compile(r"^epoch-(\d{4,})(?:-step-(\d{6,}))?\.safetensors$")


@dataclass
class Resumable:
    """The newest readable checkpoint, and the newer ones skipped as unreadable (newest first)."""

    path: Path
    checkpoint: Checkpoint
    skipped: list[tuple[Path, CheckpointError]] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per skipped checkpoint, saying which one the run falls back to."""
        order = [path for path, _ in self.skipped] + [self.path]
        return [f"{error}; falling back to {order[i + 1].stem}" for i, (_, error) in enumerate(self.skipped)]


class CheckpointManager:
    """``CheckpointManager(run_dir, keep=3)``: ``save(epoch, ...)`` then keep the newest ``keep`` files."""

    def __init__(self, run_dir: str | os.PathLike[str], keep: int | None = None) -> None:
        if keep is not None and (not is_int(keep) or keep < 1):
            raise ConfigError(f"keep must be a positive number of checkpoints, got {keep!r}")
        self.folder = Path(run_dir) / "checkpoints"
        self.keep = keep

    @staticmethod
    def name(epoch: int, step: int | None = None) -> str:
        """``epoch-0003.safetensors`` (epoch 3 done) or ``epoch-0004-step-000037.safetensors`` (mid-epoch)."""
        if epoch < 0 or (step is not None and step < 0):
            raise ValueError(f"CheckpointManager.name: negative epoch or step ({epoch}, {step})")
        return f"epoch-{epoch:04d}" + (f"-step-{step:06d}" if step is not None else "") + ".safetensors"

    def paths(self) -> list[Path]:
        """The checkpoints in the folder, oldest first (in training order)."""
        if not self.folder.is_dir():
            return []
        found = []
        for entry in self.folder.iterdir():
            match = _NAME.match(entry.name)
            if match:
                epoch, step = int(match[1]), math.inf if match[2] is None else int(match[2])
                found.append(((epoch, step), entry))
        return [path for _, path in sorted(found)]

    def save(self, epoch: int, *, step: int | None = None, **parts: Any) -> Path:
        """Write the checkpoint for ``epoch`` (and ``step``, mid-epoch) atomically, then prune.

        ``parts`` are ``save_checkpoint``'s keyword arguments (``model_state=``, ``optimizer_state=``, ...).
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(f"cannot create checkpoint folder {self.folder}: {error.strerror or error}") from None
        remove_temp_files(self.folder)
        path = save_checkpoint(self.folder / self.name(epoch, step), **parts)
        self.prune()
        return path

    def prune(self) -> list[Path]:
        """Delete all but the newest ``keep`` checkpoints; return the deleted paths."""
        paths = self.paths()
        doomed = paths[: -self.keep] if self.keep is not None else []
        for path in doomed:
            path.unlink(missing_ok=True)
        return doomed

    def latest(self) -> Path | None:
        paths = self.paths()
        return paths[-1] if paths else None

    def latest_valid(self) -> Resumable:
        """Load the newest checkpoint that loads, skipping (and recording) unreadable newer ones.

        Raises ``CheckpointError`` when the folder holds no checkpoint, or none that loads.
        """
        skipped: list[tuple[Path, CheckpointError]] = []
        for path in reversed(self.paths()):
            try:
                return Resumable(path, load_checkpoint(path), skipped)
            except CheckpointError as error:
                skipped.append((path, error))
        if not skipped:
            raise CheckpointError(f"no checkpoint in {self.folder} to resume from")
        reasons = "; ".join(str(error) for _, error in skipped)
        raise CheckpointError(f"no readable checkpoint in {self.folder}: {reasons}")
