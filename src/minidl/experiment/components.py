"""Losses, optimizers and schedulers by name, with arguments checked against their constructors.

The name tables are read when a config is resolved (``minidl.nn.LOSSES``, ``minidl.optim.OPTIMIZERS``,
``minidl.optim.SCHEDULERS``), so a class added to a table is usable from configs and the command line
at once. A key is passed to a constructor only if its signature names it; any other key is an error
that lists the arguments the constructor takes.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from minidl.checks import is_number
from minidl.errors import ConfigError, MinidlError
from minidl.experiment.recipe import AUTO

TENSOR_ARGS = ("weight", "pos_weight")  # loss arguments torch takes as tensors
SKIP = {"self", "params", "optimizer"}  # filled in by the trainer, never by a config


def table(section: str) -> dict[str, type]:
    """The name -> class table for a config section, read now (tables grow as minidl does)."""
    import minidl.nn
    import minidl.optim

    if section == "loss":
        return dict(minidl.nn.LOSSES)
    if section == "optimizer":
        return dict(minidl.optim.OPTIMIZERS)
    return dict(getattr(minidl.optim, "SCHEDULERS", {}))


def arguments(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor arguments a config may set."""
    signature = inspect.signature(cls)
    return {
        name: p
        for name, p in signature.parameters.items()
        if name not in SKIP and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, tuple | list) and all(_jsonable(v) for v in value)


def resolve_component(section: str, user: dict[str, Any], defaults: dict[str, Any], config: dict) -> dict[str, Any]:
    """``{"name": ..., every argument: value}`` from the user's keys, minidl's defaults and the class's own."""
    name = user.get("name", defaults["name"])
    if section == "loss" and name == AUTO:  # the recipe's: chosen once the data says the task (Experiment)
        return dict(user)
    if section == "scheduler" and name == "none":
        extra = sorted(set(user) - {"name"})
        if extra:
            raise ConfigError(f"scheduler argument(s) {', '.join(extra)} given without a scheduler")
        return {"name": "none"}
    names = table(section)
    if name not in names:
        choices = sorted(names) + (["none"] if section == "scheduler" else [])
        raise ConfigError(f"unknown {section} {name!r}; choose from {', '.join(choices)}")
    params = arguments(names[name])
    unknown = [key for key in user if key != "name" and key not in params]
    if unknown:
        raise ConfigError(
            f"{section} {name!r} does not take {unknown[0]!r}; it takes {', '.join(params) or 'no arguments'}"
        )
    out: dict[str, Any] = {"name": name}
    for key, p in params.items():
        if key in user:
            out[key] = user[key]
        elif key in defaults:
            out[key] = defaults[key]
        elif section == "scheduler" and key == "T_max":
            out[key] = config["epochs"]  # anneal over the whole run unless told otherwise
        elif p.default is inspect.Parameter.empty:
            raise ConfigError(f"{section} {name!r} needs {key!r} (e.g. {section}.{key} in the config)")
        elif _jsonable(p.default):
            out[key] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def _kwargs(section: str, config: dict[str, Any]) -> dict[str, Any]:
    kwargs = {}
    for key, value in config.items():
        if key == "name":
            continue
        if section == "loss" and key in TENSOR_ARGS and (isinstance(value, list) or is_number(value)):
            value = torch.tensor(value, dtype=torch.float64)  # weight=[1,2,1], pos_weight=0.6: the run's dtype later
        elif isinstance(value, list):  # JSON and TOML have no tuples
            value = torch.tensor(value) if section == "loss" else tuple(value)
        kwargs[key] = value
    return kwargs


def build(section: str, config: dict[str, Any], *first: Any) -> Any:
    """Construct the resolved component ``config`` (None for scheduler "none"); bad values are ConfigErrors."""
    if section == "scheduler" and config["name"] == "none":
        return None
    cls = table(section)[config["name"]]
    try:
        return cls(*first, **_kwargs(section, config))
    except MinidlError:
        raise
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{section} {config['name']!r}: {error}") from None


def output_activation(loss_fn: Any) -> str | None:
    """The activation the model's last layer needs for ``loss_fn``: "sigmoid" for a loss on probabilities.

    A loss class may say so itself with an ``output_activation`` attribute (a name in ``ACTIVATIONS``);
    BCELoss, which takes probabilities in [0, 1], gets a sigmoid.
    """
    from minidl.nn.bce import BCELoss

    name = getattr(type(loss_fn), "output_activation", None)
    if name is None and isinstance(loss_fn, BCELoss):
        name = "sigmoid"
    return name


def build_model(
    in_features: int, hidden: str, out_features: int, output: str | None = None, dropout: float = 0.0, **factory: Any
) -> Any:
    """``mlp(in_features, hidden, out_features)``, followed by the ``output`` activation if there is one.

    ``dropout > 0`` puts a ``Dropout(dropout)`` after each hidden layer (after its activation), that is
    before every Linear but the first; it draws its masks from torch's global RNG, as torch.nn's does.
    """
    from minidl.nn.container import Sequential
    from minidl.nn.dropout import Dropout
    from minidl.nn.linear import Linear
    from minidl.nn.mlp import ACTIVATIONS, mlp

    model = mlp(in_features, hidden, out_features, **factory)
    if dropout:
        Dropout(dropout)  # a p outside [0, 1) is a ConfigError, with hidden layers or without
    layers: list[Any] = []
    for i, layer in enumerate(model):
        if dropout and i and isinstance(layer, Linear):
            layers.append(Dropout(dropout))
        layers.append(layer)
    if output is not None:
        if ACTIVATIONS.get(output) is None:
            raise ConfigError(f"unknown output activation {output!r}")
        layers.append(ACTIVATIONS[output]())
    return model if len(layers) == len(model) else Sequential(*layers)


def check_batchnorm(hidden: str, processes: int, n_train: int | None = None, batch_size: int = 2) -> None:
    """A spec with ``bn`` items trains in one process, on batches of at least 2 rows (torch's BatchNorm1d
    cannot compute a batch's variance from one row, and minidl has no SyncBatchNorm)."""
    from minidl.nn.mlp import hidden_layers

    items = [item.strip() for item in hidden.split(",") if item.strip() and hidden_layers(item)[0].bn]
    if not items:
        return
    where = f"hidden layer {items[0]!r}"
    if processes > 1:
        raise ConfigError(
            f"{where}: BatchNorm1d trains in one process only (each of {processes} would keep its own running "
            "statistics; minidl has no SyncBatchNorm); use --nproc 1"
        )
    if n_train is not None and (batch_size == 1 or n_train % batch_size == 1):
        raise ConfigError(
            f"{where}: BatchNorm1d needs at least 2 rows in every training batch, but batch size {batch_size} "
            f"over {n_train} training rows leaves a batch of 1; choose another --batch-size"
        )
