"""Learning-rate schedulers with torch's lr_scheduler semantics and floating-point results.

Construct a scheduler after its optimizer (it records each group's ``initial_lr``) and call
``scheduler.step()`` once per epoch, after ``optimizer.step()``. Like torch, the schedulers below are
chainable: each computes the next lr from the group's current lr (the recursive form), which is what
makes their values equal torch's bit for bit. ``state_dict`` holds numbers, lists and (MultiStepLR) a Counter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from minidl.errors import ConfigError, StateDictError
from minidl.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement ``get_lr()`` from ``last_epoch`` and the groups' current lrs.

    ``_hyperparameters`` names the constructor arguments that go into the state_dict with the counters.
    """

    _hyperparameters: tuple[str, ...] = ()

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not a minidl Optimizer")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int) or last_epoch < -1:
            raise ConfigError(f"{type(self).__name__}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        self._validate()
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:  # resuming: the groups must come from a run that had a scheduler
                raise ConfigError(
                    f"{type(self).__name__}: param 'initial_lr' is not specified in param_groups[{i}] when "
                    f"resuming with last_epoch={last_epoch} (load the optimizer's state_dict first)"
                )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        before = (optimizer._loads, self._lrs())
        self._is_initial = True  # the constructor's step, which sets epoch 0
        self.step()
        self._is_initial = False
        self._made = (*before, self._lrs())  # what load_state_dict needs to tell where the lrs come from

    def _validate(self) -> None:
        """Raise ConfigError for an invalid hyperparameter (also after load_state_dict)."""

    def _lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_lr(self) -> list[float]:
        """The lr of each group for epoch ``last_epoch``, given the groups' lrs of the epoch before."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def step(self) -> None:
        """Advance one epoch and write the new lrs into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = self._lrs()

    def get_last_lr(self) -> list[float]:
        """The lrs set by the last ``step()``, one per parameter group."""
        return list(self._last_lr)

    # -- state_dict ---------------------------------------------------------------------------
    def _state_keys(self) -> tuple[str, ...]:
        return ("base_lrs", "last_epoch", "_step_count", "_last_lr", *self._hyperparameters)

    def state_dict(self) -> dict[str, Any]:
        """Counters, lrs and hyperparameters by torch's attribute names; numbers and lists only."""
        return {key: _plain(getattr(self, key)) for key in self._state_keys()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore ``state_dict()`` (torch's also loads); the lrs come from the optimizer's state, as torch.

        As in torch, the groups' lrs are not touched: load the optimizer's state_dict too, and chained
        schedulers then resume with the saved lr whatever order they are restored in.
        """
        missing = [key for key in self._state_keys() if key not in state_dict]
        if missing:
            raise StateDictError(f"{type(self).__name__}.load_state_dict: missing key(s) {', '.join(missing)}")
        n_groups = len(self.optimizer.param_groups)
        if len(state_dict["_last_lr"]) != n_groups:
            raise StateDictError(
                f"{type(self).__name__}.load_state_dict: the state_dict has {len(state_dict['_last_lr'])} lr(s), "
                f"the optimizer has {n_groups} parameter group(s)"
            )
        lrs = self._lrs_after_load(state_dict)
        before = {key: getattr(self, key) for key in self._state_keys()}
        for key in self._state_keys():
            setattr(self, key, _load(key, state_dict[key]))
        try:
            self._validate()
        except ConfigError:
            for key, value in before.items():  # a bad state_dict leaves this scheduler as it was
                setattr(self, key, value)
            raise
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr

    def _lrs_after_load(self, state_dict: dict[str, Any]) -> list[float]:
        """The groups' lrs stay the optimizer's (torch), with two exceptions where they cannot be right.

        An optimizer whose state was never loaded has only this scheduler's lrs: the saved ones. One loaded
        before this scheduler was made had its lrs changed by this constructor's step (LinearLR's factor, a
        milestone at 0): they go back to the loaded ones.
        """
        loads_then, lrs_before, lrs_made = getattr(self, "_made", (None, None, None))
        if self.optimizer._loads == 0:
            return list(state_dict["_last_lr"])
        if loads_then == self.optimizer._loads and self._step_count == 1 and self._lrs() == lrs_made:
            return list(lrs_before)
        return self._lrs()

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={getattr(self, key)!r}" for key in self._hyperparameters)
        return f"{type(self).__name__}({args})"


def _plain(value: Any) -> Any:
    if isinstance(value, Counter):
        return Counter(value)  # torch keeps milestones as a Counter {epoch: times}; a list would load wrong there
    return list(value) if isinstance(value, (list, tuple)) else value


def _load(key: str, value: Any) -> Any:
    if key == "milestones":  # a list, or torch's Counter {epoch: times} (keys are strings after JSON)
        pairs = value.items() if isinstance(value, dict) else ((m, 1) for m in value)
        return Counter(int(m) for m, n in pairs for _ in range(n))
    return list(value) if isinstance(value, (list, tuple)) else value


def _check_positive_int(scheduler: LRScheduler, name: str) -> None:
    value = getattr(scheduler, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{type(scheduler).__name__}: {name} must be a positive integer, got {value!r}")


def _check_gamma(scheduler: LRScheduler) -> None:
    if not scheduler.gamma > 0:
        raise ConfigError(f"{type(scheduler).__name__}: Invalid gamma value: {scheduler.gamma} (expected > 0)")


class StepLR(LRScheduler):
    """lr ← lr · γ every ``step_size`` epochs: lr_e = base_lr · γ^⌊e / step_size⌋."""

    _hyperparameters = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _validate(self) -> None:
        _check_positive_int(self, "step_size")
        _check_gamma(self)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]


class MultiStepLR(LRScheduler):
    """lr ← lr · γⁿ at each epoch listed n times in ``milestones``: lr_e = base_lr · γ^#{m ≤ e}."""

    _hyperparameters = ("milestones", "gamma")

    def __init__(
        self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1
    ) -> None:
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _validate(self) -> None:
        bad = [m for m in self.milestones if isinstance(m, bool) or not isinstance(m, int) or m < 0]
        if bad:
            raise ConfigError(f"MultiStepLR: milestones must be non-negative integers, got {sorted(self.milestones)}")
        _check_gamma(self)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return self._lrs()
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in self._lrs()]


class ExponentialLR(LRScheduler):
    """lr ← lr · γ every epoch: lr_e = base_lr · γᵉ."""

    _hyperparameters = ("gamma",)

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _validate(self) -> None:
        _check_gamma(self)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._lrs()
        return [lr * self.gamma for lr in self._lrs()]
