"""Optimizer: parameter groups, per-parameter state and state_dicts in torch.optim's format.

An optimizer owns its update rule and its state; layers never see either. ``state`` maps each
``Parameter`` object to a dict of tensors and numbers, under torch.optim's names (``momentum_buffer``,
``exp_avg``, ``exp_avg_sq``, ``step`` as a Python float). ``state_dict`` numbers the parameters in group
order, as torch.optim does, so it can be saved and loaded into a fresh optimizer and the run resumes
bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch

from minidl.errors import ConfigError, StateDictError
from minidl.nn.parameter import Parameter


class Optimizer:
    """Base class: subclasses set ``defaults``, extend ``_validate`` and implement ``step()``."""

    def __init__(self, params: Iterable[Parameter] | Iterable[dict[str, Any]], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Parameter, dict[str, Any]] = {}
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

    def zero_grad(self) -> None:
        for p in self._params():
            p.grad.zero_()

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    # -- state_dict ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: tensor or float}}, "param_groups": [{..., "params": [index, ...]}]}``.

        A snapshot: tensors are cloned, so later steps do not change a state_dict already taken.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        groups = [
            {
                **copy.deepcopy({k: v for k, v in g.items() if k != "params"}),
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
            new_state[p] = {k: _cast_like(value, p.data, k) for k, value in entry.items()}
        known = set(self.defaults) | {"initial_lr"}
        merged = [
            {**own, **{k: copy.deepcopy(v) for k, v in saved.items() if k in known}}
            for saved, own in zip(groups, self.param_groups, strict=True)
        ]
        for group in merged:
            self._validate(group)
        self.state = new_state
        for own, group in zip(self.param_groups, merged, strict=True):
            own.update(group)  # in place: whoever holds a group (a scheduler) sees the loaded values

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])


def _cast_like(value: Any, param: torch.Tensor, name: str) -> Any:
    """State tensors are copied to the parameter's device and dtype; ``step`` becomes a float."""
    if name == "step":
        return float(value)
    if not isinstance(value, torch.Tensor):
        return copy.deepcopy(value)
    if not value.is_floating_point():
        return value.clone().to(device=param.device)
    return value.to(device=param.device, dtype=param.dtype, copy=True)
