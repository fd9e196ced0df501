"""A trainer's whole state as a ``Checkpoint``, and back: what exact resume needs, and nothing else.

``capture_state(trainer, epoch, step, loss_sum, loader_state)`` takes the model's and the optimizer's
state, the scheduler's, the RNG states (torch's global one, the data loader's, the layers' own generators),
the state of the callbacks that have one (``metadata["callbacks"]``) and where training stands::

    metadata = {"epoch": 3, "step": None}                    # epoch 3 is done: resume at epoch 4
    metadata = {"epoch": 4, "step": 37, "loss_sum": tensor}  # 37 batches of epoch 4 are done

Mid-epoch, ``rng/loader`` is the loader's state from *before* the epoch's permutation: resuming draws
the same permutation again and skips the 37 batches without computing them, and ``loss_sum`` (the
weighted sum of their losses) continues the epoch's loss exactly. ``restore_state`` loads all of it
into a freshly built trainer and returns the ``FitStart`` that ``Trainer.fit(start=...)`` continues from
(``Trainer.resume``, which also loads the callbacks' states).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from minidl.checks import is_int
from minidl.errors import CheckpointError
from minidl.persist.checkpoint import Checkpoint
from minidl.persist.rng import CUDA, GLOBAL, capture_rng_states, module_generators
from minidl.train.evaluation import EpochResult

if TYPE_CHECKING:
    from minidl.train.callbacks import TrainerView

LOADER = "loader"


@dataclass
class FitStart:
    """Where ``fit`` begins: ``step`` batches of ``epoch`` (from 1) already done, their loss sum, RNG states.

    The default is a fresh start. ``rng_states`` (when given) are restored when ``fit`` begins.
    """

    epoch: int = 1
    step: int = 0
    loss_sum: torch.Tensor | None = None
    rng_states: dict[str, torch.Tensor] = field(default_factory=dict)
    callback_states: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        return self.epoch - 1


def capture_state(
    trainer: TrainerView,
    epoch: int,
    step: int | None,
    loss_sum: torch.Tensor | None,
    loader_state: torch.Tensor,
) -> Checkpoint:
    """The trainer's state after ``step`` batches of ``epoch`` (``step=None``: after the whole epoch).

    Every tensor is a copy, so training may go on while (or instead of) it is saved.
    """
    rng = capture_rng_states(module_generators(trainer.model))
    rng[LOADER] = loader_state.clone()
    metadata: dict[str, Any] = {"epoch": epoch, "step": step}
    if step is not None:
        metadata["loss_sum"] = loss_sum.detach().clone()
    callbacks = trainer.callback_states()
    if callbacks:
        metadata["callbacks"] = copy.deepcopy(callbacks)  # their tensors too: training goes on
    return Checkpoint(
        model_state={name: t.detach().clone() for name, t in trainer.model.state_dict().items()},
        optimizer_state=trainer.optimizer.state_dict(),
        scheduler_state=None if trainer.scheduler is None else trainer.scheduler.state_dict(),
        rng_states=rng,
        metadata=metadata,
    )


def fit_start(checkpoint: Checkpoint) -> FitStart:
    """Where the run continues after ``checkpoint``; malformed progress metadata is a ``CheckpointError``."""
    meta = checkpoint.metadata
    epoch, step = meta.get("epoch"), meta.get("step")
    mid_epoch_ok = step is None or (is_int(step) and step >= 0 and is_int(epoch) and epoch >= 1)
    if not is_int(epoch) or epoch < 0 or not mid_epoch_ok:
        raise CheckpointError(f"invalid training progress: epoch {epoch!r:.40}, step {step!r:.40}")
    callbacks = meta.get("callbacks", {})
    if not isinstance(callbacks, dict) or not all(isinstance(v, dict) for v in callbacks.values()):
        raise CheckpointError("its callback states are not a mapping of names to states")
    if step is None:
        return FitStart(epoch + 1, 0, None, dict(checkpoint.rng_states), callbacks)
    loss_sum = meta.get("loss_sum")
    if not isinstance(loss_sum, torch.Tensor) or loss_sum.dim() != 0 or not loss_sum.is_floating_point():
        raise CheckpointError("a mid-epoch checkpoint needs the epoch's loss sum as a 0-d float tensor")
    return FitStart(epoch, step, loss_sum, dict(checkpoint.rng_states), callbacks)


def restore_state(trainer: TrainerView, checkpoint: Checkpoint) -> FitStart:
    """Load ``checkpoint`` into ``trainer`` (model, optimizer, scheduler, history) and say where to go on.

    Everything is checked before the trainer changes: a checkpoint that does not fit (another
    architecture, another optimizer or scheduler, other generators) raises and leaves it as it was.
    Errors are ``MinidlError``s (``StateDictError``, ``CheckpointError``, ``ConfigError``).
    """
    start = fit_start(checkpoint)
    model, optimizer, scheduler = trainer.model, trainer.optimizer, trainer.scheduler
    _check_rng(checkpoint.rng_states, module_generators(model))
    if checkpoint.optimizer_state is None:
        raise CheckpointError("no optimizer state")
    if (checkpoint.scheduler_state is None) != (scheduler is None):
        have = "a scheduler" if scheduler is not None else "no scheduler"
        raise CheckpointError(f"the run has {have}, the checkpoint {'does not' if scheduler else 'has one'}")
    history = _history(checkpoint.metadata, start) if "history" in checkpoint.metadata else None
    before = (
        {name: t.clone() for name, t in model.state_dict().items()},
        optimizer.state_dict(),
        scheduler.state_dict() if scheduler is not None else None,
    )
    try:
        model.load_state_dict(checkpoint.model_state)
        optimizer.load_state_dict(checkpoint.optimizer_state)
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint.scheduler_state)
    except BaseException:
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
        if scheduler is not None:
            scheduler.load_state_dict(before[2])
        raise
    if history is not None:
        trainer.history = history
    return start


def _check_rng(states: dict[str, torch.Tensor], generators: dict[str, torch.Generator]) -> None:
    """The names of the checkpoint's RNG states match this run's, and each CPU state is a valid one."""
    expected = {GLOBAL, LOADER, *generators}
    found = {name for name in states if not name.startswith(CUDA)}
    if found != expected:
        raise CheckpointError(
            f"its RNG states ({', '.join(sorted(found))}) do not match this run's ({', '.join(sorted(expected))})"
        )
    for name in found:
        try:  # a CPU generator's state has the same layout as torch's global CPU state
            torch.Generator().set_state(states[name])
        except (RuntimeError, TypeError, ValueError) as error:
            raise CheckpointError(f"its RNG state {name!r} is invalid: {error}") from None


def _history(metadata: dict[str, Any], start: FitStart) -> list:

    records = metadata["history"]
    names = {f.name for f in dataclasses.fields(EpochResult)}
    if not isinstance(records, list) or not all(isinstance(r, dict) and set(r) == names for r in records):
        raise CheckpointError("its training history is not a list of epoch records")
    if [r["epoch"] for r in records] != list(range(1, start.epochs_done + 1)):
        raise CheckpointError(f"its training history does not list epochs 1 to {start.epochs_done}")
    return [EpochResult(**record) for record in records]
