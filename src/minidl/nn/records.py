"""What a module's forward records for its backward: one record per call, used last-in first-out.

A module called twice in one forward (a shared activation, tied weights) gets one backward per call, in
reverse order, as autograd would. Records are kept per mode (training / eval), so a forward in the other
mode (a validation pass in eval mode) never disturbs a pending backward, and nothing is recorded inside
``minidl.no_grad()``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch

from minidl.errors import BackwardError
from minidl.nn.grad_mode import MODE


class Records:
    """The mixin behind ``Module.save_for_backward`` and ``Module.saved_for_backward``."""

    training: bool = True
    # how many calls may wait for their backward; beyond it the oldest (never used) is dropped, so forwards
    # that are never backwarded (a logged training-mode loss, say) cannot grow memory without bound
    _max_pending: int = 1024
    # eval-mode forwards are mostly inference that no backward follows (an evaluation loop without no_grad):
    # keeping 1024 of them held 300 MB and cut batch-1024 inference to 0.41x torch's (benchmarks case 4b);
    # 8 still serves a backward through an eval-mode forward that calls one module up to 8 times
    _max_pending_eval: int = 8

    def save_for_backward(self, *values: Any) -> None:
        """Record ``values`` for the backward of this call (nothing inside ``minidl.no_grad()``).

        In eval mode a forward records only while torch's grad mode is on as well, so inference under
        ``torch.no_grad()`` keeps nothing alive.
        """
        if MODE.enabled and (self.training or torch.is_grad_enabled()):
            try:
                self._pending[self.training].append(values)
            except AttributeError:  # the first call: one stack per mode, eval-mode calls then training-mode
                # a bounded deque drops the oldest record itself (0.23-0.29 µs against 0.29-0.36 µs per
                # save and use with a list and a length check, measured)
                self._pending = (deque(maxlen=self._max_pending_eval), deque(maxlen=self._max_pending))
                self._pending[self.training].append(values)

    def saved_for_backward(self) -> tuple:
        """What the latest pending forward (of the current mode) recorded; it is used up."""
        try:
            return self._pending[self.training].pop()
        except (AttributeError, IndexError):
            mode = "training" if self.training else "eval"
            raise BackwardError(
                f"{self._name()}: backward called before forward: no {mode}-mode forward is waiting for its "
                "backward (call forward first, outside minidl.no_grad(); each forward serves one backward)"
            ) from None

    def _cached(self, value: Any) -> Any:
        """Return what forward cached in an attribute for backward, or raise if forward has not run."""
        if value is None:
            raise BackwardError(f"{self._name()}: backward called before forward (nothing cached to use)")
        return value


def to_arguments(where: str, args: tuple, kwargs: dict) -> tuple[torch.device | str | None, torch.dtype | None]:
    """torch's ``Module.to`` signatures, read into (device, dtype)."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"{where}.to: unexpected keyword argument(s) {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, torch.Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, torch.dtype):
            dtype = arg
        elif isinstance(arg, (str, torch.device, int)) and not isinstance(arg, bool):
            device = arg
        elif isinstance(arg, bool):  # non_blocking given positionally: nothing to do here
            continue
        else:
            raise TypeError(f"{where}.to: expected a device, a dtype or a tensor, got {arg!r}")
    return device, dtype
