"""FlatState: an optimizer's state for one FlatGroup as flat tensors, seen per parameter as views.

While a ``FlatGroup`` backs its parameters, an optimizer's update rule runs once on the group's flat
``data`` and ``grad`` and on flat state tensors shaped like them (``exp_avg``, ``momentum_buffer`` …): a
handful of tensor operations for every parameter together. Every operation of the rules is element-wise,
so this is the same arithmetic as one run per parameter; the zero padding between parameters stays zero
(or becomes 0/0 = NaN where a rule divides by eps = 0, as a real element would; nothing reads it).

``Optimizer.state[p]`` holds, under torch.optim's names, views into the flat tensors and the step count,
so ``state_dict`` keeps torch.optim's layout and ``load_state_dict`` is copied back into the flat tensors.
When the parameters stop being packed (``module.to(...)`` after the optimizer was created, or another
optimizer packed a different list), the optimizer falls back to one run per parameter on those same
per-parameter views, for good.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from minidl.nn.parameter import Parameter
from minidl.optim.flat import FlatGroup


class FlatState:
    """The optimizer state of ``group``'s parameters: ``tensors`` maps each state name to a flat tensor.

    ``group`` is None for parameters that are never stepped flat (a parameter group that lists one
    parameter twice); ``params`` are the parameters either way.
    """

    def __init__(self, group: FlatGroup | None, params: list[Parameter]) -> None:
        self.group = group
        self.params = params
        self.tensors: dict[str, Any] = {}  # what the update rule keeps for the whole group, "step" included
        self.active = group is not None
        self.stepped = False  # a flat step ran since the state was last (re)set: its tensors exist
        self._entries: list[dict[str, Any]] = []  # each parameter's Optimizer.state entry, holding views
        self._linked: set[str] = set()  # the names those entries hold views of

    def usable(self) -> bool:
        """True while the update may run on the flat buffers: still packed, never stepped per parameter."""
        if self.active and not self.group.is_packed():
            self.active = False  # unpacked: per parameter from now on, on the same (view) state tensors
        return self.active

    def publish(self, state: dict[Parameter, dict[str, Any]]) -> None:
        """After a flat step: each parameter's entry in ``state`` gets views of new flat tensors, and the step."""
        tensors = self.tensors
        self.stepped = True
        if self._linked != tensors.keys():
            views = {name: self.group.views(t) for name, t in tensors.items() if isinstance(t, torch.Tensor)}
            self._entries = [state[p] for p in self.params]  # made empty where missing (a defaultdict)
            for i, entry in enumerate(self._entries):
                for name, v in views.items():
                    dict.__setitem__(entry, name, v[i])  # the optimizer's own write, not a user's edit
            self._linked = set(tensors)
        if "step" in tensors:
            step = tensors["step"]
            for entry in self._entries:
                dict.__setitem__(entry, "step", step)

    def adopt(self, state: dict[Parameter, dict[str, Any]]) -> None:
        """After ``Optimizer.load_state_dict`` replaced ``state``: copy the loaded tensors into flat tensors.

        Parameters without state start afresh. State the flat tensors cannot hold (some parameters with
        state and some without, different names or step counts, another shape or dtype) leaves these
        parameters to the per-parameter path, which uses the loaded tensors as they are.
        """
        self.tensors, self._entries, self._linked, self.stepped = {}, [], set(), False
        if not self.active:
            return
        entries = [state.get(p) or {} for p in self.params]
        if not any(entries):
            return
        names = set(entries[0])
        fits = all(
            set(entry) == names
            and entry.get("step") == entries[0].get("step")
            and all(
                isinstance(v, torch.Tensor) and v.shape == p.shape and v.dtype == p.dtype and v.device == p.device
                for name, v in entry.items()
                if name != "step"
            )
            for entry, p in zip(entries, self.params, strict=True)
        )
        if not fits:
            self.active = False
            return
        for name in sorted(names - {"step"}):
            flat = torch.zeros_like(self.group.data)
            for view, entry in zip(self.group.views(flat), entries, strict=True):
                view.copy_(entry[name])
            self.tensors[name] = flat
        if "step" in names:
            self.tensors["step"] = entries[0]["step"]
        self.publish(state)


class _Tracked(dict):
    """A dict whose deletions tell its optimizer (``owner``) to re-read the state at the next step."""

    _owner: Any

    def _edited(self) -> None:
        if not self._owner._stepping:  # the optimizer's own writes during a step are not edits
            self._owner._state_edited = True

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._edited()

    def clear(self) -> None:
        super().clear()
        self._edited()

    def pop(self, *args: Any) -> Any:
        value = super().pop(*args)
        self._edited()
        return value


class StateEntry(_Tracked):
    """One parameter's state; a user's assignment or deletion tells the optimizer to re-read it."""

    def __init__(self, owner: Any, *args: Any) -> None:
        super().__init__(*args)
        self._owner = owner

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._edited()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._edited()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]


class State(_Tracked):
    """``Optimizer.state``: Parameter -> StateEntry, a defaultdict as torch's; edits take effect at the next step."""

    def __init__(self, owner: Any, initial: dict | None = None) -> None:
        super().__init__()
        self._owner = owner
        for p, entry in (initial or {}).items():
            dict.__setitem__(self, p, StateEntry(owner, entry))

    def __missing__(self, p: Parameter) -> StateEntry:
        entry = StateEntry(self._owner)
        dict.__setitem__(self, p, entry)
        return entry

    def __setitem__(self, p: Parameter, entry: dict) -> None:
        dict.__setitem__(self, p, entry if isinstance(entry, StateEntry) else StateEntry(self._owner, entry))
        self._edited()

    def setdefault(self, p: Parameter, default: dict | None = None) -> StateEntry:
        if p not in self:
            self[p] = default or {}
        return self[p]

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return copy.deepcopy(dict(self), memo)
