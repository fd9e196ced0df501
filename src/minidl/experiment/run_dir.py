"""Run folders: where ``minidl train`` writes config.json, metrics.csv, checkpoints, the model, figures and summary.md.

The folder is checked before training starts (``RunDir.plan`` has no side effects) and created only when
the run can start. An existing non-empty folder is refused unless ``overwrite``, and then only the files a
run writes (and its checkpoints) are removed. Every file is written atomically, so a failed run never leaves
a half file; the per-epoch logs are appended durably, one fsync-ed line per epoch, so a resumed run can
trim them back to its checkpoint and write each epoch exactly once.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

from minidl.errors import ConfigError
from minidl.experiment.run_lock import LOCK_NAME
from minidl.experiment.saved_model import SavedModel
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.persist.durable import atomic_write_bytes, remove_temp_files
from minidl.persist.safetensors_file import read_regular_file

# the files a run writes; --overwrite removes exactly these (and the checkpoints) from an existing folder
RUN_FILES = (
    "config.json",
    "metrics.csv",
    "timings.csv",
    "model.safetensors",
    "summary.md",
    "dataset.png",
    "training.png",
    "predictions.png",
    "confusion.png",
    "roc.png",
)


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, fsync it, ``os.replace`` it onto ``path``, fsync the folder."""
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


class RunDir:
    """A run folder: ``plan`` checks it, ``create`` makes it, ``write`` puts a file in it atomically."""

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite

    @classmethod
    def plan(
        cls, out: str | Path | None = None, name: str | None = None, *, overwrite: bool = False, root: str = "runs"
    ) -> RunDir:
        """The folder for a run: ``out``, else ``root/name``, else ``root/<timestamp>``; checked, not created."""
        if out is not None:
            path = Path(out)
        elif name is not None:
            if not name or name in (".", "..") or "/" in name or os.sep in name:
                raise ConfigError(f"run name must be a plain folder name, got {name!r} (use --out for a path)")
            path = Path(root) / name
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path, n = Path(root) / stamp, 1
            while path.exists():
                n += 1
                path = Path(root) / f"{stamp}-{n}"
        if path.exists():
            if not path.is_dir():
                raise ConfigError(f"run folder {path} exists and is not a folder")
            if any(p.name != LOCK_NAME for p in path.iterdir()) and not overwrite:  # a lone .lock: still empty
                raise ConfigError(
                    f"run folder {path} already exists and is not empty; pass --overwrite to replace its run files, "
                    "or choose another --out or --name"
                )
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"cannot create the run folder {path}: {parent} is a file, not a folder")
        target = path if path.exists() else parent
        if target is not None and not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write the run folder {path}: {target} is not writable")
        return cls(path, overwrite=overwrite)

    def create(self) -> RunDir:
        """Make the folder; with ``overwrite``, remove the run files and checkpoints of an earlier run."""
        self.path.mkdir(parents=True, exist_ok=True)
        if self.overwrite:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
            checkpoints = CheckpointManager(self.path)
            for path in checkpoints.paths():
                path.unlink(missing_ok=True)
            remove_temp_files(checkpoints.folder)
            remove_temp_files(self.path)
            if checkpoints.folder.is_dir() and not any(checkpoints.folder.iterdir()):
                checkpoints.folder.rmdir()
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.file(name)
        write_atomic(path, data)
        return path


def read_metrics(path: str | Path) -> list[dict[str, float | None]]:
    """The rows of a metrics.csv as dicts of floats (None for an empty cell)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)]


def open_run(path: str | Path) -> tuple[dict[str, Any], SavedModel]:
    """The resolved config and the saved model of a finished run folder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run folder {path}: no such folder")
    missing = [name for name in ("config.json", "model.safetensors") if not (path / name).exists()]
    if missing:
        raise ConfigError(f"run folder {path}: missing {' and '.join(missing)} (did the run finish?)")
    data = read_regular_file(path / "config.json", "config")
    try:
        config = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ConfigError(f"{path / 'config.json'}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path / 'config.json'}: not a config (a JSON object), got {type(config).__name__}")
    return config, SavedModel.load(path / "model.safetensors")
