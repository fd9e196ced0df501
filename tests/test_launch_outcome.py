"""The launcher's one line names the worker whose death ended the run: the first failure torchrun saw,
not a lower rank that torchrun then stopped (with SIGTERM, and SIGKILL when it did not end)."""

from __future__ import annotations

import signal

from minidl.distributed.supervise import _outcome


def failure(rank: int, pid: int, exitcode: int) -> dict:
    return {"rank": rank, "pid": pid, "exitcode": exitcode}


def test_the_first_death_is_named_even_when_torchrun_sigkilled_a_lower_rank(tmp_path):
    seen = [failure(1, 202, -signal.SIGKILL), failure(0, 201, -signal.SIGKILL)]  # torchrun's order
    line, code = _outcome(1, 0, {f["rank"]: f for f in seen}, {}, tmp_path)
    assert (line, code) == ("error: worker rank 1 (PID 202) was killed by SIGKILL; the run stopped", 1)


def test_a_worker_stopped_with_sigterm_is_not_the_cause(tmp_path):
    seen = [failure(0, 201, -signal.SIGTERM), failure(1, 202, -signal.SIGSEGV)]
    line, _ = _outcome(1, 0, {f["rank"]: f for f in seen}, {}, tmp_path)
    assert line.startswith("error: worker rank 1 (PID 202) was killed by SIGSEGV")


def test_the_agent_reports_failures_in_the_order_torchrun_saw_them(tmp_path, monkeypatch):
    import json

    import torch.distributed.run
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    from minidl.distributed import agent
    from minidl.distributed.launch import LAUNCHER_ENV, REPORT_ENV

    seen = {1: ProcessFailure(1, 202, -9, str(tmp_path / "e1")), 0: ProcessFailure(0, 201, -9, str(tmp_path / "e0"))}

    def run(args):
        raise ChildFailedError("minidl", seen)

    monkeypatch.setattr(agent, "die_with_parent", lambda *args: None)  # no PR_SET_PDEATHSIG on the test process
    monkeypatch.setattr(torch.distributed.run, "run", run)
    monkeypatch.setattr(torch.distributed.run, "parse_args", lambda argv: argv)
    monkeypatch.setenv(REPORT_ENV, str(tmp_path / "report.json"))
    monkeypatch.delenv(LAUNCHER_ENV, raising=False)
    assert agent.main([]) == 1
    assert [f["rank"] for f in json.loads((tmp_path / "report.json").read_text())] == [1, 0]
