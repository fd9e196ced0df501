"""SavedModel: a trained model with everything needed to use it again, in one safetensors file.

The tensors are the model's state_dict (torch.nn's names: ``0.weight``, …) plus ``standardizer.mean`` and
``standardizer.std`` when the features were standardised. The safetensors metadata holds one JSON string,
``minidl``, with the architecture, the task, the loss and the class labels. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.data.standardize import Standardizer
from minidl.errors import CheckpointError
from minidl.nn.loss import Loss
from minidl.nn.module import Module
from minidl.train.components import build, build_model
from minidl.train.task import Task
from minidl.train.trainer import Evaluation, evaluate_model

FORMAT = "minidl.saved_model/1"
MAX_HEADER = 100_000_000


@dataclass
class SavedModel:
    """``predict(x)`` and ``evaluate(x, y)`` take raw features: the stored standardisation is applied."""

    model: Module
    loss_fn: Loss
    task: Task
    standardizer: Standardizer | None
    hidden: str
    loss_config: dict[str, Any]
    output_activation: str | None = None
    classes: list[Any] = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    target_name: str | None = None

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardizer(x) if self.standardizer is not None else x

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw output for raw features ``x``, in eval mode."""
        self.model.eval()
        with torch.no_grad():
            return self.model(self.inputs(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class indices (into ``classes``) for classification, outputs of shape (N, k) for regression."""
        return self.task.predict(self.output(x), self.loss_fn)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        with torch.no_grad():
            return evaluate_model(self.model, self.loss_fn, self.task, self.inputs(x), y)

    # -- the file -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        from safetensors.torch import save

        first, last = self.model[0], [m for m in self.model if hasattr(m, "out_features")][-1]
        meta = {
            "format": FORMAT,
            "in_features": first.in_features,
            "hidden": self.hidden,
            "out_features": last.out_features,
            "output_activation": self.output_activation,
            "dtype": str(first.weight.data.dtype).removeprefix("torch."),
            "task": {"kind": self.task.kind, "num_classes": self.task.num_classes},
            "loss": self.loss_config,
            "classes": self.classes,
            "feature_names": self.feature_names,
            "target": self.target_name,
        }
        tensors = {k: v.detach().cpu().clone().contiguous() for k, v in self.model.state_dict().items()}
        if self.standardizer is not None:
            for key, value in self.standardizer.state_dict().items():
                tensors[f"standardizer.{key}"] = value.detach().cpu().clone().contiguous()
        return save(tensors, metadata={"minidl": json.dumps(meta)})

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "model") -> SavedModel:
        from safetensors.torch import load

        meta = _metadata(data, source)
        try:
            tensors = load(data)
        except Exception as error:
            raise CheckpointError(f"{source}: not a valid safetensors file ({error})") from None
        try:
            task = Task(meta["task"]["kind"], meta["task"]["num_classes"])
            dtype = getattr(torch, meta["dtype"])
            with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: keep the RNG as it was
                output = meta.get("output_activation")
                model = build_model(meta["in_features"], meta["hidden"], meta["out_features"], output, dtype=dtype)
            loss_config = meta["loss"]
        except (KeyError, TypeError, AttributeError) as error:
            raise CheckpointError(f"{source}: incomplete minidl metadata ({error!r})") from None
        weights = {k: v for k, v in tensors.items() if not k.startswith("standardizer.")}
        model.load_state_dict(weights)
        standardizer = None
        if "standardizer.mean" in tensors:
            standardizer = Standardizer(tensors["standardizer.mean"], tensors["standardizer.std"])
        return cls(
            model=model,
            loss_fn=build("loss", loss_config),
            task=task,
            standardizer=standardizer,
            hidden=meta["hidden"],
            loss_config=loss_config,
            output_activation=output,
            classes=meta.get("classes", []),
            feature_names=meta.get("feature_names", []),
            target_name=meta.get("target"),
        )

    @classmethod
    def load(cls, path: str | Path) -> SavedModel:
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{path}: no such model file") from None
        except IsADirectoryError:
            raise CheckpointError(f"{path}: is a folder, not a model file") from None
        return cls.from_bytes(data, str(path))


def _metadata(data: bytes, source: str) -> dict[str, Any]:
    """The ``minidl`` JSON of a safetensors file's header, read without touching the tensor data."""
    if len(data) < 8:
        raise CheckpointError(f"{source}: truncated ({len(data)} bytes), not a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise CheckpointError(f"{source}: header length {n} does not fit the file's {len(data)} bytes")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
        meta = json.loads(header["__metadata__"]["minidl"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise CheckpointError(f"{source}: not a minidl model (no minidl metadata in its safetensors header)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a minidl model file of format {FORMAT}")
    return meta
