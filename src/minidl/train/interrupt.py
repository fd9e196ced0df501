"""Stopping cleanly on Ctrl-C (SIGINT), SIGTERM or SIGHUP (taken as SIGTERM): the signal sets
``trainer.stop_training``; the loop stops at the next step boundary, a checkpointing callback saves there, and
``StopOnSignal`` raises ``TrainingInterrupted``.

``stop = StopOnSignal(); with stop_on_signals(stop): trainer.fit(..., callbacks=[..., checkpointer, stop])``:
the handler only records the signal. ``TrainingInterrupted.exit_code`` is the shell's 128 + signal (130 for
SIGINT, 143 for SIGTERM). A second signal raises ``KeyboardInterrupt`` at once (a checkpoint being written
stays whole: writes are atomic). The previous handlers come back when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from minidl.errors import MinidlError
from minidl.train.callbacks import Callback, TrainerView

SIGNALS = (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))


class TrainingInterrupted(MinidlError):
    """Training stopped on a signal at a step boundary; ``checkpoint`` is where its state was saved."""

    def __init__(self, signum: int, epoch: int, step: int | None, steps: int, checkpoint: Path | None) -> None:
        self.signum, self.epoch, self.step, self.checkpoint = signum, epoch, step, checkpoint
        self.exit_code = 128 + signum
        where = f"after epoch {epoch}" if step is None else f"at epoch {epoch}, step {step} of {steps}"
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint saved"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}; {saved}")


class StopOnSignal(Callback):
    """``request(signum)`` stops training at the next step boundary; at the end it raises ``TrainingInterrupted``.

    Put it last among the callbacks, after the checkpointing one, whose checkpoint it names.
    """

    def __init__(self) -> None:
        self.signum = 0  # 0 until a signal asks training to stop
        self.trainer: TrainerView | None = None

    def request(self, signum: int) -> None:
        self.signum = signum
        if self.trainer is not None:
            self.trainer.stop_training = True

    def on_fit_begin(self, trainer: TrainerView) -> None:
        self.trainer = trainer
        if self.signum:
            trainer.stop_training = True

    def on_fit_end(self, trainer: TrainerView) -> None:
        if not self.signum:
            return
        loop = trainer.loop
        epoch, step = (loop.epoch, loop.step) if loop.in_epoch else (loop.epochs_done, None)
        raise TrainingInterrupted(self.signum, epoch, step, loop.steps_per_epoch, trainer.last_checkpoint)


@contextlib.contextmanager
def stop_on_signals(stop: StopOnSignal) -> Iterator[StopOnSignal]:
    """Within the block, SIGINT, SIGTERM and SIGHUP (taken as SIGTERM) call ``stop.request`` instead of
    stopping the process.

    Only the main thread can install handlers: elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop.signum:  # asked twice: stop now
            raise KeyboardInterrupt
        stop.request(signal.SIGTERM if signum == getattr(signal, "SIGHUP", None) else signum)  # a hangup: SIGTERM

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
