"""The compiled prototype (benchmarks/compiled_proto.py) refuses a trace that froze an output as a constant."""

from __future__ import annotations

import pytest
import torch

from minidl import nn, optim


class _AliasedMSE(nn.MSELoss):
    """An MSE whose forward returns an alias made outside the dispatcher (as LossValue's as_subclass)."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(input, target).as_subclass(torch.Tensor)


@pytest.mark.parametrize(("loss_fn", "frozen"), [(nn.MSELoss(), False), (_AliasedMSE(), True)])
def test_a_loss_make_fx_cannot_follow_is_refused_not_baked_in(loss_fn, frozen):
    from benchmarks import compiled_proto

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    optimizer = optim.SGD(model.parameters(), lr=0.1)
    x, t = torch.randn(4, 2), torch.randn(4, 1)
    loss_fn(model(x), t)  # one eager step first: the loss's kept numbers and Linear's ones exist at tracing
    model.backward(loss_fn.backward())
    if frozen:
        with pytest.raises(compiled_proto.NotCapturable, match="froze"):
            compiled_proto.trace_step(model, loss_fn, optimizer, x, t)
        return
    traced = compiled_proto.trace_step(model, loss_fn, optimizer, x, t)
    carry = [p.data.clone() for p in model.parameters()]
    losses = [traced(carry, x, t * k)[1].item() for k in (1.0, 2.0)]
    assert losses[0] != losses[1]  # the loss is computed from the batch, not a constant of the graph
