"""``minidl train --resume RUN_DIR``: continue a run from its newest readable checkpoint, bit for bit.

The resumed run takes its whole config from the checkpoint, so it is the run that was stopped. Only what
does not change the training itself may be given again: ``--epochs`` (to train longer; not below the
epochs already done), ``--device`` and ``--nproc`` (where it runs: bit-identical only on the same device
and process count), ``--checkpoint-every``, ``--keep``, ``--quiet`` and ``--no-plots``. Any other
experiment flag, ``--config`` or ``--overwrite`` is refused with one line naming it.

Before anything in the folder changes: a CSV data file must be the one the run trained on (``data_identity``)
and the whole checkpoint must fit the run (``checkpoint_check``, a dry run on copies). Only then are the logs
brought to the checkpoint (``run_logs.restore_logs``: rebuilt from its history if they were damaged).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minidl.cli.options import ARGS_KEYS, FLAG_KEYS
from minidl.data.source import source_kind
from minidl.errors import CheckpointError, ConfigError, MinidlError
from minidl.experiment.config import check_layer, resolve, to_json
from minidl.experiment.data_identity import changed_line, check_data_file
from minidl.experiment.experiment import Experiment
from minidl.experiment.run_dir import RunDir
from minidl.experiment.run_logs import restore_logs
from minidl.experiment.schema import SETTINGS
from minidl.persist.checkpoint import Checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.persist.safetensors_file import read_regular_file
from minidl.train.evaluation import EpochResult
from minidl.train.state import FitStart

CHANGEABLE = ("epochs", "device", "nproc")  # config keys a resumed run may set again
FLAG_NAMES = {setting.dest: setting.flag_name for setting in SETTINGS if setting.flag is not None}
DEFAULT_EVERY, DEFAULT_KEEP = 1, 3


def flag_name(dest: str) -> str:
    return FLAG_NAMES.get(dest, "--" + dest.replace("_", "-"))


@dataclass
class Resume:
    """A checked plan to resume: the run folder, the checkpoint to go on from, and the config it holds."""

    run_dir: RunDir
    path: Path
    checkpoint: Checkpoint
    config: dict[str, Any]
    every: int
    keep: int
    warnings: list[str] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    history: list[EpochResult] | None = None  # the checkpoint's, once restored: what the logs are rebuilt from

    def restore(self, experiment: Experiment) -> FitStart:
        """Load the checkpoint into ``experiment`` (checked whole; nothing on disk changes)."""
        recorded, read = self.checkpoint.metadata.get("data"), experiment.data_file
        if isinstance(recorded, dict) and read is not None and recorded.get("sha256") != read["sha256"]:
            dataset = self.config["data"]["dataset"]  # changed since plan_resume hashed it
            raise ConfigError(f"--resume {self.run_dir.path}: {changed_line(dataset, recorded, read)}")
        start = experiment.restore(self.checkpoint, str(self.path))
        if self.config["epochs"] < start.epochs_done:
            raise ConfigError(
                f"--epochs {self.config['epochs']}: run {self.run_dir.path} has already done {start.epochs_done} epochs"
            )
        has_history = "history" in self.checkpoint.metadata
        self.history = list(experiment.trainer.history) if has_history else None
        return start

    def prepare(self, start: FitStart) -> None:
        """Say which checkpoint the run goes on from, set unreadable ones aside and bring the logs to it."""
        for line in self.warnings:
            print(f"minidl train: warning: {line}", file=sys.stderr)
        for path in self.unreadable:  # renamed, so that pruning never keeps them instead of good ones
            path.replace(path.with_name(path.name + ".unreadable"))
        rebuilt = restore_logs(self.run_dir, self.history, start.epochs_done)
        if rebuilt:
            names = " and ".join(rebuilt)
            print(
                f"minidl train: warning: {names} did not hold {_epochs(start.epochs_done)} as trained "
                f"(deleted, truncated or edited?); rebuilt from the history in {self.path.name}",
                file=sys.stderr,
            )
        config_json = self.run_dir.file("config.json")
        if not config_json.is_file() or _read_config(config_json) != self.config:
            self.run_dir.write("config.json", to_json(self.config))


def _epochs(n: int) -> str:
    return f"epochs 1 to {n}" if n > 1 else "epoch 1" if n == 1 else "only its header (no epoch was done)"


def plan_resume(args: argparse.Namespace) -> Resume:
    """Check the flags and the run folder and load its newest readable checkpoint; nothing is written."""
    _check_flags(args)
    folder = Path(args.resume)
    if not folder.is_dir():
        raise ConfigError(f"--resume {folder}: no such run folder")
    found = CheckpointManager(folder).latest_valid()
    path, checkpoint = found.path, found.checkpoint
    config = _checkpoint_config(checkpoint, path)
    for key in CHANGEABLE:
        if hasattr(args, key):
            config[key] = getattr(args, key)
    if hasattr(args, "epochs") or hasattr(args, "device") or hasattr(args, "nproc"):
        check_layer({key: config[key] for key in CHANGEABLE if key in config}, "command line")
    config_json = folder / "config.json"
    if config_json.is_file():
        differ = _differences(_read_config(config_json), config)
        if differ:
            raise CheckpointError(
                f"checkpoint {path} belongs to another run: its config differs from {config_json} in "
                + ", ".join(differ[:5])
            )
    meta = checkpoint.metadata
    warnings = found.warnings()
    if source_kind(config["data"]["dataset"]) == "csv":  # the same data file, byte for byte, or a new run
        warnings += check_data_file(folder, config["data"]["dataset"], meta.get("data"))
    every = args.checkpoint_every if args.checkpoint_every is not None else meta.get("checkpoint_every", DEFAULT_EVERY)
    keep = args.keep if args.keep is not None else meta.get("keep", DEFAULT_KEEP)
    unreadable = [skipped for skipped, _ in found.skipped]
    return Resume(RunDir(folder), path, checkpoint, config, every, keep, warnings, unreadable)


def _check_flags(args: argparse.Namespace) -> None:
    given = [flag_name(dest) for dest in (*FLAG_KEYS, *ARGS_KEYS) if hasattr(args, dest) and dest not in CHANGEABLE]
    given += [flag for flag, on in (("--config", args.config is not None), ("--overwrite", args.overwrite)) if on]
    if given:
        raise ConfigError(
            f"{given[0]} cannot be used with --resume: a resumed run keeps the settings in its checkpoint "
            "(it takes only --epochs, --device, --nproc, --checkpoint-every, --keep, --quiet and --no-plots)"
        )


def _checkpoint_config(checkpoint: Checkpoint, path: Path) -> dict[str, Any]:
    config = checkpoint.metadata.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path}: it holds no run config (not written by minidl train?)")
    try:
        return resolve(check_layer(copy.deepcopy(config), f"checkpoint {path}"))
    except MinidlError as error:
        raise CheckpointError(f"checkpoint {path}: its config is not usable here: {error}") from None


def _read_config(path: Path) -> Any:
    try:
        return json.loads(read_regular_file(path, "config").decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _differences(saved: Any, config: dict[str, Any]) -> list[str]:
    """The dotted keys (other than the changeable ones) whose values differ."""
    if not isinstance(saved, dict):
        return ["(config.json is not a JSON object)"]
    keys = sorted(set(saved) | set(config))
    out = []
    for key in keys:
        if key in CHANGEABLE:
            continue
        a, b = saved.get(key), config.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{sub}" for sub in sorted(set(a) | set(b)) if a.get(sub) != b.get(sub)]
        elif a != b:
            out.append(key)
    return out
