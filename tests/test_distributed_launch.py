"""Starting data-parallel runs: the torchrun environment, devices and backends, the loopback launcher,
and that every process it started is gone when it returns (torchrun's workers live in sessions of their own)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import minidl.device
from minidl.distributed import init_from_env, parallel_device
from minidl.distributed.launch import (
    LOOPBACK,
    descendants,
    free_port,
    is_alive,
    launch,
    run_process_group,
    torchrun_command,
)
from minidl.errors import ConfigError

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def test_init_from_env_without_torchrun_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_from_env("cpu")
    got = (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed, ctx.device)
    assert got == (0, 1, True, False, torch.device("cpu"))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WORLD_SIZE": "2"}, "RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT is not"),
        ({"WORLD_SIZE": "2", "RANK": "x", "LOCAL_RANK": "0", "MASTER_ADDR": LOOPBACK, "MASTER_PORT": "1"}, "'x'"),
        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0", "MASTER_ADDR": LOOPBACK, "MASTER_PORT": "1"}, "RANK=2"),
    ],
)
def test_init_from_env_rejects_a_broken_environment(monkeypatch, env, message):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        init_from_env("cpu")


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` CUDA devices (and no MPS)."""

    def set_(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(minidl.device, "mps_is_available", lambda: False)

    return set_


@pytest.mark.parametrize(
    ("n_gpus", "device", "world", "local_rank", "expected"),
    [
        (0, "cpu", 2, 1, ("cpu", "gloo")),
        (0, "auto", 4, 3, ("cpu", "gloo")),
        (2, "auto", 2, 1, ("cuda:1", "nccl")),
        (2, "cuda", 2, 0, ("cuda:0", "nccl")),
        (2, "cuda:1", 1, 0, ("cuda:1", "nccl")),  # one process keeps the GPU it names
    ],
)
def test_parallel_device(gpus, n_gpus, device, world, local_rank, expected):
    gpus(n_gpus)
    target, backend = parallel_device(device, world, local_rank)
    assert (str(target), backend) == expected


@pytest.mark.parametrize(
    ("n_gpus", "device", "world", "local_rank", "message"),
    [
        (2, "cuda", 4, 3, "LOCAL_RANK is 3 but only 2 CUDA device(s) are visible"),
        (2, "cuda:1", 2, 0, "pass 'cuda', not an index"),
        (0, "cuda", 2, 0, "torch.cuda.is_available() is False"),
        (0, "meta", 2, 0, "unknown device 'meta'"),
    ],
)
def test_parallel_device_names_the_problem(gpus, n_gpus, device, world, local_rank, message):
    gpus(n_gpus)
    with pytest.raises(ConfigError) as error:
        parallel_device(device, world, local_rank)
    assert message in str(error.value)


# -- the launcher -------------------------------------------------------------------------------------------
def test_torchrun_command_uses_loopback():
    cmd = torchrun_command(2, ["train", "--epochs", "1"], 29500)
    assert cmd[1:] == [
        "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", "29500", "-m", "minidl", "train", "--epochs", "1",
    ]  # fmt: skip


def test_free_port_is_on_loopback_and_bindable():
    import socket

    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, port))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--nproc", "2", "--epochs", "3"], ["train", "--epochs", "3"]),
        (["train", "--epochs", "3", "--nproc=4"], ["train", "--epochs", "3"]),
        (["--debug", "train", "--npr", "2", "--n-train", "9"], ["--debug", "train", "--n-train", "9"]),
        (["train", "--nproc", "3", "--n-test", "5", "--noise", "0.1"], ["train", "--n-test", "5", "--noise", "0.1"]),
    ],
)
def test_workers_get_no_nproc_but_the_resolved_config(argv, expected, tmp_path, monkeypatch):
    """torchrun reads the script's arguments too: --nproc would be an ambiguous --nproc-per-node to it. The
    workers get only a job file, whose config is the one the command line without --nproc resolves to."""
    import json

    import minidl.cli.train as cli_train
    from minidl.cli.main import main

    jobs = []

    def launch(n, worker_argv, **kwargs):
        path = worker_argv[worker_argv.index("--worker-job") + 1]
        jobs.append((worker_argv[: worker_argv.index("--worker-job")], json.loads(Path(path).read_text())["config"]))
        return 0

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(cli_train, "launch", launch)
    monkeypatch.setattr(cli_train, "parallel_device", lambda *a: None)
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    ((worker_argv, config),) = jobs
    assert not any(a.startswith("--npr") for a in worker_argv)
    assert worker_argv == [a for a in expected if a in ("--debug", "train")]
    flags = [a for a in expected if a not in ("--debug", "train")]
    alone = cli_train.config_from_args(_parse(["train", *flags]))
    assert {**config, "nproc": 1} == {**alone, "nproc": 1} and config["nproc"] > 1


def _parse(argv):
    from minidl.cli.main import build_parser

    return build_parser().parse_args(argv)


def test_launch_rejects_a_bad_nproc():
    with pytest.raises(ConfigError, match="--nproc must be a positive integer, got 0"):
        launch(0, [])


def test_run_process_group_propagates_the_exit_code():
    assert run_process_group([sys.executable, "-c", "raise SystemExit(3)"]) == 3


# a stand-in for torchrun: it ignores SIGTERM, and starts two "workers" in sessions of their own that
# ignore SIGTERM too (torchrun's workers run with start_new_session=True, out of reach of its group)
FAKE_TORCHRUN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
children = [subprocess.Popen(worker, start_new_session=True) for _ in range(2)]
with open(sys.argv[1], "w") as f:
    f.write(" ".join(str(p) for p in [__import__("os").getpid(), *(c.pid for c in children)]))
time.sleep(60)
"""


def test_run_process_group_kills_workers_in_other_sessions_on_timeout(tmp_path):
    pids_file = tmp_path / "pids"
    start = time.monotonic()
    code = run_process_group([sys.executable, "-c", FAKE_TORCHRUN, str(pids_file)], timeout=3, grace=1)
    assert code == 124 and time.monotonic() - start < 15
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 3, "the stand-in did not start its workers before the timeout"
    _assert_gone(pids)


def test_run_process_group_kills_the_whole_group_on_timeout(tmp_path):
    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $$ $! > {pids}; wait"  # a shell and its child, in one process group
    start = time.monotonic()
    assert run_process_group(["/bin/sh", "-c", script], timeout=2, grace=1) == 124
    assert time.monotonic() - start < 10
    _assert_gone([int(p) for p in pids.read_text().split()])


def test_descendants_finds_grandchildren_in_other_sessions(tmp_path):
    pids_file = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, "-c", FAKE_TORCHRUN, str(pids_file)], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (pids_file.exists() and len(pids_file.read_text().split()) == 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        parent, *workers = (int(p) for p in pids_file.read_text().split())
        assert parent == proc.pid and set(workers) <= set(descendants(os.getpid()))
        assert set(descendants(proc.pid)) >= set(workers) and os.getpid() not in descendants(proc.pid)
    finally:  # the stand-in and the workers it started: all started by this test
        started = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else [proc.pid]
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    _assert_gone([int(p) for p in pids_file.read_text().split()])


def _assert_gone(pids: list[int], wait: float = 5.0) -> None:
    for pid in pids:
        deadline = time.monotonic() + wait  # a killed process that init has not reaped yet may linger a moment
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(pid), f"process {pid} survived"


def test_is_alive():
    assert is_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not is_alive(proc.pid)
