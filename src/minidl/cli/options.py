"""The experiment flags shared by ``minidl train`` and ``minidl summary``, and how they become a config layer.

Every flag defaults to "not given" (argparse.SUPPRESS), so only the flags the user typed override the
config file; the defaults themselves live in one table, ``minidl.experiment.config.DEFAULTS``.
"""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from minidl.cli.args import non_negative_float, positive_float, positive_int
from minidl.data.source import dataset_names
from minidl.device import DTYPES, is_device_name
from minidl.experiment.components import table
from minidl.experiment.config import DEFAULTS, check_layer, load_file, resolve

# argparse dest -> the config key it sets ("section.key" or a top-level key)
FLAG_KEYS = {
    "dataset": "data.dataset",
    "target": "data.target",
    "header": "data.header",
    "delimiter": "data.delimiter",
    "index_col": "data.index_col",
    "task": "data.task",
    "n_train": "data.n_train",
    "n_test": "data.n_test",
    "noise": "data.noise",
    "val_fraction": "data.val_fraction",
    "test_fraction": "data.test_fraction",
    "standardize": "data.standardize",
    "standardize_target": "data.standardize_target",
    "hidden": "model.hidden",
    "dropout": "model.dropout",
    "loss": "loss.name",
    "optim": "optimizer.name",
    "lr": "optimizer.lr",
    "momentum": "optimizer.momentum",
    "weight_decay": "optimizer.weight_decay",
    "scheduler": "scheduler.name",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "device": "device",
    "dtype": "dtype",
    "nproc": "nproc",  # minidl train only
}
ARGS_KEYS = {"loss_args": "loss", "optim_args": "optimizer", "scheduler_args": "scheduler"}


def fraction(text: str) -> float:
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text}")
    return value


