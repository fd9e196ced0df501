"""Experiment configs: one defaults table, TOML or JSON files, command-line overrides, and the resolved form.

Every setting is declared once, in ``schema.py`` (default, type, check, help); a config is a nested dict::

    seed, epochs, batch_size, device, dtype, nproc, class_weight (and the early-stopping keys)
    [data]       dataset, n_train, n_test, noise, val_fraction, test_fraction, target, header, task, standardize
    [model]      hidden, dropout
    [loss]       name + the loss's constructor arguments
    [optimizer]  name + the optimizer's constructor arguments (lr, momentum, weight_decay, betas, ...)
    [scheduler]  name ("none" or a name from minidl.optim.SCHEDULERS) + its constructor arguments

Layers are merged in order: ``DEFAULTS``, the file, the command line. In the loss, optimizer and scheduler
sections a later layer that names a different ``name`` replaces the whole section. ``resolve`` then checks
every value and fills in each component's own defaults, so the result describes the run completely and,
written as ``config.json``, reproduces it when given back to ``minidl train --config``.
"""

from __future__ import annotations

import copy
import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

from minidl.errors import ConfigError
from minidl.experiment.recipe import apply_recipe
from minidl.experiment.schema import COMPONENTS, checks, defaults
from minidl.limits import read_small_file, short_repr

DEFAULTS: dict[str, Any] = defaults()
CHECKS = checks()  # dotted key -> (test, what the message says is expected)


def _check(key: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {expected}, got {short_repr(value)}")


def check_layer(layer: dict[str, Any], source: str) -> dict[str, Any]:
    """Check one layer (a file, or the flags): every key known, every known value of the right type."""
    if not isinstance(layer, dict):
        raise ConfigError(f"{source}: a config must be a table of keys, got {type(layer).__name__}")
    for key, value in layer.items():
        if key in COMPONENTS:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table, got {value!r}")
            if "name" in value and not isinstance(value["name"], str):
                raise ConfigError(f"{source}: {key}.name must be a string, got {value['name']!r}")
            for sub, item in value.items():
                if isinstance(item, dict) or (isinstance(item, list) and any(isinstance(i, dict) for i in item)):
                    raise ConfigError(f"{source}: {key}.{sub} must be a number, string, boolean or list")
        elif isinstance(DEFAULTS.get(key), dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table, got {value!r}")
            for sub, item in value.items():
                _check_key(f"{key}.{sub}", item, source)
        else:
            _check_key(key, value, source)
    return layer


def _check_key(key: str, value: Any, source: str) -> None:
    if key not in CHECKS:
        known = list(CHECKS) + list(COMPONENTS)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{source}: unknown key {key!r}{hint}")
    test, expected = CHECKS[key]
    try:
        _check(key, value, bool(test(value)), expected)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config (chosen by the suffix) and check its keys."""
    path = Path(path)
    try:
        text = read_small_file(path).decode("utf-8")  # a regular file under 1 MiB: no FIFO, no /dev/zero
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (IsADirectoryError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not a readable config file ({error})") from None
    if path.suffix == ".json":
        try:
            layer = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
            ) from None
        except (ValueError, RecursionError) as error:  # an integer of 5000 digits, nesting 1000 deep
            raise ConfigError(f"{path}: invalid JSON: {error}") from None
    else:
        try:
            layer = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
        except (ValueError, RecursionError) as error:  # an integer of 5000 digits, nesting 1000 deep
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    return check_layer(layer, str(path))


def merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Later layers win; a component section with a different ``name`` replaces the earlier one."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict):
                base = out.get(key, {})
                if key in COMPONENTS and "name" in value and value["name"] != base.get("name"):
                    base = {}
                out[key] = {**base, **copy.deepcopy(value)}
            else:
                out[key] = copy.deepcopy(value)
    return out


def resolve(*layers: dict[str, Any]) -> dict[str, Any]:
    """The complete config for ``layers`` (each already checked), with every component's defaults filled in."""
    from minidl.experiment.components import check_batchnorm, resolve_component

    user = merge(*layers)
    config = merge({k: v for k, v in DEFAULTS.items() if k not in COMPONENTS}, user)
    user = apply_recipe(config, user)  # a data set other than disk, no loss or optimizer chosen: by task
    hidden = config["model"]["hidden"]
    if isinstance(hidden, list):
        config["model"]["hidden"] = ",".join(hidden)
    from minidl.nn import parse_hidden

    parse_hidden(config["model"]["hidden"])  # a bad spec is an error now, before anything runs
    check_batchnorm(config["model"]["hidden"], config["nproc"])  # bn with --nproc 2: refused before launching
    from minidl.data.source import resolve_data

    config["data"] = resolve_data(config["data"])
    for section in COMPONENTS:
        config[section] = resolve_component(section, user.get(section, {}), DEFAULTS[section], config)
    return config


def to_json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"
