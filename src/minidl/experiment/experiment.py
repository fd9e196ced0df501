"""Experiment: a resolved config turned into data, model, loss, optimizer and scheduler, ready to fit.

``Experiment(config)`` has no side effects beyond reading data: it is what ``minidl train`` runs, and the
Python API for reproducing a run: ``Experiment(json.load(open("runs/x/config.json"))).fit()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minidl.checks import is_number
from minidl.data.source import absolute_path
from minidl.data.standardize import Standardizer
from minidl.data.target_scaler import TargetScaler
from minidl.device import resolve_device, resolve_dtype
from minidl.distributed import DistContext
from minidl.distributed.trainer import DistributedTrainer
from minidl.errors import CheckpointError, ConfigError, MinidlError
from minidl.experiment.checkpoint_check import check_fits
from minidl.experiment.class_weight import apply_class_weight
from minidl.experiment.components import build, build_model, check_batchnorm, output_activation, resolve_component
from minidl.experiment.data_identity import load_recorded
from minidl.experiment.recipe import AUTO, describe, loss_name
from minidl.experiment.report import in_data_units, with_baseline
from minidl.experiment.saved_model import SavedModel
from minidl.persist.checkpoint import Checkpoint
from minidl.train.early_stopping import EarlyStopping
from minidl.train.metrics import target_mean
from minidl.train.state import FitStart, restore_state
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Evaluation, Trainer


class Experiment:
    """Everything a run needs, built in a fixed order so the same config gives the same run.

    Data first (each split from its own generator, on the CPU, in ``dtype``: ``data`` stays there, and
    ``split`` gives a standardised copy on the device), then standardisation fitted on the training split,
    then ``torch.manual_seed(seed)`` and the loss, the model's initial weights (drawn on the CPU, then
    moved: the same start on any device), the optimizer (created after the move, so its state lives with
    the parameters) and the scheduler.

    ``context`` says where this process computes and, under torchrun, its rank; without one the run is a
    single process on the config's ``device``. With several ranks the trainer is a ``DistributedTrainer``
    (``batch_size`` is the global batch size), otherwise a plain ``Trainer``.
    """

    def __init__(self, config: dict[str, Any], context: DistContext | None = None) -> None:
        self.config = config
        self.context = (
            context if context is not None else DistContext(device=resolve_device(config.get("device", "cpu")))
        )
        device, dtype = self.context.device, resolve_dtype(config.get("dtype", "float32"))
        self.device = device
        self.data, self.data_file = load_recorded(config["data"], config["seed"], dtype)  # raw, CPU; a CSV's sha256
        if self.data.source == "csv":  # record what "the last column" and "auto" turned out to be, and where
            config["data"]["dataset"] = absolute_path(config["data"]["dataset"])
            config["data"]["target"] = self.data.target_name
            config["data"]["task"] = "regression" if self.data.kind == "regression" else "classification"
        self.task = Task(self.data.kind, len(self.data.classes))
        self.standardizer = Standardizer().fit(self.data.train[0]) if config["data"]["standardize"] else None
        scale_target = self.task.kind == "regression" and config["data"].get("standardize_target", False)
        self.target_scaler = TargetScaler.fit(self.data.train[1]) if scale_target else None
        self.recipe = choose_loss(config, self.task)
        # class_weight: computed on the training split and written into config["loss"] (config.json)
        self.class_weight = apply_class_weight(config, self.task, self.data.train[1], self.data.classes, self.data.name)
        check_batchnorm(
            config["model"]["hidden"], self.context.world_size, len(self.data.train[0]), config["batch_size"]
        )
        torch.manual_seed(config["seed"])
        self.loss_fn = build("loss", config["loss"]).to(device=device, dtype=dtype)  # weight buffers follow
        check_loss(self.loss_fn, config["loss"]["name"], self.task, self.data.name)
        out_features = self.task.out_features(self.loss_fn, 1)
        self.output_activation = output_activation(self.loss_fn)
        dropout = config["model"].get("dropout", 0.0)
        self.model = build_model(
            self.data.in_features, config["model"]["hidden"], out_features, self.output_activation, dropout=dropout
        )
        self.model.to(device=device, dtype=dtype)
        lr = config["optimizer"].get("lr")
        if is_number(lr) and not lr > 0:  # torch allows 0: useless here
            raise ConfigError(f"optimizer.lr must be > 0, got {lr}")
        self.optimizer = self.build_optimizer(self.model)
        self.scheduler = self.build_scheduler(self.optimizer)
        parts = (self.model, self.loss_fn, self.optimizer)
        if self.context.distributed:
            self.trainer = DistributedTrainer(*parts, context=self.context, task=self.task, scheduler=self.scheduler)
        else:  # one process: the plain loop, no flat-buffer bookkeeping per step
            self.trainer = Trainer(*parts, task=self.task, scheduler=self.scheduler)
        self.trainer.compile = config.get("compile", False)  # Trainer(compile=True): minidl.train.compiled
        with torch.no_grad():  # a loss that cannot take these targets fails now, before any file is written
            self.trainer.evaluate(*self.split("train"))
        self.early_stopping = early_stopping(config, self.data.val is not None, self.task.is_classification)

    def build_optimizer(self, model: Any) -> Any:
        """The config's optimizer over ``model``'s parameters (the run's own, or a copy's)."""
        return build("optimizer", self.config["optimizer"], model.parameters())

    def build_scheduler(self, optimizer: Any) -> Any:
        """The config's scheduler of ``optimizer``, or None."""
        return build("scheduler", self.config["scheduler"], optimizer)

    def stateful_callbacks(self) -> list[Any]:
        """The callbacks of this experiment whose state a checkpoint holds (early stopping)."""
        return [self.early_stopping] if self.early_stopping is not None else []

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features -> what the model reads (standardised with the training split's statistics)."""
        return self.standardizer(x) if self.standardizer is not None else x

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The ``train``, ``val`` or ``test`` split, standardised (on the CPU: the same numbers for every device)
        and copied to the device; None where there is no such split. Regression targets are standardised
        too where ``data.standardize_target`` says so."""
        split = getattr(self.data, name)
        if split is None:
            return None
        y = self.target_scaler.transform(split[1]) if self.target_scaler is not None else split[1]
        return self.inputs(split[0]).to(self.device), y.to(self.device)

    def fit(self, callbacks: Sequence[Any] = (), *, start: FitStart | None = None) -> list[EpochResult]:
        """Train for ``epochs`` epochs; ``callbacks`` hear about every epoch (see ``Trainer``).

        ``start`` (from ``restore``) continues a checkpointed run exactly where it stopped.
        """
        self.trainer.callbacks = [*([self.early_stopping] if self.early_stopping else []), *callbacks]
        x, y = self.split("train")
        with torch.no_grad():
            return self.trainer.fit(
                x,
                y,
                epochs=self.config["epochs"],
                batch_size=self.config["batch_size"],
                seed=self.config["seed"],
                validation_data=self.split("val"),
                start=start,
            )

    def restore(self, checkpoint: Checkpoint, source: str, callbacks: Sequence[Any] = ()) -> FitStart:
        """Load a checkpoint of this experiment into the model, optimizer and scheduler; where to go on.

        Any mismatch (another architecture, optimizer or scheduler; a state of the wrong kind or shape; a
        step past the epoch's end) is a ``CheckpointError`` naming ``source``, raised before anything
        changes (``checkpoint_check``). ``callbacks``: the stateful ones you will give ``fit``.
        """
        try:
            check_fits(self, checkpoint, callbacks)  # a dry run on copies, before anything changes
            start = restore_state(self.trainer, checkpoint)
        except MinidlError as error:
            raise CheckpointError(f"checkpoint {source} does not fit this run: {error}") from None
        steps = -(-len(self.data.train[0]) // self.config["batch_size"])
        if start.step >= steps:
            raise CheckpointError(f"checkpoint {source}: step {start.step} is past the end of an epoch ({steps} steps)")
        return start

    def evaluate(self, split: str = "test") -> Evaluation:
        """Loss and metrics on a split; for regression also the MSE of predicting the training mean."""
        x, y = self.split(split)
        raw_y = getattr(self.data, split)[1]
        with torch.no_grad():
            evaluation = self.trainer.evaluate(x, y)
            if self.target_scaler is not None:  # metrics in the data's units
                evaluation = in_data_units(evaluation, self.trainer.predict(x), raw_y, self.target_scaler)
        return with_baseline(evaluation, raw_y, self.data.train[1])

    def saved_model(self) -> SavedModel:
        """The trained model as ``model.safetensors`` stores it (``to_bytes`` copies the tensors to the CPU)."""
        return SavedModel(
            model=self.model,
            loss_fn=self.loss_fn,
            task=self.task,
            standardizer=self.standardizer,
            hidden=self.config["model"]["hidden"],
            dropout=self.config["model"].get("dropout", 0.0),
            output_activation=self.output_activation,
            loss_config=self.config["loss"],
            classes=self.data.classes,
            feature_names=self.data.feature_names,
            target_name=self.data.target_name,
            target_mean=None if self.task.is_classification else target_mean(self.data.train[1]),
            target_scaler=self.target_scaler,
            data_file=self.data_file,
        )


def check_loss(loss_fn: Any, name: str, task: Task, data_name: str) -> None:
    """A loss the run can train with: one number per batch, and class labels only for a classification task."""
    reduction = getattr(loss_fn, "reduction", "mean")
    if reduction not in ("mean", "sum"):  # one loss per element cannot drive the optimizer or be reported
        raise ConfigError(f"loss {name!r}: reduction must be 'mean' or 'sum' to train, got {reduction!r}")
    if loss_fn.class_index_target and not task.is_classification:
        raise ConfigError(
            f"loss {name!r} needs class labels, but {data_name} has a regression target "
            "(use a regression loss such as mse, or set data.task = classification)"
        )


ES_KEYS = ("monitor", "min_delta", "restore_best_weights")


def early_stopping(config: dict[str, Any], has_val: bool, classification: bool) -> EarlyStopping | None:
    """The ``EarlyStopping`` callback the config asks for (its settings filled in, for config.json), or None.

    It comes before any other callback: its decision and state are there when a checkpoint is written.
    """
    if "early_stopping" not in config:
        given = [key for key in ES_KEYS if key in config]
        if given:
            raise ConfigError(f"{', '.join(given)}: only with early_stopping (--early-stopping PATIENCE)")
        return None
    config.setdefault("monitor", "val_loss")
    config.setdefault("min_delta", 0.0)
    config.setdefault("restore_best_weights", True)
    monitor = config["monitor"]
    if monitor.startswith("val_") and not has_val:
        raise ConfigError(f"monitor {monitor!r} needs validation data: set data.val_fraction > 0, or monitor loss")
    if monitor.endswith("accuracy") and not classification:
        raise ConfigError(f"monitor {monitor!r}: a regression run has no accuracy; monitor val_loss or loss")
    return EarlyStopping(
        monitor,
        patience=config["early_stopping"],
        min_delta=config["min_delta"],
        restore_best_weights=config["restore_best_weights"],
    )


def choose_loss(config: dict[str, Any], task: Task) -> str | None:
    """The recipe's loss for ``task`` where ``loss.name`` is still "auto"; the line that says so, or None."""
    if config["loss"].get("name") != AUTO:
        return None
    user = {**config["loss"], "name": loss_name(task.kind)}
    config["loss"] = resolve_component("loss", user, {"name": user["name"]}, config)
    config["recipe"] = "by task"
    return describe(config, task.kind, task.num_classes)
