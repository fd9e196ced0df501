"""supervise: ``minidl train --nproc N``'s processes (the launcher, torchrun, N workers) live and die together.

- Killed (SIGKILL cannot be caught), the launcher takes the run along through the kernel's parent-death
  signal (``PR_SET_PDEATHSIG``, Linux): torchrun (``agent.py``) asks for SIGKILL when the launcher dies,
  and each worker for SIGKILL when torchrun dies, each checking just after asking that its parent is still
  the one that started it. A process group would not do: torchrun starts every worker in a session of its own.
- SIGINT, SIGTERM or SIGHUP (as SIGTERM) to the launcher is forwarded to the workers, not to torchrun
  (whose own handling prints a traceback and gives the workers 30 s): the workers agree on a step
  (``stop.py``), rank 0 saves a checkpoint and prints the resume command, and the launcher exits 130 or
  143. A second signal stops everything at once.
- A worker that dies on its own, or fails, ends the run with one line from the launcher; the other
  workers' consequential errors (a peer gone from an all-reduce) and torchrun's report stay quiet.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from minidl.distributed.launch import (
    LAUNCHER_ENV,
    REPORT_ENV,
    children,
    descendants,
    free_port,
    loopback_env,
    process_table,
    signal_group,
    torchrun_command,
)
from minidl.errors import ConfigError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
AGENT = "minidl.distributed.agent"  # torchrun, quiet, dying with the launcher


def die_with_parent(ancestor: int | None = None, generations: int = 1) -> None:
    """Ask the kernel for SIGKILL when this process's parent dies (Linux ``PR_SET_PDEATHSIG``; elsewhere a
    no-op), then exit at once if ``ancestor`` (``generations`` up) is already gone: the parent may have died
    before the request, and then it would never come."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if ancestor is None:
        return
    pid = os.getpid()
    for _ in range(generations):
        pid = _parent(pid)
    if pid != ancestor:
        os._exit(1)


def _parent(pid: int) -> int:
    if pid == os.getpid():
        return os.getppid()
    table = dict(process_table())
    return table.get(pid, 0)


