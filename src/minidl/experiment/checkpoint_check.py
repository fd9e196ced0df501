"""A checkpoint checked whole against the run it resumes, before anything changes (in memory or on disk).

``check_fits(experiment, checkpoint)`` is a dry run on copies. The checkpoint's model tensors must have
the run's names, shapes and dtypes. Its optimizer and scheduler states are compared with the states that
fresh copies of the run's own optimizer and scheduler make in one step: the same groups, every
hyperparameter there with a value of the same kind (a number, not the string ``"0.1"``), each
parameter's entries under the same names, tensors of the parameter's shape. Callback states may only
belong to the run's callbacks and must have the same keys and kinds as a fresh callback's (a table of
tensors, ``best_weights``, must match the model's). Then everything is loaded into the copies and they
take one step with zero gradients, as training would: whatever still does not fit fails there, on the
copies. Only then does ``Experiment.restore`` load the checkpoint into the run, and ``--resume`` touch its
folder. Every problem is one ``CheckpointError`` line naming the part of the checkpoint.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, Protocol

import torch

from minidl.errors import CheckpointError, MinidlError
from minidl.limits import short_repr
from minidl.persist.checkpoint import Checkpoint
from minidl.train.schedule import takes_metric
from minidl.train.state import fit_start, restore_state


class ExperimentView(Protocol):
    """What the check uses of ``experiment.Experiment`` (which imports this module)."""

    model: Any

    def build_optimizer(self, model: Any) -> Any: ...

    def build_scheduler(self, optimizer: Any) -> Any: ...

    def stateful_callbacks(self) -> list[Any]: ...


DRY_RUN_ERRORS = (MinidlError, TypeError, ValueError, RuntimeError, KeyError, IndexError, AttributeError)


def check_fits(experiment: ExperimentView, checkpoint: Checkpoint, callbacks: Sequence[Any] = ()) -> None:
    """Raise ``CheckpointError`` (without the file's name: the caller adds it) unless ``checkpoint`` fits.

    ``callbacks``: those the caller will give ``fit`` besides the experiment's own; a saved callback state
    must belong to one of them or to the experiment (early stopping).
    """
    model = copy.deepcopy(experiment.model)
    model.load_state_dict(checkpoint.model_state)  # names and shapes, every problem listed (StateDictError)
    _check_tensors("model", checkpoint.model_state, model.state_dict())  # and dtypes: float64 is another run
    model, optimizer, scheduler = _copies(experiment)
    fresh = _one_step(model, optimizer, scheduler)  # the states this run's optimizer and scheduler make
    _check_optimizer(checkpoint.optimizer_state, fresh[0])
    if scheduler is not None and checkpoint.scheduler_state is not None:
        _check_like("scheduler state", checkpoint.scheduler_state, fresh[1])
    owners = [*experiment.stateful_callbacks(), *(c for c in callbacks if hasattr(c, "state_key"))]
    _check_callbacks(fit_start(checkpoint).callback_states, owners, model.state_dict())
    model, optimizer, scheduler = _copies(experiment)  # fresh copies again: the step above changed the first ones
    restore_state(SimpleNamespace(model=model, optimizer=optimizer, scheduler=scheduler, history=[]), checkpoint)
    _one_step(model, optimizer, scheduler)


def _copies(experiment: ExperimentView) -> tuple[Any, Any, Any]:
    """A copy of the run's model, and an optimizer and scheduler of the run's config over it."""
    model = copy.deepcopy(experiment.model)
    optimizer = experiment.build_optimizer(model)
    return model, optimizer, experiment.build_scheduler(optimizer)


def _one_step(model: Any, optimizer: Any, scheduler: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One optimizer step with zero gradients (and one scheduler step), on copies; their states after it."""
    try:
        for p in model.parameters():
            p.grad = torch.zeros_like(p.data)
        with torch.inference_mode():  # as Trainer.train_step
            optimizer.step()
        if scheduler is not None:
            scheduler.step(0.0) if takes_metric(scheduler) else scheduler.step()
    except DRY_RUN_ERRORS as error:
        raise CheckpointError(f"one training step from it fails: {type(error).__name__}: {error}") from None
    return optimizer.state_dict(), None if scheduler is None else scheduler.state_dict()


def _check_tensors(what: str, saved: Mapping[str, Any], own: Mapping[str, torch.Tensor]) -> None:
    """The same names, and tensors of the same shapes and dtypes."""
    missing, unexpected = [k for k in own if k not in saved], [k for k in saved if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{what}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in own.items():
        value = saved[name]
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{what} {name}: a tensor expected, got {short_repr(value)}")
        if value.shape != tensor.shape or value.dtype != tensor.dtype:
            raise CheckpointError(
                f"{what} {name}: {value.dtype} of shape {tuple(value.shape)}; this run's is "
                f"{tensor.dtype} of shape {tuple(tensor.shape)}"
            )


def _check_optimizer(saved: Any, fresh: dict[str, Any]) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError("no optimizer state")
    groups, own_groups = saved["param_groups"], fresh["param_groups"]
    if len(groups) != len(own_groups):
        raise CheckpointError(f"optimizer: {len(groups)} parameter group(s), this run has {len(own_groups)}")
    for i, (group, own) in enumerate(zip(groups, own_groups, strict=True)):
        if group["params"] != own["params"]:
            raise CheckpointError(
                f"optimizer group {i}: parameters {short_repr(group['params'])}, expected {own['params']}"
            )
        _check_like(f"optimizer group {i}", {k: v for k, v in group.items() if k in own}, own)
    states, own_state = saved["state"], fresh["state"]
    for index, entry in states.items():
        if index not in own_state:
            raise CheckpointError(f"optimizer state for parameter {index}, which this run's optimizer keeps none for")
        _check_like(f"optimizer state of parameter {index}", entry, own_state[index])


def _check_callbacks(states: dict[str, Any], callbacks: list[Any], model_state: dict[str, torch.Tensor]) -> None:
    """Each saved callback state belongs to a callback of this run and loads into a copy of it."""
    owners = {c.state_key: c for c in callbacks}
    unknown = [key for key in states if key not in owners]
    if unknown:
        raise CheckpointError(f"callback state {short_repr(unknown[0])} belongs to no callback of this run")
    for key, state in states.items():
        fresh = owners[key].state_dict()
        for name in [n for n in state if n not in fresh]:  # only a model's tensors may be added (best weights)
            value = state[name]
            if not isinstance(value, Mapping):
                raise CheckpointError(f"callback state {key}: unexpected entry {name!r}")
            _check_tensors(f"callback state {key}.{name}", value, model_state)
        _check_like(f"callback state {key}", {n: v for n, v in state.items() if n in fresh}, fresh)
        try:
            copy.deepcopy(owners[key]).load_state_dict(state)
        except DRY_RUN_ERRORS as error:
            raise CheckpointError(f"callback state {key}: {type(error).__name__}: {error}") from None


def _check_like(where: str, saved: Any, fresh: Any) -> None:
    """``saved`` has the structure of ``fresh``: the same keys, and values of the same kinds and shapes."""
    if isinstance(fresh, Mapping):
        if not isinstance(saved, Mapping):
            raise CheckpointError(f"{where}: a table expected, got {short_repr(saved)}")
        missing = [k for k in fresh if k not in saved]
        extra = [k for k in saved if k not in fresh]
        if missing or extra:
            said = [f"missing {missing[:5]}"] * bool(missing) + [f"unexpected {extra[:5]}"] * bool(extra)
            raise CheckpointError(f"{where}: {', '.join(said)}")
        for key, value in fresh.items():
            _check_like(f"{where}: {key}", saved[key], value)
    elif isinstance(fresh, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(fresh):
            raise CheckpointError(f"{where}: a list of {len(fresh)} expected, got {short_repr(saved)}")
        for i, (a, b) in enumerate(zip(saved, fresh, strict=True)):
            _check_like(f"{where}[{i}]", a, b)
    elif _kind(saved) != _kind(fresh):
        raise CheckpointError(f"{where}: {_kind(fresh)} expected, got {short_repr(saved)}")
    elif _counter(fresh) and not _counter(saved):  # epochs, steps, patience counters: never -5 or 2.5
        raise CheckpointError(f"{where}: a whole number >= 0 expected, got {short_repr(saved)}")
    elif isinstance(fresh, torch.Tensor) and (
        saved.shape != fresh.shape or saved.is_floating_point() != fresh.is_floating_point()
    ):
        raise CheckpointError(
            f"{where}: a {fresh.dtype} tensor of shape {tuple(fresh.shape)} expected, got {saved.dtype} of shape "
            f"{tuple(saved.shape)}"
        )


def _counter(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, torch.Tensor):
        return "a tensor"
    if value is None:
        return "None"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__
