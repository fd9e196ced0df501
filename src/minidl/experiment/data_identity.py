"""The identity of a run's data file: its resolved path, size and SHA-256, checked again on ``--resume``.

A run trained on a CSV file records ``{"path", "size", "sha256"}`` in every checkpoint's metadata
(``metadata["data"]``): the checkpoint is what ``--resume`` goes on from, so the record travels with the
state it belongs to, and config.json stays a plain config that ``--config`` can start a new run from (on
the file as it is then). config.json and the checkpoint's config hold the file's absolute path, so a run
resumed from any folder reads the same file. A resumed run refuses, in one line and before anything is
written, a data file that is missing or whose bytes changed, and says how to start a new run instead. Runs
on generated data (disk, spirals, digits, ...) need no hash: their generator settings are in the config,
which resume already compares. A checkpoint written before this record existed resumes with a warning.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import torch

from minidl.data.source import DataBundle, load_data, source_kind
from minidl.errors import ConfigError, DataError
from minidl.limits import short_repr

CHUNK = 1 << 20  # hashed a MiB at a time: memory stays flat whatever the file's size


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path": resolved absolute path, "size": bytes, "sha256": hex digest}`` of a regular file, streamed."""
    resolved = os.path.realpath(os.path.expanduser(path))
    try:
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO never blocks the open
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as error:
        raise DataError(f"{path}: cannot open: {error.strerror or error}") from None
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise DataError(f"{path}: not a regular file")
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"path": resolved, "size": size, "sha256": digest.hexdigest()}


def stat_key(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (inode, size, mtime), or None if it cannot be read."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns


def load_recorded(data: dict[str, Any], seed: int, dtype: torch.dtype) -> tuple[DataBundle, dict[str, Any] | None]:
    """``load_data``, and for a CSV file the identity of the bytes it read (None for generated data).

    The file is hashed after it is read; a file rewritten meanwhile (its inode, size or mtime changed)
    is refused rather than recorded under a hash of other bytes than were read.
    """
    path = data["dataset"]
    if source_kind(path) != "csv":
        return load_data(data, seed, dtype), None
    before = stat_key(path)
    loaded = load_data(data, seed, dtype)
    identity = file_identity(path)
    if stat_key(path) != before:
        raise DataError(f"{path}: the file changed while it was being read; try again")
    return loaded, identity


def new_run(run: str | os.PathLike[str], flags: str = "") -> str:
    """The command that starts a new run with ``run``'s settings (config.json), on the data as it is now."""
    return f"minidl train --config {Path(run) / 'config.json'}{flags} --out NEWDIR"


def check_data_file(run: str | os.PathLike[str], dataset: str, recorded: Any) -> list[str]:
    """Refuse to resume ``run`` on a data file other than the one it trained on; warnings to print.

    ``dataset`` is the config's path (absolute for runs of this minidl), ``recorded`` the checkpoint's
    ``metadata["data"]`` (None for a checkpoint written before it was recorded).
    """
    where = f"--resume {run}"
    if not os.path.isabs(dataset):
        note = f"run {run} names its data file by a relative path, {dataset}; read from {os.getcwd()}"
        return [note, *check_data_file(run, os.path.abspath(dataset), recorded)]
    if not os.path.exists(dataset):
        raise ConfigError(
            f"{where}: its data file {dataset} is missing, and a resumed run must train on the data it started "
            f"with; put the file back, or start a new run on other data: {new_run(run, ' --dataset FILE')}"
        )
    if recorded is None:
        return [f"run {run} has no record of its data file's content (an older run): {dataset} is not checked"]
    if not is_file_record(recorded):
        raise ConfigError(f"{where}: its checkpoint's record of the data file is malformed: {short_repr(recorded)}")
    now = file_identity(dataset)
    if (now["size"], now["sha256"]) != (recorded["size"], recorded["sha256"]):
        hint = f"to train on it as it is now, start a new run: {new_run(run)}"
        raise ConfigError(f"{where}: {changed_line(dataset, recorded, now)}; {hint}")
    return []


def check_evaluated_file(run: str | os.PathLike[str], dataset: str, recorded: dict[str, Any] | None) -> None:
    """Refuse to rebuild ``run``'s own split from a data file whose bytes changed since it trained.

    ``recorded`` is the model's record of the file (None for generated data and for older models).
    """
    if recorded is None or not os.path.isabs(dataset) or not os.path.exists(dataset):
        return  # a missing file is load_data's one-line error
    now = file_identity(dataset)
    if (now["size"], now["sha256"]) != (recorded["size"], recorded["sha256"]):
        raise DataError(
            f"evaluate {run}: its data file {dataset} has changed since the run trained on it (sha256 "
            f"{recorded['sha256'][:12]}..., now {now['sha256'][:12]}...), so the split rebuilt from it would not be "
            f"the run's; to evaluate on the file as it is now, give it as --data {dataset}"
        )


def changed_line(dataset: str, recorded: dict[str, Any], now: dict[str, Any]) -> str:
    return (
        f"its data file {dataset} has changed since the run started (sha256 {recorded['sha256'][:12]}..., "
        f"{recorded['size']} bytes; now {now['sha256'][:12]}..., {now['size']} bytes), and a resumed run must "
        "train on the data it started with"
    )


def is_file_record(record: Any) -> bool:
    """A well-formed ``{"path", "size", "sha256"}`` record (as ``file_identity`` makes)."""
    return (
        isinstance(record, dict)
        and isinstance(record.get("sha256"), str)
        and isinstance(record.get("size"), int)
        and not isinstance(record.get("size"), bool)
    )
