"""Flat parameter storage: every parameter's data and grad as views into one buffer per dtype and device.

On a small network a training step is a few dozen tiny tensor operations, and the optimizer alone adds
two per parameter (zero the grad, update the data). Packing the parameters turns those into one
operation per (dtype, device)::

    groups = flatten_parameters(model.parameters())
    for g in groups:
        g.grad.zero_()                          # zero_grad: one op for every parameter
        g.data.add_(g.grad, alpha=-lr)          # plain SGD: one op for every parameter

``flatten_parameters`` copies each ``Parameter.data`` and ``.grad`` into the flat buffers and rebinds them
to views of the buffers (values are preserved). It works because layers update ``grad`` in place
(``p.grad += ...``, ``addmm_``) and never rebind ``data`` or ``grad``: the views stay views, so a layer
author never sees the packing and a user's own layer keeps working. ``state_dict`` returns the views,
``load_state_dict`` copies into them, so both keep working too.

Create the optimizer (which packs) *after* ``module.to(...)``: ``to`` with a new device or dtype
re-allocates every tensor, which unpacks the parameters and leaves an earlier group stale, exactly as
torch.optim holds on to the old tensors in the same situation. ``FlatGroup.is_packed()`` tells whether a
group still backs its parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import attrgetter, is_

import torch

from minidl.errors import ShapeError
from minidl.nn.parameter import Parameter

# Each parameter starts on a 64-byte boundary, as a freshly allocated tensor does. BLAS kernels pick their
# code path (and so their summation order) by alignment: without it a packed model's float32 output can
# differ from torch.nn's in the last bit. The padding between parameters stays zero in data and grad.
ALIGN_BYTES = 64

_DATA, _GRAD = attrgetter("data"), attrgetter("_grad")  # the grad storage, also while grad reads None


@dataclass(eq=False)
class FlatGroup:
    """Parameters of one dtype and device whose ``data``/``grad`` are views into ``data``/``grad`` here.

    ``data`` and ``grad`` are 1-D and contiguous; parameter ``i`` starts at ``offsets[i]`` in both, in the
    order the parameters were given, on a 64-byte boundary; the few elements of padding up to
    ``offsets[i + 1]`` stay zero, so element-wise updates of the whole buffer leave them zero.
    """

    params: list[Parameter]
    data: torch.Tensor
    grad: torch.Tensor
    offsets: list[int]
    # the data and grad views verified to be ours: while the parameters still hold these very objects,
    # is_packed() needs only identity checks (cheap enough to run before every optimizer step)
    _bound: tuple[list[torch.Tensor], list[torch.Tensor]] = field(default_factory=lambda: ([], []), repr=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    def numel(self) -> int:
        return self.data.numel()

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Split a flat tensor shaped like ``data`` into one view per parameter, shaped like it.

        An optimizer keeps its state (momentum, Adam's moments) as one flat tensor, updates it with one
        op, and stores these views per parameter so its state_dict keeps torch.optim's layout.
        """
        if flat.shape != self.data.shape:
            raise ShapeError(
                f"FlatGroup.views: expected a tensor of shape {tuple(self.data.shape)}, got {tuple(flat.shape)}"
            )
        return [
            flat[start : start + p.numel()].view(p.data.shape)
            for p, start in zip(self.params, self.offsets, strict=False)
        ]

    def is_packed(self) -> bool:
        """True while every parameter's data and grad are still views into this group's buffers."""
        data, grad = self._bound
        # map/is_ loops in C: no Python frame per parameter, a few hundred ns for a whole model
        same_data = len(data) == len(self.params) and all(map(is_, map(_DATA, self.params), data))
        if same_data and all(map(is_, map(_GRAD, self.params), grad)):
            return True
        packed = all(
            _is_view_at(p.data, self.data, start, p.data.numel()) and _is_view_at(p._grad, self.grad, start, p.numel())
            for p, start in zip(self.params, self.offsets, strict=False)
        )
        if packed:  # other views at the right places: remember them for the quick check
            self._bound = ([p.data for p in self.params], [p._grad for p in self.params])
        return packed

    def zero_grad(self) -> None:
        self.grad.zero_()


def flatten_parameters(params: Iterable[Parameter]) -> list[FlatGroup]:
    """Pack ``params`` into one contiguous data buffer and one grad buffer per (dtype, device).

    Each parameter's ``data`` and ``grad`` are rebound to views into the new buffers, with their values
    copied. A parameter given twice is packed once. Parameters that already are exactly such a packing
    (this function ran on the same list before) are not copied again: the groups returned view the
    existing buffers, so packing twice is harmless. Groups come in order of first appearance.
    """
    unique: dict[int, Parameter] = {}
    for p in params:
        if not isinstance(p, Parameter):
            raise TypeError(f"flatten_parameters expects minidl Parameters, got {type(p).__name__}")
        unique.setdefault(id(p), p)
    by_kind: dict[tuple[torch.dtype, torch.device], list[Parameter]] = {}
    for p in unique.values():
        by_kind.setdefault((p.data.dtype, p.data.device), []).append(p)
    return [_existing_group(group) or _pack(group) for group in by_kind.values()]


def _offsets(params: list[Parameter]) -> list[int]:
    """Start of each parameter, rounded up to ALIGN_BYTES, then the padded total."""
    step = max(ALIGN_BYTES // params[0].data.element_size(), 1)
    offsets = [0]
    for p in params:
        offsets.append(offsets[-1] + -(-p.data.numel() // step) * step)
    return offsets


def _pack(params: list[Parameter]) -> FlatGroup:
    offsets = _offsets(params)
    first = params[0].data
    data = torch.zeros(offsets[-1], dtype=first.dtype, device=first.device)
    grad = torch.zeros_like(data)
    for p, start in zip(params, offsets, strict=False):
        end, shape = start + p.numel(), p.data.shape
        data[start:end].copy_(p.data.reshape(-1))
        if p.grad is not None:
            grad[start:end].copy_(p.grad.reshape(-1))
        p.data = data[start:end].view(shape)
        p._grad = grad[start:end].view(shape)  # grad stays None if it was: the storage moves, not the value
    return FlatGroup(params, data, grad, offsets, ([p.data for p in params], [p._grad for p in params]))


def _existing_group(params: list[Parameter]) -> FlatGroup | None:
    """The group ``params`` already form, if their data and grads tile two whole storages in this order."""
    offsets = _offsets(params)
    first = params[0]
    data = _whole_storage(first.data, offsets[-1])
    grad = _whole_storage(first._grad, offsets[-1])
    if data is None or grad is None:
        return None
    group = FlatGroup(params, data, grad, offsets)
    if not group.is_packed():
        return None
    group._bound = ([p.data for p in params], [p._grad for p in params])
    return group


def _whole_storage(t: torch.Tensor, numel: int) -> torch.Tensor | None:
    """A 1-D view of all of ``t``'s storage when that storage holds exactly ``numel`` elements."""
    storage = t.untyped_storage()
    if storage.nbytes() != numel * t.element_size():
        return None
    return t.new_empty(0).set_(storage, 0, (numel,))


def _is_view_at(t: torch.Tensor, flat: torch.Tensor, start: int, numel: int) -> bool:
    return (
        t.device == flat.device
        and t.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
        and t.storage_offset() == flat.storage_offset() + start
        and t.numel() == numel
        and t.is_contiguous()
        and t.dtype == flat.dtype
    )
