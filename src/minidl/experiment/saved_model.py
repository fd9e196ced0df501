"""SavedModel: a trained model with everything needed to use it again, in one safetensors file.

The tensors are the model's state_dict (torch.nn's names: ``0.weight``, …) plus ``standardizer.mean`` and
``standardizer.std`` when the features were standardised. The safetensors metadata holds one JSON string,
``minidl``, with the architecture, the task, the loss and the class labels. Nothing is ever pickled.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.data.standardize import Standardizer
from minidl.device import DTYPES
from minidl.errors import CheckpointError, MinidlError
from minidl.experiment.components import build, build_model, table
from minidl.nn.loss import Loss
from minidl.nn.mlp import parse_hidden
from minidl.nn.module import Module
from minidl.persist.safetensors_file import load_tensors, parse_safetensors, read_regular_file
from minidl.train.task import KINDS, Task
from minidl.train.trainer import Evaluation, evaluate_model

FORMAT = "minidl.saved_model/1"


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
    dropout: float = 0.0
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
            "dropout": self.dropout,
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
        """Rebuild a model from ``to_bytes``'s bytes; anything else raises ``CheckpointError`` naming ``source``.

        The bytes are checked as safetensors before the safetensors library sees them and the metadata is
        checked against the tensors before a model is built, so no file can run code or allocate more
        than its own size.
        """
        path = Path(source)
        _, header = parse_safetensors(data, path, "model")
        meta = _metadata(header, source)
        tensors = load_tensors(data, path, "model")
        try:
            return cls._build(meta, tensors, source)
        except MinidlError as error:
            if isinstance(error, CheckpointError):
                raise
            raise CheckpointError(f"model {source}: {error}") from None
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError, OverflowError) as error:
            raise CheckpointError(
                f"model {source}: invalid minidl metadata ({type(error).__name__}: {error})"
            ) from None

    @classmethod
    def _build(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor], source: str) -> SavedModel:
        task = Task(meta["task"]["kind"], meta["task"]["num_classes"])
        if task.kind not in KINDS or not _is_count(task.num_classes):
            raise CheckpointError(f"model {source}: invalid task {meta['task']!r:.80}")
        if meta["dtype"] not in DTYPES:
            raise CheckpointError(f"model {source}: unsupported dtype {meta['dtype']!r:.40}")
        in_features, out_features, dropout = meta["in_features"], meta["out_features"], meta.get("dropout", 0.0)
        output = meta.get("output_activation")
        if not (_is_count(in_features) and in_features >= 1 and _is_count(out_features) and out_features >= 1):
            raise CheckpointError(f"model {source}: invalid layer sizes {in_features!r:.40}, {out_features!r:.40}")
        weights = {k: v for k, v in tensors.items() if not k.startswith("standardizer.")}
        widths = [in_features, *(size for size, _ in parse_hidden(meta["hidden"])), out_features]
        expected = sum((a + 1) * b for a, b in itertools.pairwise(widths))  # weights and biases
        found = sum(t.numel() for t in weights.values())
        if expected != found:  # checked before building, so a crafted header cannot make a huge model
            raise CheckpointError(
                f"model {source}: its metadata describes {expected} parameters, the file holds {found}"
            )
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: keep the RNG as it was
            model = build_model(
                in_features, meta["hidden"], out_features, output, dtype=DTYPES[meta["dtype"]], dropout=dropout
            )
        model.load_state_dict(weights)
        standardizer = None
        stats = {k: v for k, v in tensors.items() if k.startswith("standardizer.")}
        if stats:
            mean, std = stats.get("standardizer.mean"), stats.get("standardizer.std")
            if set(stats) != {"standardizer.mean", "standardizer.std"} or any(
                t.shape != (in_features,) or not t.is_floating_point() for t in (mean, std)
            ):
                raise CheckpointError(
                    f"model {source}: standardizer tensors must be mean and std of {in_features} floats"
                )
            standardizer = Standardizer(mean, std)
        loss_config = meta["loss"]
        if not isinstance(loss_config, dict) or loss_config.get("name") not in table("loss"):
            raise CheckpointError(f"model {source}: unknown loss {loss_config!r:.80}")
        classes, names = meta.get("classes", []), meta.get("feature_names", [])
        if not isinstance(classes, list) or not isinstance(names, list):
            raise CheckpointError(f"model {source}: classes and feature_names must be lists")
        return cls(
            model=model,
            loss_fn=build("loss", loss_config),
            task=task,
            standardizer=standardizer,
            hidden=meta["hidden"],
            loss_config=loss_config,
            output_activation=output,
            dropout=dropout,
            classes=classes,
            feature_names=[str(name) for name in names],
            target_name=meta.get("target"),
        )

    @classmethod
    def load(cls, path: str | Path) -> SavedModel:
        """Read ``model.safetensors``: a regular file only (a FIFO or a folder is refused, never waited on)."""
        path = Path(path)
        return cls.from_bytes(read_regular_file(path, "model"), str(path))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _metadata(header: dict[str, str], source: str) -> dict[str, Any]:
    """The ``minidl`` JSON of a checked safetensors header."""
    try:
        meta = json.loads(header["minidl"])
    except (KeyError, ValueError, RecursionError):
        raise CheckpointError(
            f"model {source}: not a minidl model (no minidl metadata in its safetensors header)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"model {source}: not a minidl model file of format {FORMAT}")
    return meta
