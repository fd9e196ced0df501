"""Stopping a data-parallel run on a signal: every rank stops after the same step, with one checkpoint.

A signal reaches the ranks at different moments, but the ranks must leave the training loop together
(a rank that stops while another waits in the next all-reduce would hang it). So under torch.distributed
the signal handler only records the request (``pending``), and the ranks agree on it in a collective:
rank 0's pending signal is all-reduced, and ``signum``, which the trainer reads at each step boundary,
changes on every rank after the same step. Rank 0 decides, so a signal to rank 0 alone is enough (the
``--nproc`` launcher forwards SIGINT and SIGTERM to every worker; torchrun sends SIGTERM to every worker).

An agreement is one more small all-reduce; on a loaded 2-core machine it costs about half a step of a
tiny model, so the ranks agree only about every ``interval`` seconds of training (rank 0 measures and
sends the number of steps until the next agreement along with the signal): a stop comes at most that
long after the signal, and costs one collective per ``interval``, not one per step.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from minidl.train.interrupt import StopRequest


class AgreedStop(StopRequest):
    """The ``StopRequest`` of a rank: the handler writes ``pending``; ``signum`` is what the ranks agreed."""

    def __init__(self, rank: int, interval: float = 0.05) -> None:
        self.rank, self.interval = rank, interval
        self.pending, self._agreed = 0, 0
        self._countdown, self._steps, self._since = 1, 1, time.perf_counter()

    @property
    def signum(self) -> int:  # type: ignore[override]
        return self._agreed

    @signum.setter
    def signum(self, value: int) -> None:  # what stop_on_signals' handler writes: a request, not yet agreed
        self.pending = value

    def after_step(self) -> None:
        """Call once per optimizer step on every rank (after the gradient all-reduce): agrees when due."""
        self._countdown -= 1
        if self._countdown > 0 or not (dist.is_available() and dist.is_initialized()):
            return
        now = time.perf_counter()
        message = torch.zeros(2, dtype=torch.float64)
        if self.rank == 0:  # rank 0's request, and the steps until the next agreement (from its step time)
            steps = max(1, min(1000, int(self.interval / max(now - self._since, 1e-9) * self._steps)))
            message[0], message[1] = float(self.pending), float(steps)
        if dist.get_backend() == "nccl":
            message = message.to(torch.device("cuda", torch.cuda.current_device()))
        dist.all_reduce(message, op=dist.ReduceOp.SUM)
        signum, steps = (int(v) for v in message.tolist())
        if signum and not self._agreed:
            self._agreed = signum
        self._countdown, self._since, self._steps = steps, now, steps
