"""A Keras-style table of a model's layers, output shapes and parameter counts."""

from __future__ import annotations

import torch

from minidl.nn.module import Module
from minidl.train.evaluation import eval_mode


def _count(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() for t in tensors)


def model_summary(model: Module, in_features: int) -> str:
    """Run a batch of two zero rows through each top-level layer (eval mode) to find the output shapes.

    Non-trainable parameters are floating-point buffers, such as BatchNorm's running statistics.
    """
    children = list(model.named_children()) or [("0", model)]
    rows = []
    with eval_mode(model), torch.no_grad():
        x = torch.zeros(2, in_features, dtype=next((p.data.dtype for p in model.parameters()), torch.float32))
        for name, layer in children:
            x = layer(x)
            params = _count([p.data for p in layer.parameters()])
            rows.append(
                (f"{name} ({type(layer).__name__})", "(None, " + ", ".join(map(str, x.shape[1:])) + ")", params)
            )
    trainable = _count([p.data for p in model.parameters()])
    frozen = _count([b for _, b in model.named_buffers() if b.is_floating_point()])
    widths = (max(28, *(len(r[0]) + 2 for r in rows)), 20, 12)
    rule = "─" * sum(widths)
    lines = [
        f"Model: {type(model).__name__}, input (None, {in_features})",
        rule,
        f"{'Layer (type)':<{widths[0]}}{'Output Shape':<{widths[1]}}{'Param #':>{widths[2]}}",
        "═" * sum(widths),
    ]
    lines += [f"{a:<{widths[0]}}{b:<{widths[1]}}{c:>{widths[2]},}" for a, b, c in rows]
    lines += [
        "═" * sum(widths),
        f"Total params: {trainable + frozen:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}",
        rule,
    ]
    return "\n".join(lines)
