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
            self._entries = [state.setdefault(p, {}) for p in self.params]
            for i, entry in enumerate(self._entries):
                entry.update({name: v[i] for name, v in views.items()})
            self._linked = set(tensors)
        if "step" in tensors:
            step = tensors["step"]
            for entry in self._entries:
                entry["step"] = step

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