def delimiter(text: str) -> str:
    """One character; ``\\t`` and ``tab`` mean a tab."""
    text = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(text) != 1 or text in '"\r\n':
        raise argparse.ArgumentTypeError(f"must be one character (or \\t for a tab), got {text!r}")
    return text


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (no argparse choices, so that ``cuda:1`` passes)."""
    if not is_device_name(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; choose from auto, cpu, cuda, cuda:N, mps")
    return text.strip().lower()


def assignments(text: str) -> dict[str, Any]:
    """``"step_size=10,gamma=0.5,milestones=[10,20]"`` -> a dict; values are TOML literals, else strings.

    Commas inside brackets or quotes do not split items.
    """
    items, depth, quote, current = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        else:
            depth += (char in "[{") - (char in "]}")
        if char == "," and depth == 0 and not quote:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    out: dict[str, Any] = {}
    for item in (i.strip() for i in items):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE items separated by commas, got {item!r}")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


def _default(path: str) -> Any:
    section, _, key = path.partition(".")
    return DEFAULTS[section][key] if key else DEFAULTS[section]


def add_experiment_flags(p: argparse.ArgumentParser) -> None:
    """The data, model, loss, optimizer, scheduler and schedule flags (names read from the tables now)."""
    S = argparse.SUPPRESS
    data = p.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default=S,
        metavar="NAME|PATH.csv",
        help=f"built-in data set ({', '.join(dataset_names())}) or a CSV file (default {DEFAULTS['data']['dataset']})",
    )
    data.add_argument(
        "--target",
        default=S,
        metavar="COLUMN",
        help="CSV target column: name, or index with --no-header (default: the last)",
    )
    data.add_argument(
        "--no-header", dest="header", action="store_false", default=S, help="the CSV file has no header row"
    )
    data.add_argument(
        "--delimiter",
        type=delimiter,
        default=S,
        metavar="CHAR",
        help="CSV column separator, e.g. ';' or '\\t' (default: detected among , ; tab |)",
    )
    data.add_argument(
        "--index-col",
        action="store_true",
        default=S,
        help="the CSV file's first column is a row index (as pandas writes): skip it",
    )
    data.add_argument(
        "--task",
        default=S,
        choices=("auto", "classification", "regression"),
        help="CSV target kind (default auto: integer-valued with <= 20 values, or text, is classification)",
    )
    data.add_argument(
        "--n-train",
        type=positive_int,
        default=S,
        help=f"generated training points (default {_default('data.n_train')})",
    )
    data.add_argument(
        "--n-test", type=positive_int, default=S, help=f"generated test points (default {_default('data.n_test')})"
    )
    data.add_argument(
        "--noise", type=non_negative_float, default=S, help="generator noise (default: the generator's own)"
    )
    data.add_argument(
        "--val-fraction",
        type=fraction,
        default=S,
        help="validation share: of a file's rows, or extra generated points per training point "
        f"(default {_default('data.val_fraction')})",
    )
    data.add_argument(
        "--test-fraction",
        type=fraction,
        default=S,
        help=f"test share of a file's rows, for CSV and digits (default {_default('data.test_fraction')})",
    )
    data.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        default=S,
        help="feed raw features (default: standardise with the training split's mean and std)",
    )
    data.add_argument(
        "--no-standardize-target",
        dest="standardize_target",
        action="store_false",
        default=S,
        help="train regression on the raw targets (default: on (y - mean) / std of the training split; "
        "predictions and metrics are always in the data's units)",
    )

    model = p.add_argument_group("model and training")
    model.add_argument(
        "--hidden",
        default=S,
        metavar="SPEC",
        help=f"hidden layers as SIZE:ACTIVATION,... (default {_default('model.hidden')}; '' for none)",
    )
    model.add_argument(
        "--dropout",
        type=fraction,
        default=S,
        metavar="P",
        help="dropout probability after each hidden layer, in [0, 1) (default 0: no Dropout layers)",
    )
    model.add_argument(
        "--loss", default=S, choices=sorted(table("loss")), help=f"loss (default {_default('loss.name')})"
    )
    model.add_argument(
        "--loss-args", type=assignments, default=S, metavar="K=V,...", help="more loss arguments, e.g. delta=0.5"
    )
    model.add_argument(
        "--optim",
        default=S,
        choices=sorted(table("optimizer")),
        help=f"optimizer (default {_default('optimizer.name')})",
    )
    model.add_argument(
        "--lr", type=positive_float, default=S, help=f"learning rate (> 0; default {_default('optimizer.lr')})"
    )
    model.add_argument(
        "--momentum",
        type=non_negative_float,
        default=S,
        help="momentum, for optimizers that take one (default: the optimizer's)",
    )
    model.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=S,
        help="weight decay, for optimizers that take one (default: the optimizer's)",
    )
    model.add_argument(
        "--optim-args",
        type=assignments,
        default=S,
        metavar="K=V,...",
        help="more optimizer arguments, e.g. betas=[0.9,0.99],amsgrad=true",
    )
    model.add_argument(
        "--scheduler",
        default=S,
        choices=[*sorted(table("scheduler")), "none"],
        help="learning-rate scheduler, stepped once per epoch (default none)",
    )
    model.add_argument(
        "--scheduler-args",
        type=assignments,
        default=S,
        metavar="K=V,...",
        help="scheduler arguments, e.g. --scheduler step --scheduler-args step_size=10,gamma=0.5 "
        "(cosine's T_max defaults to --epochs)",
    )
    model.add_argument("--epochs", type=positive_int, default=S, help=f"(default {_default('epochs')})")
    model.add_argument("--batch-size", type=positive_int, default=S, help=f"(default {_default('batch_size')})")
    model.add_argument(
        "--seed",
        type=int,
        default=S,
        help=f"seed for data, initial weights and batch order (default {_default('seed')})",
    )
    model.add_argument(
        "--device",
        type=device_name,
        default=S,
        metavar="{auto,cpu,cuda,cuda:N,mps}",
        help=f"where to compute; auto picks cuda, then mps, then cpu (default {_default('device')})",
    )
    model.add_argument(
        "--dtype",
        default=S,
        choices=list(DTYPES),
        help=f"floating-point type of data, weights and optimizer state (default {_default('dtype')})",
    )


def flags_layer(args: argparse.Namespace) -> dict[str, Any]:
    """The config layer made of the flags the user gave."""
    layer: dict[str, Any] = {}
    given = vars(args)
    for dest, path in FLAG_KEYS.items():
        if dest in given:
            section, _, key = path.partition(".")
            if key:
                layer.setdefault(section, {})[key] = given[dest]
            else:
                layer[section] = given[dest]
    for dest, section in ARGS_KEYS.items():
        if dest in given:
            layer.setdefault(section, {}).update(given[dest])
    return check_layer(layer, "command line")


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """DEFAULTS, then ``--config``, then the flags: resolved and checked."""
    layers = [load_file(args.config)] if getattr(args, "config", None) else []
    return resolve(*layers, flags_layer(args))
