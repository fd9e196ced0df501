"""Optimizer: parameter groups, per-parameter state and state_dicts in torch.optim's format.

An optimizer owns its update rule and its state; layers never see either. ``state`` maps each
``Parameter`` object to a dict of tensors and numbers, under torch.optim's names (``momentum_buffer``,
``exp_avg``, ``exp_avg_sq``, ``step`` as a Python float). ``state_dict`` numbers the parameters in group
order, as torch.optim does, so it can be saved and loaded into a fresh optimizer and the run resumes
bit for bit.

For speed the optimizer packs each parameter group's parameters into flat buffers (``minidl.optim.flat``)
and runs its update rule once per buffer instead of once per parameter (``_targets``); the rule is the
same element-wise arithmetic either way. Create the optimizer *after* ``module.to(...)``, as with
torch.optim: a move re-allocates the parameters, and the optimizer then steps them one by one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from operator import attrgetter
from typing import Any

import torch

from minidl.errors import ConfigError, StateDictError
from minidl.nn.parameter import Parameter, storage_zeroed
from minidl.optim.flat import flatten_parameters
from minidl.optim.flat_state import FlatState, State
from minidl.optim.state_values import cast_like, copied

_HAS_GRAD, _TRAINABLE = attrgetter("_has_grad"), attrgetter("requires_grad")


class Optimizer:
    """Base class: subclasses set ``defaults``, extend ``_validate`` and implement ``step(closure=None)``.

    ``elementwise = False`` declares an update rule that is not element-wise (a per-tensor norm, as LARS):
    the rule then runs once per parameter, never on a flat buffer of several (docs/custom-optimizer.md).
    """

    elementwise: bool = True

    def __init__(self, params: Iterable[Parameter] | Iterable[dict[str, Any]], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self._stepping = False  # True while a step writes state: such writes are not a user's edit
        self._loads = 0  # how many times load_state_dict ran (schedulers read it)
        self._state_edited = False
        self._state = State(self)
        self._flat: list[list[FlatState]] = []  # per param group: its parameters' flat buffers and state
        groups = list(params)
        if not groups:
            raise ConfigError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__} can only optimize minidl Parameters, got {type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ConfigError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ConfigError(f"{type(self).__name__}: unknown option(s) {sorted(unknown)}")
        full = {**self.defaults, **group, "params": params}
        self._validate(full)
        self.param_groups.append(full)
        packed = flatten_parameters(params) if self.elementwise else []
        if self.elementwise and sum(len(g.params) for g in packed) == len(params):
            self._flat.append([FlatState(g, g.params) for g in packed])
        else:  # a parameter listed twice is stepped twice, as torch.optim does: one by one
            self._flat.append([FlatState(None, params)])

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ConfigError for an invalid hyperparameter; subclasses extend it (torch's wording)."""
        lr = group.get("lr")
        if lr is not None and not lr >= 0.0:
            raise ConfigError(f"Invalid learning rate: {lr}")
        if "eps" in group and not group["eps"] >= 0.0:
            raise ConfigError(f"Invalid epsilon value: {group['eps']}")
        if not group.get("weight_decay", 0.0) >= 0.0:
            raise ConfigError(f"Invalid weight_decay value: {group['weight_decay']}")

    def _params(self) -> list[Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def state(self) -> State:
        """Per-parameter state by torch.optim's names; editing it (``clear()``, assignments) takes effect."""
        return self._state

    @state.setter
    def state(self, value: dict[Parameter, dict[str, Any]]) -> None:
        self._state = State(self, value)
        self._state_edited = True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every parameter's grad to None (torch's default: the next step skips a parameter without one)."""
        for flats in self._flat:
            for flat in flats:
                if flat.usable():
                    flat.group.grad.zero_()  # one op for every parameter of the buffer
                    if set_to_none:
                        storage_zeroed(flat.params)
                else:
                    for p in flat.params:
                        p.zero_grad(set_to_none)

    def _closure(self, closure: Callable[[], Any] | None) -> Any:
        """``step(closure)``: the closure re-evaluates the model (forward, zero_grad, backward) and returns the loss."""
        return None if closure is None else closure()

    def _targets(self, index: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, dict[str, Any]]]:
        """What the update rule of param group ``index`` runs on: ``(data, grad, state)`` triples.

        One triple per flat buffer while its parameters are packed (``state`` then holds flat tensors,
        which each parameter's ``self.state`` entry sees as views), else one per parameter.
        """
        if self._state_edited:  # the user edited ``state``: the flat tensors take it over
            self._adopt()
        self._stepping = True
        try:
            for flat in self._flat[index]:
                if flat.usable():
                    params = flat.params
                    if all(map(_HAS_GRAD, params)) and all(map(_TRAINABLE, params)):  # all of them step
                        if flat.stepped:
                            yield flat.group.data, flat.group.grad, flat.tensors
                        else:
                            with _normal_tensors(True):  # the step that makes the state
                                yield flat.group.data, flat.group.grad, flat.tensors
                        flat.publish(self._state)
                        continue
                    if not any(map(_HAS_GRAD, params)):
                        continue  # no parameter has a gradient: torch skips them all
                    flat.active = False  # some skip this step: one by one from now on, on the same state
                for p in flat.params:
                    if not (p._has_grad and p.requires_grad):
                        continue  # torch skips a parameter whose grad is None; a frozen one never moves
                    state = self._state[p]
                    with _normal_tensors(not state):
                        yield p.data, p._grad, state
        finally:
            self._stepping = False

    def _adopt(self) -> None:
        self._state_edited = False
        self._stepping = True
        try:
            with _normal_tensors(True):
                for flats in self._flat:
                    for flat in flats:
                        flat.adopt(self._state)
        finally:
            self._stepping = False

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    # -- state_dict ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: tensor or float}}, "param_groups": [{..., "params": [index, ...]}]}``.

        A snapshot: tensors are cloned, so later steps do not change a state_dict already taken.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [
            {
                **{k: copied(v) for k, v in g.items() if k != "params"},
                "params": [index[id(p)] for p in g["params"]],
            }
            for g in self.param_groups
        ]
        state = {
            index[id(p)]: {name: v.clone() if isinstance(v, torch.Tensor) else v for name, v in s.items()}
            for p, s in self.state.items()
            if s
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict from ``state_dict()`` (or torch.optim's, same layout); tensors are copied.

        Keys may be strings (as after a JSON round trip) and tuples may be lists. Only options this
        optimizer knows are taken from the saved groups, and the result is validated.
        """
        name = type(self).__name__
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or len(groups) != len(self.param_groups):
            found = len(groups) if isinstance(groups, list) else groups
            raise StateDictError(
                f"{name}.load_state_dict: expected {len(self.param_groups)} parameter group(s), got {found}"
            )
        for i, (saved, own) in enumerate(zip(groups, self.param_groups, strict=True)):
            if len(saved["params"]) != len(own["params"]):
                raise StateDictError(
                    f"{name}.load_state_dict: parameter group {i} has {len(own['params'])} "
                    f"parameters, the state_dict has {len(saved['params'])}"
                )
        saved_ids = [int(i) for g in groups for i in g["params"]]
        by_saved_id = dict(zip(saved_ids, self._params(), strict=True))
        new_state: dict[Parameter, dict[str, Any]] = {}
        for key, entry in state_dict.get("state", {}).items():
            p = by_saved_id.get(int(key))
            if p is None:
                raise StateDictError(f"{name}.load_state_dict: state for unknown parameter {key}")
            with _normal_tensors(True):
                new_state[p] = {k: cast_like(value, p.data, k) for k, value in entry.items()}
        known = set(self.defaults) | {"initial_lr"}
        merged = [
            {**own, **{k: copy.deepcopy(v) for k, v in saved.items() if k in known}}
            for saved, own in zip(groups, self.param_groups, strict=True)
        ]
        for group in merged:
            self._validate(group)
        self.state = new_state
        self._loads += 1
        self._adopt()  # into the flat state tensors, or per parameter from now on
        for own, group in zip(self.param_groups, merged, strict=True):
            own.update(group)  # in place: whoever holds a group (a scheduler) sees the loaded values

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])


def _normal_tensors(fresh: bool) -> AbstractContextManager:
    """Where state tensors are made: never inside ``torch.inference_mode`` (where the Trainer steps).

    A tensor born there could never be updated in place outside it, so a user's own loop after
    ``Trainer.fit`` would fail on the optimizer's state. Views and in-place updates are fine in there.
    """
    return torch.inference_mode(False) if fresh and torch.is_inference_mode_enabled() else nullcontext()
