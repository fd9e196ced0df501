"""Callbacks: the concerns of training (progress, logs, checkpoints, signals, the divergence guard, the LR
schedule) plugged into the loop at named moments, so that the loop itself stays the algorithm.

The moments, in order (``docs/architecture.md`` has the picture)::

    on_fit_begin(trainer)             once, when ``Trainer.start`` has set up the loop
      on_epoch_begin(epoch, steps)    an epoch starts; ``steps`` optimizer steps are left in it
        on_steps(steps)               every ``step_every`` steps (each callback at its own rate), and at
                                      the end of the epoch for the steps since the last call
      on_epoch_trained(epoch, loss)   the epoch's steps are done, before it is measured (the guard's moment)
      on_epoch_end(result)            the epoch is measured and recorded in ``trainer.history``
    on_fit_end(trainer)               training finished, or stopped (``trainer.stop_training``)

A plain function ``f(result)`` is called at the end of every epoch. A callback stops training by setting
``trainer.stop_training = True``; the loop returns at the next step boundary. A callback with state gives
``state_dict()`` / ``load_state_dict()``: a checkpoint saves it under ``state_key`` and a resumed run
loads it back. Only callbacks with ``step_every > 0`` are called inside an epoch: the hot loop compares
one counter per step and calls nothing in between.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from minidl.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from minidl.nn.module import Module
    from minidl.optim.optimizer import Optimizer
    from minidl.train.evaluation import EpochResult
    from minidl.train.loop import Loop


class TrainerView(Protocol):
    """What callbacks (and the checkpoint state) read and set of the ``Trainer`` that calls them.

    A protocol rather than the class, so the modules the trainer imports need not import it back.
    """

    model: Module
    optimizer: Optimizer
    scheduler: Any
    loop: Loop | None
    history: list[EpochResult]
    stop_training: bool
    last_checkpoint: Any

    def callback_states(self) -> dict[str, dict[str, Any]]: ...

    def train_step(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]: ...


class Callback:
    """Override any of the hooks; ``step_every = 0`` means ``on_steps`` is never called."""

    step_every: int = 0

    def on_fit_begin(self, trainer: TrainerView) -> None:
        """Training starts (or resumes); ``trainer.loop`` says where."""

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        """Epoch ``epoch`` (from 1) starts and will take ``steps`` optimizer steps."""

    def on_steps(self, steps: int) -> None:
        """``steps`` more optimizer steps are done (called every ``step_every`` steps)."""

    def on_epoch_trained(self, epoch: int, loss: float) -> None:
        """The steps of ``epoch`` are done and ``loss`` is their mean; the epoch is not measured yet."""

    def on_epoch_end(self, result: EpochResult) -> None:
        """An epoch is done, measured and appended to ``trainer.history``."""

    def on_fit_end(self, trainer: TrainerView) -> None:
        """Training finished, or stopped early (``trainer.stop_training``), perhaps in the middle of an epoch."""

    @property
    def state_key(self) -> str:
        """The name of this callback's state in a checkpoint."""
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must hold to resume this callback exactly (nothing, by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def __call__(self, result: EpochResult) -> None:
        self.on_epoch_end(result)


class FunctionCallback(Callback):
    """A plain function of an ``EpochResult``, called at the end of every epoch."""

    def __init__(self, fn: Callable[[EpochResult], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, result: EpochResult) -> None:
        self.fn(result)


class CallbackList:
    """The callbacks of one run, called in order; it knows which want step events and when each is due."""

    def __init__(self, callbacks: Iterable[Callback | Callable[[EpochResult], None]]) -> None:
        self.callbacks = [c if isinstance(c, Callback) else FunctionCallback(c) for c in callbacks]
        keys = [c.state_key for c in self.callbacks if _has_state(c)]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ConfigError(f"two callbacks keep their state under the same state_key: {', '.join(twice)}")
        self._stepped: list[Callback] = []
        self._last: list[int] = []  # the step of each stepped callback's last call

    def on_fit_begin(self, trainer: TrainerView) -> None:
        for c in self.callbacks:
            c.on_fit_begin(trainer)

    def on_epoch_begin(self, epoch: int, steps: int, done: int) -> int:
        """Start the epoch (``done`` steps of it already trained); return the step of the first step event."""
        for c in self.callbacks:
            c.on_epoch_begin(epoch, steps)
        self._stepped = [c for c in self.callbacks if c.step_every > 0]  # read now: a callback may set its rate
        self._last = [done] * len(self._stepped)
        return self._next_due()

    def on_steps(self, step: int) -> int:
        """Call the callbacks due at ``step`` (of the epoch) with the steps since their last call; the next due."""
        for i, c in enumerate(self._stepped):
            if step - self._last[i] >= c.step_every:
                c.on_steps(step - self._last[i])
                self._last[i] = step
        return self._next_due()

    def flush_steps(self, step: int) -> None:
        """At the end of an epoch: every stepped callback hears about the steps since its last call."""
        for i, c in enumerate(self._stepped):
            if step > self._last[i]:
                c.on_steps(step - self._last[i])
                self._last[i] = step

    def _next_due(self) -> int:
        return min(
            (last + c.step_every for c, last in zip(self._stepped, self._last, strict=True)), default=sys.maxsize
        )

    def on_epoch_trained(self, epoch: int, loss: float) -> None:
        for c in self.callbacks:
            c.on_epoch_trained(epoch, loss)

    def on_epoch_end(self, result: EpochResult) -> None:
        for c in self.callbacks:
            c.on_epoch_end(result)

    def on_fit_end(self, trainer: TrainerView) -> None:
        for c in self.callbacks:
            c.on_fit_end(trainer)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        """``{state_key: state}`` of every callback that has state."""
        states = {c.state_key: c.state_dict() for c in self.callbacks}
        return {key: state for key, state in states.items() if state}

    def load_state_dict(self, states: dict[str, dict[str, Any]]) -> None:
        """Load each callback's state from ``states`` (a callback without an entry keeps its fresh state)."""
        for c in self.callbacks:
            if c.state_key in states:
                c.load_state_dict(states[c.state_key])


def _has_state(callback: Callback) -> bool:
    return type(callback).state_dict is not Callback.state_dict
