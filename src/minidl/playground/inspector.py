"""The backprop inspector: one sample's forward values and backward gradients, layer by layer.

Everything comes from minidl's public API, in ``model.eval()``: each module's ``forward`` (``module(x)``),
the loss's ``backward()`` and each module's ``backward(grad_output)``, the parameters' ``.grad`` (zeroed
first, so they hold this sample's gradient alone) and, for the update, a copy of the optimizer made with
``state_dict()`` / ``load_state_dict()`` that steps on copies of the parameters: the real weights and the
optimizer's state are untouched, and the next training step zeroes the gradients as always.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from minidl.experiment.components import build
from minidl.nn.parameter import Parameter
from minidl.playground.setup import SetupError

if TYPE_CHECKING:
    from minidl.playground.session import Session

# module class -> (forward formula, backward formula); g is dL/d(output), x the input, y the output
FORMULAS = {
    "Linear": ("y = x Wᵀ + b", "dL/dW = gᵀ x,  dL/db = Σ g,  dL/dx = g W"),
    "Tanh": ("y = tanh(x)", "dL/dx = g · (1 − y²)"),
    "Sigmoid": ("y = 1 / (1 + e^−x)", "dL/dx = g · y (1 − y)"),
    "ReLU": ("y = max(x, 0)", "dL/dx = g · [x > 0]"),
    "LeakyReLU": ("y = x if x > 0 else 0.01 x", "dL/dx = g · (1 if x > 0 else 0.01)"),
    "ELU": ("y = x if x > 0 else e^x − 1", "dL/dx = g · (1 if x > 0 else y + 1)"),
    "GELU": ("y = x Φ(x)", "dL/dx = g · (Φ(x) + x φ(x))"),
    "Softplus": ("y = log(1 + e^x)", "dL/dx = g · σ(x)"),
    "SiLU": ("y = x σ(x)", "dL/dx = g · σ(x)(1 + x (1 − σ(x)))"),
    "Dropout": ("y = x (eval mode: the identity)", "dL/dx = g"),
    "BatchNorm1d": ("y = γ (x − running mean) / √(running var + ε) + β", "dL/dx = g γ / √(running var + ε)"),
    "MSELoss": ("L = mean((ŷ − t)²)", "dL/dŷ = 2 (ŷ − t) / n"),
    "L1Loss": ("L = mean(|ŷ − t|)", "dL/dŷ = sign(ŷ − t) / n"),
    "HuberLoss": ("L = mean(huber(ŷ − t))", "dL/dŷ = clamp(ŷ − t, −δ, δ) / n"),
    "BCELoss": ("L = −mean(t log ŷ + (1 − t) log(1 − ŷ))", "dL/dŷ = (ŷ − t) / (ŷ (1 − ŷ)) / n"),
    "BCEWithLogitsLoss": ("L = −mean(t log σ(ŷ) + (1 − t) log(1 − σ(ŷ)))", "dL/dŷ = (σ(ŷ) − t) / n"),
    "CrossEntropyLoss": ("L = −log softmax(ŷ)[t]", "dL/dŷ = (softmax(ŷ) − onehot(t)) / n"),
}


def _list(t: torch.Tensor) -> list:
    return t.detach().reshape(t.shape[1:] if t.dim() > 1 and t.shape[0] == 1 else t.shape).tolist()


def inspect(session: Session, index: int) -> dict[str, Any]:
    """The inspector's numbers for raw point ``index`` (a training or a test point)."""
    built = session.built
    if not 0 <= index < len(session.points):
        raise SetupError(f"inspect: point index must be from 0 to {len(session.points) - 1}, got {index}")
    model, loss_fn, experiment = built.model, built.trainer.loss_fn, built.experiment
    in_train = bool((built.train_idx == index).any())
    rows = built.train_idx if in_train else built.test_idx
    row = int((rows == index).nonzero()[0, 0])
    split = experiment.data.train if in_train else experiment.data.test
    x, y = experiment.split("train" if in_train else "test")  # what the trainer reads (inputs, targets)
    x, label = x[row : row + 1], y[row : row + 1]
    values, grads, target, loss = _passes(model, loss_fn, built.trainer.task, x, label)
    layers = _layers(model, values, grads, _updates(built, list(model.parameters())))
    loss_kind = type(loss_fn).__name__
    return {
        "index": index,
        "split": "train" if in_train else "test",
        "raw": session.points[index].tolist(),
        "features": _list(split[0][row : row + 1]),
        "input": _list(x),
        "target": _list(target),
        "loss": float(loss),
        "loss_kind": loss_kind,
        "loss_forward": FORMULAS.get(loss_kind, ("", ""))[0],
        "loss_backward": FORMULAS.get(loss_kind, ("", ""))[1],
        "grad_loss": _list(grads[-1]),
        "layers": layers,
        "step": built.trainer.loop.global_step,
        "optimizer": f"{type(built.optimizer).__name__}(lr={built.optimizer.param_groups[0]['lr']:g})",
    }


def _passes(model: Any, loss_fn: Any, task: Any, x: torch.Tensor, label: torch.Tensor) -> tuple:
    """One sample forward (module by module, in eval mode) and backward: the values, dL/d(each value), the
    target and the loss; the parameters' ``.grad`` then hold this sample's gradient alone."""
    was_training = model.training
    model.eval()
    try:
        # torch's grad mode on: an eval-mode forward records for its backward only then (no tensor here
        # requires grad, so torch builds no graph); nothing may be inside minidl.no_grad() either
        with torch.enable_grad():
            values = [x]
            for module in model:
                values.append(module(values[-1]))
            target = task.targets(label, loss_fn, values[-1].shape[1], values[-1].dtype)
            loss = loss_fn(values[-1], target)
            model.zero_grad()
            grads = [loss_fn.backward()]
            for module in reversed(list(model)):
                grads.append(module.backward(grads[-1]))
    finally:
        model.train(was_training)
    return values, grads[::-1], target, loss  # grads[k] = dL/d values[k]


def _layers(model: Any, values: list, grads: list, updates: list[torch.Tensor]) -> list[dict[str, Any]]:
    """Per module: its formulas, input, output, the gradients through it, its parameters' numbers."""
    layers, k = [], 0
    for i, module in enumerate(model):
        name = type(module).__name__
        entry: dict[str, Any] = {
            "index": i,
            "module": repr(module),
            "kind": name,
            "forward": FORMULAS.get(name, ("", ""))[0],
            "backward": FORMULAS.get(name, ("", f"see {name}.backward"))[1],
            "input": _list(values[i]),
            "output": _list(values[i + 1]),
            "grad_output": _list(grads[i + 1]),
            "grad_input": _list(grads[i]),
            "params": {},
        }
        for pname, p in module.named_parameters():
            entry["params"][pname] = {"value": p.data.tolist(), "grad": p.grad.tolist(), "update": updates[k].tolist()}
            k += 1
        layers.append(entry)
    return layers


def _updates(built: Any, params: list[Parameter]) -> list[torch.Tensor]:
    """The change the optimizer would make to each parameter if it stepped on this sample's gradient now
    (its state: momentum, moments, step count, lr, as they are), computed on copies."""
    copies = []
    for p in params:
        c = Parameter(p.data.clone())
        c.grad.copy_(p.grad)
        copies.append(c)
    shadow = build("optimizer", built.config["optimizer"], copies)
    shadow.load_state_dict(built.optimizer.state_dict())
    shadow.step()
    return [c.data - p.data for c, p in zip(copies, params, strict=True)]