def launch_run(nproc: int, argv: Sequence[str], *, run_dir: Path) -> int:
    """``minidl train --nproc N``: the run in ``nproc`` workers; returns the exit code, having printed at most one
    line about how it ended (rank 0 prints its own: the resume command, or its error)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc must be a positive integer, got {nproc!r}")
    command = torchrun_command(nproc, argv, free_port())
    command[command.index("torch.distributed.run")] = AGENT  # the same arguments, to torchrun inside agent.py
    with tempfile.TemporaryDirectory(prefix="minidl-launch-") as tmp:
        report = Path(tmp) / "torchrun.json"
        env = loopback_env(os.environ)
        env[LAUNCHER_ENV], env[REPORT_ENV] = str(os.getpid()), str(report)
        code, stop = supervise(command, env=env)
        if code == 0:
            return 0
        failures = json.loads(report.read_text()) if report.is_file() else []
        notes = {int(p.name.split(".")[1]): p.read_text().strip() for p in Path(tmp).glob("rank.*")}
    line, code = _outcome(code, stop, {f["rank"]: f for f in failures}, notes, run_dir)
    if line:
        print(f"minidl train: {line}", file=sys.stderr)
    return code


def _outcome(code: int, stop: int, failures: dict[int, dict], notes: dict[int, str], run_dir: Path) -> tuple[str, int]:
    """The one line (empty: rank 0 has said it) and the exit code of a run that did not succeed."""
    resume = f"; resume with: minidl train --resume {run_dir}" if _has_checkpoints(run_dir) else ""
    rank0 = failures.get(0, {}).get("exitcode")
    if stop:
        if rank0 == 128 + stop:  # rank 0 saved a checkpoint and printed the resume command
            return "", 128 + stop
        if code < 0:  # a second signal: everything was killed at once
            return f"stopped at once by a second {signal.Signals(stop).name}{resume}", 128 + stop
        return f"interrupted by {signal.Signals(stop).name} (no checkpoint saved by this stop){resume}", 128 + stop
    # torchrun stops the other workers with SIGTERM once one has failed: such a death is never the cause
    killed = [f for f in failures.values() if f["exitcode"] < 0 and f["exitcode"] != -signal.SIGTERM]
    if rank0 is not None and rank0 > 0 and 0 not in notes and not killed:  # rank 0 printed its error line
        return "", rank0
    killed += [f for f in failures.values() if f["exitcode"] == -signal.SIGTERM and not notes and rank0 is None]
    if killed:
        f = killed[0]  # the first death torchrun saw (agent.py keeps its order)
        name = signal.Signals(-f["exitcode"]).name if -f["exitcode"] in signal.valid_signals() else -f["exitcode"]
        return f"error: worker rank {f['rank']} (PID {f['pid']}) was killed by {name}; the run stopped{resume}", 1
    if notes:
        rank = min(notes)
        return f"error: worker rank {rank}: {notes[rank]}", 1
    return f"error: torchrun exited with code {code}", code if code > 0 else 1


def _has_checkpoints(run_dir: Path) -> bool:
    folder = Path(run_dir) / "checkpoints"
    return folder.is_dir() and any(p.suffix == ".safetensors" for p in folder.iterdir())


class _StopNow(Exception):
    """A second signal while the run stops: kill everything now."""


def supervise(command: Sequence[str], *, env: Mapping[str, str], poll: float = 0.05) -> tuple[int, int]:
    """Run ``command`` (torchrun) in a session of its own and wait; returns ``(exit code, stop signal)``.

    The first SIGINT, SIGTERM or SIGHUP (taken as SIGTERM) is forwarded to torchrun's children, the workers
    (again to any worker that starts later), and the run is awaited; a second kills the whole tree at once
    (exit code -signal). The handlers are this process's only while it waits.
    """
    stop = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal stop
        if stop:
            raise _StopNow
        stop = signal.SIGTERM if signum == signal.SIGHUP else signum

    main = sys.platform != "win32" and _is_main_thread()
    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS} if main else {}
    forwarded: set[int] = set()
    try:
        process = subprocess.Popen(list(command), env=dict(env), start_new_session=True)
    except BaseException:
        for s, old in previous.items():
            signal.signal(s, old)
        raise
    try:
        while True:
            try:
                code = process.wait(timeout=poll)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop:
                for pid in set(children(process.pid)) - forwarded:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, stop)
                    forwarded.add(pid)
    except _StopNow:
        tree = [process.pid, *descendants(process.pid)]
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        process.wait()
        code = -signal.SIGKILL
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    signal_group(process.pid, signal.SIGKILL)  # strays of torchrun's own group
    return code, stop


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def as_worker(debug: bool = False) -> Iterator[None]:
    """Wrap a worker's run under the ``--nproc`` launcher (a no-op elsewhere): die with torchrun, and end quietly
    where the launcher speaks for the run.

    Rank 0 prints its own errors and its resume line, as one process does. The other ranks print nothing:
    an interruption ends them with 0 (rank 0 gives the exit code), an error with 1. An unexpected error on
    any rank (above all a peer gone from an all-reduce) is written for the launcher, which prints the line.
    """
    launcher = os.environ.get(LAUNCHER_ENV)
    if not launcher or "WORLD_SIZE" not in os.environ:
        yield
        return
    die_with_parent(int(launcher), generations=2)  # parent: torchrun; grandparent: the launcher
    from minidl.errors import MinidlError
    from minidl.train.interrupt import TrainingInterrupted

    rank = int(os.environ.get("RANK", "0"))
    try:
        yield
    except SystemExit:
        raise
    except TrainingInterrupted:
        if rank == 0:
            raise
        raise SystemExit(0) from None  # torchrun must not take this for a failure and stop rank 0 mid-checkpoint
    except MinidlError:
        if rank == 0 or debug:
            raise
        raise SystemExit(1) from None
    except BaseException as error:
        if debug:
            raise
        report = os.environ.get(REPORT_ENV)
        if report:
            with contextlib.suppress(OSError):
                Path(report).with_name(f"rank.{rank}").write_text(f"{type(error).__name__}: {error}"[:500])
        # give torchrun time to see first the worker whose death caused this, and stay quiet meanwhile
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(0.5)
        raise SystemExit(1) from None
