"""launch: run ``python -m minidl ...`` in N processes on this machine, through torchrun, on loopback.

This is what ``minidl train --nproc N`` does. torchrun (``torch.distributed.run``) starts the workers
and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for ``init_from_env``. Everything
binds to 127.0.0.1; for several machines, call torchrun yourself (docs/scaling.md).

The run's processes live and die together (``launch_run``):
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
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from minidl.errors import ConfigError

LOOPBACK = "127.0.0.1"
TIMEOUT_EXIT_CODE = 124  # as timeout(1)
LAUNCHER_ENV = "MINIDL_LAUNCHER_PID"  # set for the workers: the launcher holds the run-folder lock
REPORT_ENV = "MINIDL_LAUNCH_REPORT"  # where torchrun (agent.py) and the workers tell the launcher how they ended
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def torchrun_command(nproc: int, argv: Sequence[str], port: int, *, module: str = "minidl") -> list[str]:
    """``python -m torch.distributed.run --nproc-per-node N --master-addr 127.0.0.1 ... -m module argv``."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        str(nproc),
        "--master-addr",
        LOOPBACK,
        "--master-port",
        str(port),
        "-m",
        module,
        *argv,
    ]


def _loopback_env(base: Mapping[str, str]) -> dict[str, str]:
    """The environment for the workers: gloo and nccl bind the loopback interface, one thread each."""
    env = dict(base)
    names = {name for _, name in socket.if_nameindex()} if hasattr(socket, "if_nameindex") else set()
    loopback = next((name for name in ("lo", "lo0") if name in names), None)
    if loopback is not None:
        env.setdefault("GLOO_SOCKET_IFNAME", loopback)
        env.setdefault("NCCL_SOCKET_IFNAME", loopback)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default, set here so it does not print a banner
    return env


def launch(
    nproc: int,
    argv: Sequence[str],
    *,
    module: str = "minidl",
    timeout: float | None = None,
    port: int | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``python -m <module> <argv>`` in ``nproc`` processes under torchrun on 127.0.0.1; wait.

    Returns torchrun's exit code (0 when every worker succeeded), or 124 when ``timeout`` seconds
    passed; then, as on KeyboardInterrupt (which is re-raised), the whole process group is killed.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc must be a positive integer, got {nproc!r}")
    command = torchrun_command(nproc, argv, port if port is not None else free_port(), module=module)
    workers_env = _loopback_env(os.environ if env is None else env)
    workers_env[LAUNCHER_ENV] = str(os.getpid())  # the workers write under this process's run-folder lock
    return run_process_group(command, timeout=timeout, cwd=cwd, env=workers_env)


def run_process_group(
    command: Sequence[str],
    *,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = 5.0,
) -> int:
    """Run ``command`` in a new session; return its exit code, or 124 after ``timeout`` seconds.

    On timeout or KeyboardInterrupt the command's process group and every process below it (torchrun's
    workers run in sessions of their own) get SIGTERM, then SIGKILL after ``grace`` seconds. Stray
    processes of the group are killed after a normal exit too.
    """
    process = subprocess.Popen(list(command), cwd=cwd, env=None if env is None else dict(env), start_new_session=True)
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process, grace)
        return TIMEOUT_EXIT_CODE
    except BaseException:  # KeyboardInterrupt above all
        _kill_group(process, grace)
        raise
    _signal_group(process.pid, signal.SIGKILL)
    return code


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group; False when no process of it is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # macOS, for a group of zombies
        pass
    return True


def _kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, to ``process``'s group and to every process below it.

    torchrun starts each worker in a session of its own, out of reach of a signal to torchrun's group:
    they are found by walking the process tree first, and killed one by one if they outlive torchrun.
    """
    tree = set(descendants(process.pid))
    _signal_group(process.pid, signal.SIGTERM)  # torchrun passes it on to its workers
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    if process.poll() is None:
        tree.update(descendants(process.pid))
    _signal_group(process.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + grace  # the workers die asynchronously: wait until they are gone
    while (_signal_group(process.pid, 0) or any(map(is_alive, tree))) and time.monotonic() < deadline:
        time.sleep(0.05)


def _process_table() -> list[tuple[int, int]]:
    """``(pid, parent pid)`` of every process: from /proc on Linux, from ``ps`` elsewhere."""
    if os.path.isdir("/proc/self"):
        table = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    stat = Path(f"/proc/{entry}/stat").read_text(encoding="utf-8", errors="replace")
                    table.append((int(entry), int(stat.rsplit(")", 1)[1].split()[1])))
        return table
    out = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True, text=True, check=False).stdout
    return [(int(a), int(b)) for a, b in (line.split() for line in out.splitlines() if line.strip())]


def descendants(pid: int) -> list[int]:
    """The processes below ``pid``: its children, their children, and so on (whatever session they are in)."""
    children: dict[int, list[int]] = {}
    for child, parent in _process_table():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (dead, not yet reaped by its parent) counts as gone."""
    try:
        return (
            Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1].split()[0] != "Z"
        )
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


# -- the run's lifecycle: one launcher, one torchrun, N workers, alive and dead together -------------------
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
    table = dict(_process_table())
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
        env = _loopback_env(os.environ)
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
        f = killed[0]
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
    _signal_group(process.pid, signal.SIGKILL)  # strays of torchrun's own group
    return code, stop


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return [child for child, parent in _process_table() if parent == pid]


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
