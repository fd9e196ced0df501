"""Stopping a data-parallel run on a signal: every rank stops after the same step, with one checkpoint.

A signal reaches the ranks at different moments, but the ranks must leave the training loop together
(a rank that stops while another waits in the next all-reduce would hang it). So ``AgreedStop``, the
``StopOnSignal`` callback of a data-parallel run, only records the handler's request (``pending``), and
the ranks agree on it in a collective: rank 0's pending signal is all-reduced, and ``signum`` (with
``trainer.stop_training``) changes on every rank after the same step. Rank 0 decides, so a signal to
rank 0 alone is enough (the ``--nproc`` launcher forwards SIGINT and SIGTERM to every worker; torchrun
sends SIGTERM to every worker).

An agreement is one more small all-reduce; on a loaded 2-core machine it costs about half a step of a
tiny model, so the ranks agree only about every ``interval`` seconds of training: the agreement is a step
event (``on_steps``) whose rate ``step_every`` rank 0 measures and sends along with the signal. A stop
comes at most that long after the signal, and costs one collective per ``interval``, not one per step.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from minidl.train.interrupt import StopOnSignal


class AgreedStop(StopOnSignal):
    """``StopOnSignal`` for one rank: ``request`` (the handler) sets ``pending``; ``signum`` is what the ranks agreed.

    Give it to every rank's ``fit`` (``with stop_on_signals(stop): trainer.fit(..., callbacks=[..., stop])``).
    """

    def __init__(self, rank: int, interval: float = 0.05) -> None:
        super().__init__()
        self.rank, self.interval = rank, interval
        self.pending = 0
        self.step_every = 1  # steps until the next agreement (the same on every rank: rank 0 sends it)
        self._left, self._steps, self._since = 1, 1, time.perf_counter()

    def request(self, signum: int) -> None:
        """What the signal handler calls: a request, not yet agreed."""
        self.pending = signum

    def on_steps(self, steps: int) -> None:
        """Every rank, after the same steps (the gradient all-reduce done): agrees when the countdown is over.

        An epoch's end reports its last few steps early: the countdown goes on into the next epoch.
        """
        self._left -= steps
        if self._left > 0:
            self.step_every = self._left
            return
        if not (dist.is_available() and dist.is_initialized()):  # one process: nothing to agree about
            self._left = self.step_every = 1
            if self.pending and not self.signum:
                super().request(self.pending)
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
        if signum and not self.signum:
            super().request(signum)  # every rank, after this same step: trainer.stop_training
        self._left = self.step_every = self._steps = steps
        self._since = now
