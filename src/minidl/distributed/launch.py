"""launch: run ``python -m minidl ...`` in N processes on this machine, through torchrun, on loopback.

This is what ``minidl train --nproc N`` does (``supervise.launch_run``, which keeps the run's processes
alive and dead together). torchrun (``torch.distributed.run``) starts the workers and sets RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for ``init_from_env``. Everything binds to
127.0.0.1; for several machines, call torchrun yourself (docs/scaling.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from minidl.errors import ConfigError

LOOPBACK = "127.0.0.1"
TIMEOUT_EXIT_CODE = 124  # as timeout(1)
LAUNCHER_ENV = "MINIDL_LAUNCHER_PID"  # set for the workers: the launcher holds the run-folder lock
REPORT_ENV = "MINIDL_LAUNCH_REPORT"  # where torchrun (agent.py) and the workers tell the launcher how they ended


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


def loopback_env(base: Mapping[str, str]) -> dict[str, str]:
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
    workers_env = loopback_env(os.environ if env is None else env)
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
    signal_group(process.pid, signal.SIGKILL)
    return code


def signal_group(pgid: int, sig: int) -> bool:
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
    signal_group(process.pid, signal.SIGTERM)  # torchrun passes it on to its workers
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    if process.poll() is None:
        tree.update(descendants(process.pid))
    signal_group(process.pid, signal.SIGKILL)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + grace  # the workers die asynchronously: wait until they are gone
    while (signal_group(process.pid, 0) or any(map(is_alive, tree))) and time.monotonic() < deadline:
        time.sleep(0.05)


def process_table() -> list[tuple[int, int]]:
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
    for child, parent in process_table():
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


def children(pid: int) -> list[int]:
    """The direct children of ``pid``."""
    return [child for child, parent in process_table() if parent == pid]
