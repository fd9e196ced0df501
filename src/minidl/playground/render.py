"""What a session sends: the ``net`` message (after each rebuild) and the frames (``frames`` packs them)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import torch

from minidl.nn.linear import Linear
from minidl.playground.data import FEATURES, features
from minidl.playground.frames import GRID, STRIDE, pack, quantize_signed, quantize_unit

if TYPE_CHECKING:
    from minidl.playground.view import SessionView


def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.contiguous().numpy().tobytes()).decode("ascii")


def grid_points(extent: float) -> torch.Tensor:
    """``GRID²`` raw points of the plane, row by row from the top (x2 = +extent) to the bottom."""
    axis = torch.linspace(-extent, extent, GRID, dtype=torch.float64)
    x2, x1 = torch.meshgrid(axis.flip(0), axis, indexing="ij")
    return torch.stack([x1.reshape(-1), x2.reshape(-1)], 1)


def net_message(session: SessionView) -> str:
    built = session.built
    setup, experiment = built.setup, built.experiment
    split = torch.zeros(len(session.points), dtype=torch.uint8)
    split[built.train_idx] = 1
    layers = [len(setup.features), *setup.layers, built.linears[-1].out_features]
    classes = experiment.data.classes if not setup.regression else []
    names = session.class_names if setup.dataset == "custom" and session.class_names else [str(c) for c in classes]
    session._grid = experiment.inputs(features(grid_points(session.extent), list(setup.features)).float())
    return json.dumps(
        {
            "version": session.version,
            "setup": setup.to_dict(),
            "query": setup.to_query(),
            "nodes": layers,
            "features": [FEATURES[f][0] for f in setup.features],
            "classes": names,
            "extent": session.extent,
            "modules": [repr(m) for m in built.model],
            "points": _b64(session.points.float()),
            "targets": _b64(session.targets.float()),
            "split": _b64(split),
            "steps_per_epoch": built.trainer.loop.steps_per_epoch,
        }
    )


def _display(session: SessionView, output: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """The output plane: P(class 1), or value / scale, or the argmax class and its probability."""
    built = session.built
    loss_name = built.setup.loss
    if built.setup.regression:
        scale = float(session.targets.abs().max().clamp_min(1e-6))
        return [("output", quantize_unit((output[:, 0] / scale + 1) / 2))]
    if output.shape[1] == 1:
        p = output[:, 0].sigmoid() if loss_name == "bce-logits" else output[:, 0]
        return [("output", quantize_unit(p))]
    probs = output.softmax(1) if loss_name == "cross-entropy" else output.clamp(0, 1)
    if probs.shape[1] == 2:  # two classes with one output each (cross-entropy): drawn as P(class 1)
        return [("output", quantize_unit(probs[:, 1]))]
    conf, cls = probs.max(1)
    return [("output", cls.to(torch.uint8)), ("confidence", quantize_unit(conf))]


def render_frame(session: SessionView) -> str:
    built = session.built
    model, trainer, experiment = built.model, built.trainer, built.experiment
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            h, nodes = session._grid, []
            for module in model:
                if isinstance(module, Linear):
                    nodes.append(h)
                h = module(h)
            nodes.append(h)
            thumbs = torch.cat([n.reshape(GRID, GRID, -1)[::STRIDE, ::STRIDE].reshape(-1, n.shape[1]).T for n in nodes])
            q, scales = quantize_signed(thumbs.float())
            train = trainer.evaluate(*experiment.split("train"))
            test = trainer.evaluate(*experiment.split("test"))
            weights = torch.cat([t.reshape(-1) for m in built.linears for t in (m.weight.data, m.bias.data)])
            sections = [
                *_display(session, h),
                ("nodes", q.reshape(-1)),
                ("scales", scales),
                ("weights", weights.float()),
                ("grad_norms", torch.tensor(session.grad_norms, dtype=torch.float32)),
            ]
            if test.metrics is not None and hasattr(test.metrics, "confusion"):
                sections.append(("confusion", torch.as_tensor(test.metrics.confusion).to(torch.int32).reshape(-1)))
    finally:
        model.train(was_training)
    header: dict[str, Any] = {
        "seq": session.seq,
        "version": session.version,
        "step": trainer.loop.global_step,
        "epoch": len(trainer.history),
        "step_in_epoch": trainer.loop.step,
        "train_loss": train.loss,
        "test_loss": test.loss,
        "train_acc": train.accuracy,
        "test_acc": test.accuracy,
        "lr": built.optimizer.param_groups[0]["lr"],
        "playing": session.playing,
        "edits": len(session.edits),
    }
    return pack(header, sections)
