"""SavedModel: a trained model with everything needed to use it again, in one safetensors file.

The tensors are the model's state_dict (torch.nn's names: ``0.weight``, …) plus ``standardizer.mean`` and
``standardizer.std`` when the features were standardised, and for regression ``target.mean`` (the training
targets' mean, for the baseline MSE) and ``target.std`` when the targets were standardised for training.
The safetensors metadata holds one JSON string, ``minidl``, with the architecture, the task, the loss, the
class labels and, for a model trained on a CSV file, that file's path, size and SHA-256 (``minidl evaluate``
checks it before rebuilding the run's test split from the file). Nothing is ever pickled.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.data.standardize import Standardizer
from minidl.data.target_scaler import TARGET_MEAN, TARGET_STD, TargetScaler, read_target_stats
from minidl.device import DTYPES
from minidl.errors import CheckpointError, ConfigError, MinidlError
from minidl.experiment.components import build, build_model, table
from minidl.experiment.data_identity import is_file_record
from minidl.experiment.model_metadata import FORMAT, check_metadata, is_count, read_metadata
from minidl.experiment.report import in_data_units
from minidl.limits import short_repr
from minidl.nn.loss import Loss
from minidl.nn.mlp import hidden_layers
from minidl.nn.module import Module
from minidl.persist.safetensors_file import load_tensors, parse_safetensors, read_regular_file
from minidl.train.metrics import RegressionMetrics
from minidl.train.proba import probabilities
from minidl.train.task import Task
from minidl.train.trainer import Evaluation, evaluate_model


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
    target_mean: torch.Tensor | None = None  # regression: the training targets' mean, (k,) float64
    target_scaler: TargetScaler | None = None  # regression trained on standardised targets
    data_file: dict[str, Any] | None = None  # the CSV it trained on: {"path", "size", "sha256"}

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardizer(x) if self.standardizer is not None else x

    def output(self, x: torch.Tensor) -> torch.Tensor:
        """The model's raw output for raw features ``x``, in eval mode."""
        self.model.eval()
        with torch.no_grad():
            return self.model(self.inputs(x))

    def predict_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Classification: class indices (into ``classes``), shape (N,). Regression: outputs in the data's
        units (a standardised target's scaling undone), shape (N, k)."""
        output = self.output(x)
        if self.target_scaler is not None:
            output = self.target_scaler.inverse(output)
        return self.task.predict(output, self.loss_fn)

    def predict(self, x: torch.Tensor) -> list[Any] | torch.Tensor:
        """Classification: a list of N class labels, as the training data named them (what ``minidl
        predict`` writes). Regression: the predicted values, a tensor of shape (N, k)."""
        predicted = self.predict_indices(x)
        if not self.task.is_classification:
            return predicted
        return self.labels(predicted)

    def labels(self, indices: torch.Tensor) -> list[Any]:
        """Class indices -> the training data's labels (the index itself for a model saved without them)."""
        return [self.classes[i] if i < len(self.classes) else i for i in indices.tolist()]

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities, shape (N, len(classes)): column ``i`` is P(``classes[i]``), rows sum to 1.

        Only for models whose loss models probabilities (cross-entropy, bce-logits, bce); others raise
        ``ConfigError``, as do regression models.
        """
        if not self.task.is_classification:
            raise ConfigError("predict_proba needs a classification model; this one does regression")
        return probabilities(self.output(x), self.loss_fn, self.task.num_classes)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Evaluation:
        """Loss and metrics on raw features ``x``; for regression also the MSE of predicting the training
        mean, where the file stores it."""
        with torch.no_grad():
            if self.target_scaler is None:
                evaluation = evaluate_model(self.model, self.loss_fn, self.task, self.inputs(x), y)
            else:  # the loss on standardised targets, as in training; the metrics in the data's units
                scaled = self.target_scaler.transform(y)
                evaluation = evaluate_model(self.model, self.loss_fn, self.task, self.inputs(x), scaled)
                evaluation = in_data_units(evaluation, self.output(x), y, self.target_scaler)
        if self.target_mean is not None and isinstance(evaluation.metrics, RegressionMetrics):
            evaluation.metrics = evaluation.metrics.with_baseline(y, self.target_mean)
        return evaluation

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
        if self.data_file is not None:
            meta["data_file"] = self.data_file
        tensors = {k: v.detach().cpu().clone().contiguous() for k, v in self.model.state_dict().items()}
        if self.standardizer is not None:
            for key, value in self.standardizer.state_dict().items():
                tensors[f"standardizer.{key}"] = value.detach().cpu().clone().contiguous()
        if self.target_mean is not None:
            tensors[TARGET_MEAN] = self.target_mean.detach().cpu().double().clone().contiguous()
        if self.target_scaler is not None:
            tensors[TARGET_STD] = self.target_scaler.std.detach().cpu().double().clone().contiguous()
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
        meta = read_metadata(header, source)
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
        check_metadata(meta, source)  # every number against what the file holds, before any allocation
        task = Task(meta["task"]["kind"], meta["task"]["num_classes"])
        model, standardizer = _model(meta, tensors, source), _standardizer(tensors, meta["in_features"], source)
        out_features, output, dropout = meta["out_features"], meta.get("output_activation"), meta.get("dropout", 0.0)
        loss_config = meta["loss"]
        if not isinstance(loss_config, dict) or loss_config.get("name") not in table("loss"):
            raise CheckpointError(f"model {source}: unknown loss {loss_config!r:.80}")
        classes, names = meta.get("classes", []), meta.get("feature_names", [])
        if not isinstance(classes, list) or not isinstance(names, list):
            raise CheckpointError(f"model {source}: classes and feature_names must be lists")
        mean, scaler = read_target_stats(tensors, out_features, f"model {source}")
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
            target_mean=mean,
            target_scaler=scaler,
            data_file=_data_file(meta.get("data_file"), source),
        )

    @classmethod
    def load(cls, path: str | Path) -> SavedModel:
        """Read ``model.safetensors``: a regular file only (a FIFO or a folder is refused, never waited on)."""
        path = Path(path)
        return cls.from_bytes(read_regular_file(path, "model"), str(path))


def _data_file(record: Any, source: str) -> dict[str, Any] | None:
    if record is not None and not is_file_record(record):
        raise CheckpointError(f"model {source}: invalid data_file record {short_repr(record)}")
    return record


def _model(meta: dict[str, Any], tensors: dict[str, torch.Tensor], source: str) -> Module:
    """The network the metadata describes, with the file's weights (their count checked before building)."""
    if meta["dtype"] not in DTYPES:
        raise CheckpointError(f"model {source}: unsupported dtype {meta['dtype']!r:.40}")
    in_features, out_features, dropout = meta["in_features"], meta["out_features"], meta.get("dropout", 0.0)
    if not (is_count(in_features) and in_features >= 1 and is_count(out_features) and out_features >= 1):
        raise CheckpointError(f"model {source}: invalid layer sizes {in_features!r:.40}, {out_features!r:.40}")
    weights = {k: v for k, v in tensors.items() if not k.startswith(("standardizer.", "target."))}
    layers = hidden_layers(meta["hidden"])
    widths = [in_features, *(layer.size for layer in layers), out_features]
    expected = sum((a + 1) * b for a, b in itertools.pairwise(widths))  # weights and biases
    expected += sum(4 * layer.size + 1 for layer in layers if layer.bn)  # BatchNorm1d: 4 vectors, num_batches_tracked
    found = sum(t.numel() for t in weights.values())
    if expected != found:  # checked before building, so a crafted header cannot make a huge model
        raise CheckpointError(f"model {source}: its metadata describes {expected} parameters, the file holds {found}")
    output = meta.get("output_activation")
    with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: keep the RNG as it was
        model = build_model(
            in_features, meta["hidden"], out_features, output, dtype=DTYPES[meta["dtype"]], dropout=dropout
        )
    model.load_state_dict(weights)
    return model


def _standardizer(tensors: dict[str, torch.Tensor], in_features: int, source: str) -> Standardizer | None:
    """The features' standardisation, if the file holds one: the mean and std of ``in_features`` floats."""
    stats = {k: v for k, v in tensors.items() if k.startswith("standardizer.")}
    if not stats:
        return None
    mean, std = stats.get("standardizer.mean"), stats.get("standardizer.std")
    if set(stats) != {"standardizer.mean", "standardizer.std"} or any(
        t.shape != (in_features,) or not t.is_floating_point() for t in (mean, std)
    ):
        raise CheckpointError(f"model {source}: standardizer tensors must be mean and std of {in_features} floats")
    return Standardizer(mean, std)
