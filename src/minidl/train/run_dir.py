"""Run folders: where ``minidl train`` writes config.json, metrics.csv, model.safetensors, figures and summary.md.

The folder is checked before training starts (``RunDir.plan`` has no side effects) and created only when
the run can start. An existing non-empty folder is refused unless ``overwrite``, and then only the files a
run writes are replaced. Every file is written atomically, so a failed run never leaves a half file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from minidl.errors import ConfigError
from minidl.train.callbacks import Callback
from minidl.train.saved_model import SavedModel
from minidl.train.trainer import EpochResult

# the files a run writes; --overwrite removes exactly these from an existing folder
RUN_FILES = (
    "config.json",
    "metrics.csv",
    "model.safetensors",
    "summary.md",
    "dataset.png",
    "training.png",
    "predictions.png",
    "confusion.png",
)
METRICS_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file in the same folder, fsync it, then ``os.replace`` it onto ``path``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


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
            if any(path.iterdir()) and not overwrite:
                raise ConfigError(
                    f"run folder {path} already exists and is not empty; pass --overwrite to replace its run files, "
                    "or choose another --out or --name"
                )
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        target = path if path.exists() else parent
        if target is not None and not os.access(target, os.W_OK | os.X_OK):
            raise ConfigError(f"cannot write the run folder {path}: {target} is not writable")
        return cls(path, overwrite=overwrite)

    def create(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        if self.overwrite:
            for name in RUN_FILES:
                (self.path / name).unlink(missing_ok=True)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.file(name)
        write_atomic(path, data)
        return path


def _cell(value: float | int | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


class MetricsLog(Callback):
    """Rewrites ``metrics.csv`` (atomically) after every epoch: one row per epoch, a header first."""

    def __init__(self, run_dir: RunDir, filename: str = "metrics.csv") -> None:
        self.run_dir, self.filename = run_dir, filename
        self.rows: list[list[str]] = []

    def on_epoch_end(self, result: EpochResult) -> None:
        self.rows.append(
            [
                str(result.epoch),
                _cell(result.loss, ".8g"),
                _cell(result.accuracy, ".6f"),
                _cell(result.val_loss, ".8g"),
                _cell(result.val_accuracy, ".6f"),
                _cell(result.lr, ".8g"),
                _cell(result.seconds, ".4f"),
            ]
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(METRICS_COLUMNS)
        writer.writerows(self.rows)
        self.run_dir.write(self.filename, buffer.getvalue())


def read_metrics(path: str | Path) -> list[dict[str, float | None]]:
    """The rows of a metrics.csv as dicts of floats (None for an empty cell)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{k: (float(v) if v != "" else None) for k, v in row.items()} for row in csv.DictReader(handle)]


def open_run(path: str | Path) -> tuple[dict[str, Any], SavedModel]:
    """The resolved config and the saved model of a finished run folder."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"run folder {path}: no such folder")
    missing = [name for name in ("config.json", "model.safetensors") if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"run folder {path}: missing {' and '.join(missing)} (did the run finish?)")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path / 'config.json'}: not valid JSON ({error})") from None
    return config, SavedModel.load(path / "model.safetensors")
