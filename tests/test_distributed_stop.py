"""A signal under data parallelism, in the redesigned loop: ``AgreedStop`` and ``DistributedTrainer``'s overrides.

This file run as a module under torchrun (2 gloo processes) is the job. A request reaches rank 0 alone
(what the handler does) in the middle of epoch 2; the ranks agree on it and both stop after the same step;
rank 0's ``Checkpointer`` saves there, with the loss sum of every rank (``DistributedTrainer.end_fit``).
Every rank then resumes from that file (``resume``: rank 0 alone carries the sum) and trains to the end:
the weights are bitwise those of an uninterrupted run, and the stopped epoch's loss is its loss (up to the
order of the additions); with rank 0's own sum only, it would be off by rank 1's share.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import torch

import minidl.nn as mnn
from minidl.distributed import init_from_env
from minidl.distributed.launch import launch
from minidl.distributed.stop import AgreedStop
from minidl.distributed.trainer import DistributedTrainer
from minidl.persist.checkpoint import load_checkpoint
from minidl.train import Callback
from minidl.train.checkpointer import Checkpointer
from minidl.train.interrupt import TrainingInterrupted
from minidl.train.state import restore_state
from tests.test_distributed import EPOCHS, ROOT, build, problem

CONFIG, BATCH, SEED = "sgd", 20, 11  # 103 rows: 6 steps per epoch, the last one split 2/1
REQUEST_AT = 8  # global step after which rank 0 alone "gets the signal": epoch 2, step 2


class SignalOnRank0(Callback):
    """Calls ``stop.request(SIGTERM)`` after global step ``at``, as rank 0's signal handler would."""

    step_every = 1

    def __init__(self, stop: AgreedStop, at: int) -> None:
        self.stop, self.at, self.done = stop, at, 0

    def on_steps(self, steps: int) -> None:
        self.done += steps  # the loop's own counters are written back only when it pauses
        if self.done == self.at:
            self.stop.request(signal.SIGTERM)


def fit(ctx, callbacks=(), start=None):
    model, optimizer = build(CONFIG, seed=ctx.rank)  # rank 1's weights are overwritten by rank 0's
    x, y = problem()
    trainer = DistributedTrainer(model, mnn.MSELoss(), optimizer, context=ctx, callbacks=callbacks)
    with torch.no_grad():
        if start is not None:
            start = restore_state(trainer, load_checkpoint(start))
        trainer.fit(x, y, epochs=EPOCHS, batch_size=BATCH, seed=SEED, start=start)
    return trainer, model


def _worker(out: str) -> None:
    import torch.distributed as dist

    folder = Path(out)
    with init_from_env("cpu", timeout=60) as ctx:
        whole, whole_model = fit(ctx)
        stop = AgreedStop(ctx.rank, interval=0.0)  # an agreement after every step: the stop step is known
        callbacks = [SignalOnRank0(stop, REQUEST_AT)] if ctx.is_main else []
        callbacks += [Checkpointer(folder / "run", every=0)] if ctx.is_main else []
        try:
            fit(ctx, [*callbacks, stop])
            stopped = None
        except TrainingInterrupted as error:
            stopped = (error.epoch, error.step, error.signum)
        dist.barrier()  # rank 0's checkpoint is written
        (path,) = sorted((folder / "run" / "checkpoints").iterdir())
        resumed, resumed_model = fit(ctx, start=path)
        a, b = whole_model.state_dict(), resumed_model.state_dict()
        same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        result = {
            "stopped": stopped,
            "pending": stop.pending,
            "whole": [r.loss for r in whole.history],
            "resumed": [r.loss for r in resumed.history],
            "same_weights": same,
        }
        (folder / f"rank{ctx.rank}.json").write_text(json.dumps(result))


def test_a_signal_to_rank_0_stops_both_ranks_after_one_step_and_resumes_with_every_ranks_loss(tmp_path):
    code = launch(2, [str(tmp_path)], module="tests.test_distributed_stop", timeout=120, cwd=ROOT)
    assert code == 0, f"torchrun exited with {code}"
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    steps = 6
    where = [(REQUEST_AT - 1) // steps + 1, (REQUEST_AT - 1) % steps + 1, int(signal.SIGTERM)]
    assert rank0["stopped"] == rank1["stopped"] == where  # both, after the step the request came in
    assert (rank0["pending"], rank1["pending"]) == (int(signal.SIGTERM), 0)  # rank 1 was never signalled
    for rank in (rank0, rank1):
        assert rank["same_weights"] is True
        assert len(rank["resumed"]) == len(rank["whole"]) == EPOCHS
        assert rank["resumed"][0] == rank["whole"][0]  # from the checkpoint's history
        # the stopped epoch's loss: the checkpoint held both ranks' sums, counted once on resume (rank 0's
        # alone would be off by rank 1's share of 2 steps, a share counted twice by as much)
        for got, want in zip(rank["resumed"][1:], rank["whole"][1:], strict=True):
            assert abs(got - want) <= 1e-12 * abs(want), (got, want)


if __name__ == "__main__":
    _worker(sys.argv[1])
