"""launch: run ``python -m minidl ...`` in N processes on this machine, through torchrun, on loopback.

This is what ``minidl train --nproc N`` does. torchrun (``torch.distributed.run``) starts the workers
and sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for ``init_from_env``. Everything
binds to 127.0.0.1; for several machines, call torchrun yourself (docs/scaling.md).
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

from minidl.errors import ConfigError

LOOPBACK = "127.0.0.1"
TIMEOUT_EXIT_CODE = 124  # as timeout(1)


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
    return run_process_group(command, timeout=timeout, cwd=cwd, env=_loopback_env(os.environ if env is None else env))


def run_process_group(
    command: Sequence[str],
    *,
    timeout: float | None = None,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    grace: float = 5.0,
) -> int:
    """Run ``command`` in a new session; return its exit code, or 124 after ``timeout`` seconds.

    On timeout or KeyboardInterrupt every process of the session (torchrun's agent and its workers)
    gets SIGTERM, then SIGKILL after ``grace`` seconds. Stray processes are reaped after a normal exit too.
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
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + grace  # the workers die asynchronously: wait until the group is gone
    while _signal_group(process.pid, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
