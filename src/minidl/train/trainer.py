"""Trainer: the loop that ties a model, a loss and an optimizer together (Keras-style ``fit``).

``fit`` is ``start`` (set up the loop) and ``run`` (advance it to the end). ``run(steps=n)`` or
``run(epochs=k)`` advances it a piece at a time, so a caller can read the weights or change the learning
rate between pieces; the pieces together are the same run, bit for bit. Everything that is not the
algorithm (progress, logs, checkpoints, signals, the divergence guard, the LR schedule) is a callback
(``minidl.train.callbacks``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from minidl.data.loader import DataLoader
from minidl.errors import CheckpointError, ConfigError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.optim.optimizer import Optimizer
from minidl.persist.rng import module_generators, restore_rng_states
from minidl.train.callbacks import Callback, CallbackList
from minidl.train.divergence import DivergenceGuard
from minidl.train.evaluation import EpochResult, Evaluation, eval_mode, evaluate_model
from minidl.train.loop import Loop, check_run, run_compiled_epoch
from minidl.train.schedule import LRSchedule
from minidl.train.state import LOADER, FitStart
from minidl.train.task import Task
from minidl.train.verbose import Verbose


class Trainer:
    """``Trainer(model, loss, optimizer).fit(x, y, epochs=..., batch_size=...)``.

    ``y`` holds integer class labels (classification) or floating targets (regression); the trainer
    turns labels into whatever the loss expects (a 0/1 column, one-hot rows or class indices). A
    ``scheduler`` steps once per epoch (``LRSchedule``: with the validation loss, or the training loss
    without validation data, if it watches a metric). ``callbacks`` are ``Callback`` objects or functions
    of an ``EpochResult``; they run after the trainer's own two, the divergence guard and the schedule.
    """

    def __init__(
        self,
        model: Module,
        loss_fn: Loss,
        optimizer: Optimizer,
        *,
        task: Task | None = None,
        callbacks: Sequence[Callback | Callable[[EpochResult], None]] = (),
        scheduler: Any = None,
        compile: bool = False,
    ) -> None:
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.task, self.scheduler, self.compile = task, scheduler, compile  # compile: see minidl.train.compiled
        self.callbacks, self.history = list(callbacks), []  # history: the EpochResults so far
        self.stop_training = False  # a callback (or a signal handler) sets it; the loop stops at a step boundary
        self.last_checkpoint: Any = None  # the newest checkpoint of this run (a checkpointing callback sets it)
        self.loop: Loop | None = None

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        epochs: int,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: FitStart | None = None,
        verbose: int = 0,
    ) -> list[EpochResult]:
        """Train epochs ``start.epoch`` to ``epochs``; ``start`` (``state.restore_state``) resumes a checkpoint.

        ``verbose`` (Keras' values; default 0): 0 nothing, 1 a progress bar per epoch (``tqdm.auto``), 2 a line each.
        A resumed run is bit for bit the run that was never stopped: the same batches (the loader's RNG),
        dropout masks (torch's and the layers' RNGs), lrs, optimizer and callback state. A non-finite loss
        or weight raises ``DivergenceError`` naming the step and layer (``divergence``).
        """
        self.start(
            x, y, batch_size=batch_size, shuffle=shuffle, seed=seed, validation_data=validation_data, epochs=epochs
        )
        self._callbacks.callbacks.extend([Verbose(verbose)] if verbose else [])  # for this fit only
        if start is not None:
            self.resume(start)
        self.run()
        return self.history

    def start(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        validation_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        epochs: int | None = None,
    ) -> Loop:
        """Set up the loop over ``(x, y)`` (``epochs=None``: no end); ``run`` then advances it."""
        loader = DataLoader(x, self._targets(y, x.dtype), batch_size, shuffle=shuffle, seed=seed)
        self.loop = Loop(loader, x, y, validation_data, epochs)
        self.stop_training = False
        self._callbacks = CallbackList([DivergenceGuard(), *LRSchedule.of(self.scheduler), *self.callbacks])
        self._begun, self._resume_rng = False, {}
        return self.loop

    def resume(self, start: FitStart) -> None:
        """Continue from a checkpoint restored with ``state.restore_state``: its step, loss sum, RNGs, callbacks."""
        loop = self.loop
        if start.step >= loop.steps_per_epoch:
            raise CheckpointError(f"cannot resume at step {start.step} of an epoch of {loop.steps_per_epoch} steps")
        loop.epoch, loop.step, loop.loss_sum = start.epoch, start.step, start.loss_sum
        self._resume_rng = start.rng_states
        self._callbacks.load_state_dict(start.callback_states)

    def run(self, steps: int | None = None, *, epochs: int | None = None) -> int:
        """Advance ``steps`` optimizer steps, or to the end of ``epochs`` more epochs, or (neither) to the end.

        Epoch boundaries on the way fire their events as in ``fit``. Returns the steps done: fewer than
        asked when training finished or a callback set ``stop_training``; then ``on_fit_end`` fires.
        """
        loop = check_run(self.loop, steps, epochs)
        last_epoch = None if epochs is None else loop.epoch + epochs - 1
        first = loop.global_step
        if not self._begun:
            self._begin_fit()
        while not (loop.finished or self.stop_training):
            if steps is not None and loop.global_step - first >= steps:
                break
            if not loop.in_epoch:
                self._begin_epoch()
            left = loop.steps_per_epoch - loop.step
            self._advance(left if steps is None else min(left, steps - (loop.global_step - first)))
            if loop.step == loop.steps_per_epoch:
                self._end_epoch()
            if last_epoch is not None and loop.epoch > last_epoch:
                break
        if (loop.finished or self.stop_training) and not loop.ended:
            self.end_fit()
        return loop.global_step - first

    def _begin_fit(self) -> None:
        self._begun = True
        if self._resume_rng:
            restore_rng_states(self._resume_rng, {LOADER: self.loop.loader.generator, **module_generators(self.model)})
        self._callbacks.on_fit_begin(self)

    def _begin_epoch(self) -> None:
        loop = self.loop
        loop.began = time.perf_counter()
        total = torch.zeros((), dtype=loop.x.dtype, device=loop.x.device)
        loop.loss_sum = total.copy_(loop.loss_sum) if loop.step else total
        loop.loader_state = loop.loader.generator.get_state()  # before this epoch's permutation
        loop.lr = self.optimizer.param_groups[0]["lr"]
        self._due = self._callbacks.on_epoch_begin(loop.epoch, loop.steps_per_epoch - loop.step, loop.step)
        self.model.train()
        batches = iter(loop.loader)
        loop.batches = itertools.islice(batches, loop.step, None) if loop.step else batches

    def _advance(self, n: int) -> None:
        """The hot loop: ``n`` steps of the epoch in progress, unless a callback stops training first."""
        if self.compile and run_compiled_epoch(self, n):  # all of the epoch, compiled (minidl.train.compiled)
            return
        loop, train_step, callbacks = self.loop, self.train_step, self._callbacks
        total, step, due = loop.loss_sum, loop.step, self._due
        for xb, tb in itertools.islice(loop.batches, n):
            value, weight = train_step(xb, tb)
            total.add_(value, alpha=weight)
            step += 1
            if step == due:
                due = callbacks.on_steps(step)
            if self.stop_training:
                break
        loop.step, self._due = step, due

    def _end_epoch(self) -> None:
        loop, callbacks = self.loop, self._callbacks
        callbacks.flush_steps(loop.step)
        loss = self.epoch_loss(loop.loss_sum, len(loop.x))
        callbacks.on_epoch_trained(loop.epoch, loss)
        train = self.evaluate(loop.x, loop.y)
        val = self.evaluate(*loop.validation_data) if loop.validation_data is not None else None
        loop.evaluations = {"train": train, "val": val}
        seconds = time.perf_counter() - loop.began
        val_metrics = (val.loss, val.accuracy) if val is not None else (None, None)
        result = EpochResult(loop.epoch, loss, train.accuracy, loop.lr, seconds, *val_metrics)
        self.history.append(result)
        loop.epoch, loop.step, loop.batches = loop.epoch + 1, 0, None
        callbacks.on_epoch_end(result)

    def _gone(self, value: Any = None) -> None:
        raise ConfigError(
            "Trainer.checkpointer and Trainer.interrupt are gone: pass Checkpointer(...) and StopOnSignal() "
            "in callbacks=[...] (minidl.train), so that nothing set here is silently ignored"
        )

    checkpointer = interrupt = property(_gone, _gone)

    def callback_states(self) -> dict[str, dict[str, Any]]:
        """``{state_key: state}`` of the callbacks that have state (what a checkpoint saves of them)."""
        return self._callbacks.state_dict() if self.loop is not None else {}

    # -- what a subclass overrides (DistributedTrainer) ----------------------------------------------
    def end_fit(self) -> None:
        """Training finished or stopped (perhaps mid-epoch): ``on_fit_end``, once."""
        self.loop.ended = True
        self._callbacks.on_fit_end(self)

    def train_step(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]:
        """One optimizer step on a batch: the batch's loss and its weight in the epoch's sum.

        The loss stays a tensor (no ``.item()``: no sync per step). It runs in inference mode (no autograd
        bookkeeping on any op: ~15 % of a small step); the optimizer makes its state outside it.
        """
        with torch.inference_mode():
            value, weight = self.gradients(xb, tb)
            self.optimizer.step()
        return value, weight

    def gradients(self, xb: torch.Tensor, tb: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The batch's loss and weight, with the parameters' gradients of it in their ``grad``."""
        value = self.loss_fn(self.model(xb), tb)
        self.optimizer.zero_grad()
        self.model.backward_parameters(self.loss_fn.backward())  # no gradient for the data: skipped
        return value, xb.shape[0]

    def epoch_loss(self, total: torch.Tensor, n: int) -> float:
        """The epoch's loss from the weighted sum of its batch losses over ``n`` samples."""
        return total.item() / n

    # -- using the model -----------------------------------------------------------------------------
    def _targets(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        self.task = self.task or Task.infer(y)
        width = y.shape[1] if y.dim() == 2 else 1
        return self.task.targets(y, self.loss_fn, self.task.out_features(self.loss_fn, width), dtype)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        """Loss and metrics over ``(x, y)`` in eval mode, in one batch."""
        self.task = self.task or Task.infer(y)
        return evaluate_model(self.model, self.loss_fn, self.task, x, y)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class labels (classification) or outputs (regression), in eval mode."""
        with eval_mode(self.model):
            output = self.model(x)
        return self.task.predict(output, self.loss_fn) if self.task is not None else output
