"""Experiment: a resolved config turned into data, model, loss, optimizer and scheduler, ready to fit.

``Experiment(config)`` has no side effects beyond reading data: it is what ``minidl train`` runs, and the
Python API for reproducing a run: ``Experiment(json.load(open("runs/x/config.json"))).fit()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from minidl.data.source import DataBundle, load_data
from minidl.data.standardize import Standardizer
from minidl.errors import ConfigError
from minidl.train.components import build, build_model, output_activation
from minidl.train.saved_model import SavedModel
from minidl.train.task import Task
from minidl.train.trainer import EpochResult, Evaluation, Trainer


class Experiment:
    """Everything a run needs, built in a fixed order so the same config gives the same run.

    Data first (each split from its own generator), then standardisation fitted on the training split,
    then ``torch.manual_seed(seed)`` and the loss, the model's initial weights, the optimizer and the
    scheduler.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.data: DataBundle = load_data(config["data"], config["seed"])
        if self.data.source == "csv":  # record what "the last column" and "auto" turned out to be
            config["data"]["target"] = self.data.target_name
            config["data"]["task"] = "regression" if self.data.kind == "regression" else "classification"
        self.task = Task(self.data.kind, len(self.data.classes))
        self.standardizer = Standardizer().fit(self.data.train[0]) if config["data"]["standardize"] else None
        torch.manual_seed(config["seed"])
        self.loss_fn = build("loss", config["loss"])
        if self.loss_fn.class_index_target and not self.task.is_classification:
            raise ConfigError(
                f"loss {config['loss']['name']!r} needs class labels, but {self.data.name} has a regression target "
                "(use a regression loss such as mse, or set data.task = classification)"
            )
        out_features = self.task.out_features(self.loss_fn, 1)
        self.output_activation = output_activation(self.loss_fn)
        self.model = build_model(self.data.in_features, config["model"]["hidden"], out_features, self.output_activation)
        self.optimizer = build("optimizer", config["optimizer"], self.model.parameters())
        self.scheduler = build("scheduler", config["scheduler"], self.optimizer)
        self.trainer = Trainer(self.model, self.loss_fn, self.optimizer, task=self.task, scheduler=self.scheduler)
        with torch.no_grad():  # a loss that cannot take these targets fails now, before any file is written
            self.trainer.evaluate(*self.split("train"))

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw features -> what the model reads (standardised with the training split's statistics)."""
        return self.standardizer(x) if self.standardizer is not None else x

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The ``train``, ``val`` or ``test`` split, standardised; None where there is no such split."""
        split = getattr(self.data, name)
        return None if split is None else (self.inputs(split[0]), split[1])

    def fit(self, callbacks: Sequence[Any] = ()) -> list[EpochResult]:
        """Train for ``epochs`` epochs; ``callbacks`` hear about every epoch (see ``Trainer``)."""
        self.trainer.callbacks = list(callbacks)
        x, y = self.split("train")
        with torch.no_grad():
            return self.trainer.fit(
                x,
                y,
                epochs=self.config["epochs"],
                batch_size=self.config["batch_size"],
                seed=self.config["seed"],
                validation_data=self.split("val"),
            )

    def evaluate(self, split: str = "test") -> Evaluation:
        x, y = self.split(split)
        with torch.no_grad():
            return self.trainer.evaluate(x, y)

    def saved_model(self) -> SavedModel:
        return SavedModel(
            model=self.model,
            loss_fn=self.loss_fn,
            task=self.task,
            standardizer=self.standardizer,
            hidden=self.config["model"]["hidden"],
            output_activation=self.output_activation,
            loss_config=self.config["loss"],
            classes=self.data.classes,
            feature_names=self.data.feature_names,
            target_name=self.data.target_name,
        )
