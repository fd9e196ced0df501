"""One writer per run folder: an exclusive ``flock`` on ``RUN_DIR/.lock``, held for the run's life.

The lock belongs to the open file, so the OS releases it when the process ends, however it ends: a
SIGKILLed run never leaves a stale lock, and nothing needs cleaning up. A second writer (``minidl train``
into the folder, ``--overwrite``, ``--resume``) is refused in one line that names the holder's PID (read
from ``/proc/locks`` on Linux), and nothing is written to the lock file, so taking it changes nothing on disk.

Who holds it: the process that writes the run. A new run takes it when it creates the folder (after its
data and model are built, so a run that fails earlier leaves no folder behind); ``--resume`` before it
reads the checkpoints. Under ``--nproc`` the launcher takes it before it starts torchrun and holds it until
every worker has exited (the workers die with the launcher: ``distributed/supervise.py``); rank 0 then writes
under its launcher's lock. Under a plain ``torchrun``, rank 0 takes it itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from minidl.distributed.launch import LAUNCHER_ENV
from minidl.errors import ConfigError
from minidl.persist.durable import fsync_dir

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"

F = TypeVar("F", bound=Callable[..., Any])
_scopes: list[list[RunLock]] = []  # the locks taken inside each active ``releases_run_locks`` call


class RunLock:
    """An exclusive lock on ``folder``; ``release()`` (or the end of the process) lets it go."""

    def __init__(self, folder: Path, fd: int | None, created: bool) -> None:
        self.folder, self.fd, self.created = folder, fd, created

    def release(self) -> None:
        """Unlock; if this lock created the folder and the run wrote nothing into it, remove the folder again."""
        if self.fd is None:
            return
        if self.created and _only_the_lock_file(self.folder):
            with contextlib.suppress(OSError):
                (self.folder / LOCK_NAME).unlink()  # unlinked while held: no one can lock this inode afterwards
                self.folder.rmdir()
        os.close(self.fd)
        self.fd = None


def lock_run_folder(folder: str | Path, *, create: bool = False) -> RunLock:
    """Take the lock of run folder ``folder`` (``create``: make the folder first, as a new run does).

    Raises ``ConfigError`` naming the holder when another process has it. In a worker of the ``--nproc``
    launcher, which holds the lock itself, this takes nothing.
    """
    folder = Path(folder)
    if fcntl is None or os.environ.get(LAUNCHER_ENV):
        return _register(RunLock(folder, None, False))
    created = False
    if create:
        try:
            folder.mkdir(parents=True)
            created = True
            fsync_dir(folder.parent)  # the run folder's entry is durable before anything is written in it
        except FileExistsError:
            pass
        except OSError as error:
            raise ConfigError(f"cannot create the run folder {folder}: {error.strerror or error}") from None
    path = folder / LOCK_NAME
    try:  # read-only is enough for flock, and opening an existing file changes nothing on disk
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as error:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise ConfigError(f"cannot lock the run folder {folder}: {error.strerror or error}") from None
    locked, holder = _try_lock(fd, path)
    if not locked:
        os.close(fd)
        raise ConfigError(in_use_message(folder, holder)) from None
    if not _same_file(fd, path):  # the folder was removed and made again while we opened it: not ours
        os.close(fd)
        raise ConfigError(f"run folder {folder} changed while it was being locked; start the run again")
    return _register(RunLock(folder, fd, created))


def lock_new_run_folder(folder: str | Path, *, overwrite: bool = False) -> RunLock:
    """Create and lock a new run's folder, then check again, under the lock, that it is still free to use:
    another run may have filled it since ``RunDir.plan`` looked (two runs started at the same instant)."""
    lock = lock_run_folder(folder, create=True)
    others = sorted(p.name for p in Path(folder).iterdir() if p.name != LOCK_NAME)
    if others and not overwrite:
        lock.release()
        raise ConfigError(
            f"run folder {folder} already exists and is not empty (another run wrote {others[0]} since this one "
            "started); pass --overwrite to replace its run files, or choose another --out or --name"
        )
    return lock


def lock_for_command(resume: str | None, out: str | None, name: str | None, root: str = "runs") -> None:
    """What ``minidl train`` does first. ``--resume``: lock the folder before its checkpoints are read, and
    refuse one it cannot write to (read-only) before any training. A new run: refuse at once a folder
    that another run holds; its own lock is taken when it creates the folder (``lock_new_run_folder``)."""
    if resume is not None:
        folder = Path(resume)
        if folder.is_dir():  # otherwise plan_resume says that it does not exist
            if not os.access(folder, os.W_OK | os.X_OK):
                raise ConfigError(
                    f"--resume {folder}: the run folder is not writable (read-only?); a resumed run writes its "
                    "checkpoints and logs there"
                )
            lock_run_folder(folder)
        return
    for folder in (out, os.path.join(root, name) if name else None):
        if folder is not None:
            check_not_in_use(folder)


def check_not_in_use(folder: str | Path) -> None:
    """Refuse early (before any work) when a run holds ``folder``'s lock; takes nothing, creates nothing."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or os.environ.get(LAUNCHER_ENV):
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # no lock file (a new folder, an old run): nobody holds it
        return
    try:
        locked, holder = _try_lock(fd, path)
        if not locked:
            raise ConfigError(in_use_message(Path(folder), holder))
    finally:
        os.close(fd)  # closing also releases the probe's own lock at once


def in_use_message(folder: Path, holder: int | None) -> str:
    who = f"PID {holder}" if holder is not None else "another process"
    return f"run folder {folder} is in use by {who} (a minidl run writing there): wait for it to end, or stop it"


def lock_holder(path: Path) -> int | None:
    """The PID holding a ``flock`` on ``path``, from ``/proc/locks`` (None where that cannot be read)."""
    try:
        info = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 4242 00:2c:1234 0 EOF"; "->" marks a waiter
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            with contextlib.suppress(ValueError):
                return int(fields[4])
    return None


def releases_run_locks(fn: F) -> F:
    """Decorate a command: the run-folder locks taken while it runs are released when it returns or raises."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        _scopes.append([])
        try:
            return fn(*args, **kwargs)
        finally:
            for lock in reversed(_scopes.pop()):
                lock.release()

    return call  # type: ignore[return-value]


def _try_lock(fd: int, path: Path, attempts: int = 3) -> tuple[bool, int | None]:
    """``flock`` without waiting: ``(locked, holder)``. A refusal counts only while a holder is seen in
    ``/proc/locks`` (the holder may have ended between the two), and the refusal names the PID seen then,
    not one read again later (by then the holder may be gone). Elsewhere the first answer stands."""
    holder = None
    for _ in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True, None
        except OSError:
            holder = lock_holder(path)
            if holder is not None or not os.path.exists("/proc/locks"):
                return False, holder
    return False, holder


def _register(lock: RunLock) -> RunLock:
    if _scopes:
        _scopes[-1].append(lock)
    return lock


def _only_the_lock_file(folder: Path) -> bool:
    try:
        return [p.name for p in folder.iterdir()] == [LOCK_NAME]
    except OSError:
        return False


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
