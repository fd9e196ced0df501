"""One setup built as a minidl experiment: data from the session's CSV, model, loss, optimizer, trainer.

``Built`` is what ``minidl train --config`` would build for the same config (``Experiment``), so the
export reproduces it; batch norm, which the config has no key for, is inserted afterwards (and then the
export says it cannot be reproduced).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minidl.data.split import split_indices
from minidl.experiment.components import build
from minidl.experiment.config import check_layer, resolve
from minidl.experiment.experiment import Experiment
from minidl.nn.batchnorm import BatchNorm1d
from minidl.nn.container import Sequential
from minidl.nn.linear import Linear
from minidl.playground.data import features, to_csv
from minidl.playground.setup import Setup
from minidl.train import Trainer

SCHEDULER_ARGS = {"step": {"step_size": 10, "gamma": 0.5}, "exponential": {"gamma": 0.98}, "cosine": {"T_max": 100}}
DATA_FILE = "data.csv"


def config_layer(setup: Setup, dataset: str) -> dict[str, Any]:
    """The ``minidl train`` config layer for ``setup`` (epochs is set by the export)."""
    optimizer: dict[str, Any] = {"name": setup.optim, "lr": setup.lr}
    if setup.momentum:
        optimizer["momentum"] = setup.momentum
    if setup.reg == "l2" and setup.reg_rate > 0:
        optimizer["weight_decay"] = setup.reg_rate
    scheduler = {"name": setup.sched, **SCHEDULER_ARGS.get(setup.sched, {})}
    return {
        "seed": setup.seed,
        "epochs": 1,
        "batch_size": setup.batch,
        "data": {
            "dataset": dataset,
            "target": "label",
            "header": True,
            "task": setup.problem,
            "val_fraction": 0.0,
            "test_fraction": (100 - setup.ratio) / 100,
            "standardize": setup.std,
            "standardize_target": False,  # targets are already in [-1, 1]; the page draws them as they are
        },
        "model": {
            "hidden": ",".join(f"{n}:{a}" for n, a in zip(setup.layers, setup.acts, strict=True)),
            "dropout": setup.dropout,
        },
        "loss": {"name": setup.loss},
        "optimizer": optimizer,
        "scheduler": scheduler,
    }


@dataclass
class Built:
    setup: Setup
    config: dict[str, Any]
    experiment: Experiment
    model: Sequential
    optimizer: Any
    trainer: Trainer
    train_idx: torch.Tensor  # which raw points are training points (in the trainer's row order)
    test_idx: torch.Tensor

    @property
    def linears(self) -> list[Linear]:
        return [m for m in self.model if isinstance(m, Linear)]


def build_session_model(setup: Setup, points: torch.Tensor, targets: torch.Tensor, folder: Path) -> Built:
    """Write the data to ``folder/data.csv`` and build the experiment on it; a bad setup raises MinidlError."""
    csv = folder / DATA_FILE
    csv.write_text(to_csv(points, targets, list(setup.features), setup.regression), encoding="utf-8")
    config = resolve(check_layer(config_layer(setup, str(csv)), "playground"))
    experiment = Experiment(config)
    model, optimizer, scheduler = experiment.model, experiment.optimizer, experiment.scheduler
    if setup.bn:  # after each hidden Linear; playground-only (no config key), so the optimizer is rebuilt
        layers = []
        for i, layer in enumerate(model):
            layers.append(layer)
            if isinstance(layer, Linear) and i < len(model) - 1 and any(isinstance(m, Linear) for m in model[i + 1 :]):
                layers.append(BatchNorm1d(layer.out_features))
        model = Sequential(*layers)
        optimizer = build("optimizer", config["optimizer"], model.parameters())
        scheduler = build("scheduler", config["scheduler"], optimizer)
    trainer = Trainer(model, experiment.loss_fn, optimizer, task=experiment.task, scheduler=scheduler)
    x, y = experiment.split("train")
    test_fraction = config["data"]["test_fraction"]
    train_idx, _, test_idx = split_indices(len(points), val_fraction=0.0, test_fraction=test_fraction, seed=setup.seed)
    expected = features(points[train_idx], list(setup.features)).to(experiment.data.train[0].dtype)
    if not torch.equal(expected, experiment.data.train[0]):  # the page's points must be the rows minidl trains on
        raise RuntimeError("playground: the training rows differ from the points drawn")
    trainer.start(x, y, batch_size=setup.batch, shuffle=True, seed=setup.seed, epochs=None)
    return Built(setup, config, experiment, model, optimizer, trainer, train_idx, test_idx)
