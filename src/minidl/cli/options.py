"""The experiment flags shared by ``minidl train`` and ``minidl summary``, and how they become a config layer.

The flags are generated from the config schema (``minidl.experiment.schema``), one per setting. Every flag
defaults to "not given" (argparse.SUPPRESS), so only the flags the user typed override the config file.
"""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from minidl.cli.args import non_negative_float, positive_float, positive_int
from minidl.data.source import dataset_names
from minidl.device import is_device_name
from minidl.experiment.components import table
from minidl.experiment.config import check_layer, load_file, resolve
from minidl.experiment.schema import BALANCED, NO_DEFAULT, SETTINGS, Setting, is_class_weight

# argparse dest -> the config key it sets ("section.key" or a top-level key), from the schema
FLAG_KEYS = {setting.dest: setting.key for setting in SETTINGS if setting.flag is not None}
ARGS_KEYS = {"loss_args": "loss", "optim_args": "optimizer", "scheduler_args": "scheduler"}
ARGS_HELP = {
    "loss_args": "more loss arguments, e.g. delta=0.5",
    "optim_args": "more optimizer arguments, e.g. betas=[0.9,0.99],amsgrad=true",
    "scheduler_args": "scheduler arguments, e.g. --scheduler step --scheduler-args step_size=10,gamma=0.5 "
    "(cosine's T_max defaults to --epochs)",
}


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


def class_weight(text: str) -> str | list[float]:
    """``balanced``, or comma-separated weights >= 0 (``1,2,1``), one per class."""
    if text.strip().lower() == BALANCED:
        return BALANCED
    try:
        weights = [float(item) for item in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected balanced or weights such as 1,2,1, got {text!r}") from None
    if not is_class_weight(weights):
        raise argparse.ArgumentTypeError(
            f"expected balanced or at least two finite weights >= 0, not all 0, got {text!r}"
        )
    return weights


PARSERS = {
    "int": int,
    "positive_int": positive_int,
    "positive_float": positive_float,
    "non_negative_float": non_negative_float,
    "fraction": fraction,
    "device_name": device_name,
    "delimiter": delimiter,
    "class_weight": class_weight,
}


def assignments(text: str) -> dict[str, Any]:
    """``"step_size=10,gamma=0.5,milestones=[10,20]"`` -> a dict; values are TOML literals, else strings.

    tomllib decides where each value ends: the shortest run of comma-separated pieces that is one TOML
    value (``[10,20]``, ``'a,b'``); a value that is no TOML literal (``mode=max``) is the text up to the
    next comma.
    """
    out: dict[str, Any] = {}
    pieces = text.split(",")
    while pieces:
        item = pieces.pop(0)
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE items separated by commas, got {item.strip()!r}")
        for end in range(len(pieces) + 1):
            literal = _toml_value(",".join([value, *pieces[:end]]))
            if literal is not _NOT_TOML:
                out[key.strip()], pieces = literal, pieces[end:]
                break
        else:
            out[key.strip()] = value.strip()
    return out


_NOT_TOML = object()


def _toml_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except (ValueError, RecursionError):  # TOMLDecodeError is a ValueError
        return _NOT_TOML


def add_experiment_flags(p: argparse.ArgumentParser, *, train: bool = False) -> None:
    """One flag per setting of the schema (``train``: with the flags of ``minidl train`` alone, ``--nproc``),
    plus the ``--loss-args``, ``--optim-args`` and ``--scheduler-args`` of the component sections."""
    groups = {"data": p.add_argument_group("data"), "model and training": p.add_argument_group("model and training")}
    for setting in SETTINGS:
        if setting.flag is not None and (setting.group != "train" or train):
            _add_flag(groups.get(setting.group, p), setting)
    for dest, help_text in ARGS_HELP.items():
        groups["model and training"].add_argument(
            "--" + dest.replace("_", "-"),
            type=assignments,
            default=argparse.SUPPRESS,
            metavar="K=V,...",
            help=help_text,
        )


def _add_flag(group: argparse._ActionsContainer, setting: Setting) -> None:
    default = "none" if setting.default is NO_DEFAULT else setting.default
    help_text = setting.help.format(default=default, datasets=", ".join(dataset_names()))
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": setting.dest}
    if setting.action is not None:
        kwargs["action"] = setting.action
    if setting.parse is not None:
        kwargs["type"] = PARSERS[setting.parse]
    if setting.choices is not None:
        kwargs["choices"] = [c for choice in setting.choices for c in _choices(choice)]
    if setting.metavar is not None:
        kwargs["metavar"] = setting.metavar
    group.add_argument(setting.flag_name, **kwargs)


def _choices(choice: str) -> list[str]:
    """``"@loss"`` is the names of the loss table, read now (tables grow as minidl does)."""
    return sorted(table(choice[1:])) if choice.startswith("@") else [choice]


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
