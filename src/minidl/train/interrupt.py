"""Stopping cleanly on Ctrl-C (SIGINT) or SIGTERM: the signal sets a flag, the trainer stops at a step boundary.

``with stop_on_signals(trainer.interrupt): trainer.fit(...)``: the handler only records the signal; after
the step in progress, the trainer writes a checkpoint (if it has a ``Checkpointer``) and raises
``TrainingInterrupted``, whose ``exit_code`` is the shell's 128 + signal (130 for SIGINT, 143 for SIGTERM).
A second signal raises ``KeyboardInterrupt`` at once (a checkpoint being written stays whole: writes are
atomic). The previous handlers come back when the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from minidl.errors import MinidlError

SIGNALS = (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else []))


class StopRequest:
    """``signum`` is 0 until a signal asks training to stop; the trainer reads it once per step."""

    def __init__(self) -> None:
        self.signum = 0


class TrainingInterrupted(MinidlError):
    """Training stopped on a signal at a step boundary; ``checkpoint`` is where its state was saved."""

    def __init__(self, signum: int, epoch: int, step: int | None, steps: int, checkpoint: Path | None) -> None:
        self.signum, self.epoch, self.step, self.checkpoint = signum, epoch, step, checkpoint
        self.exit_code = 128 + signum
        where = f"after epoch {epoch}" if step is None else f"at epoch {epoch}, step {step} of {steps}"
        saved = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint saved"
        super().__init__(f"interrupted by {signal.Signals(signum).name} {where}; {saved}")


@contextlib.contextmanager
def stop_on_signals(request: StopRequest) -> Iterator[StopRequest]:
    """Within the block, SIGINT, SIGTERM and SIGHUP (taken as SIGTERM) set ``request.signum`` instead of
    stopping the process.

    Only the main thread can install handlers: elsewhere the block changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: object) -> None:
        if request.signum:  # asked twice: stop now
            raise KeyboardInterrupt
        request.signum = signal.SIGTERM if signum == getattr(signal, "SIGHUP", None) else signum  # a hangup: SIGTERM

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
