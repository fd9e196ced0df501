"""Export: ``config.toml`` + ``data.csv`` for ``minidl train --config``, ``model.safetensors``, ``train.py``.

The playground trains a ``minidl.experiment.experiment.Experiment`` built from exactly this config on exactly
this CSV, so ``minidl train --config config.toml`` (run in the folder that holds ``data.csv``) trains the
same weights for the epochs the playground finished. What a config cannot replay (batch norm, L1, changes
made while training, a run stopped inside an epoch) is listed at the top of the file and in the zip's
README.txt, never left silent.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import zipfile
from typing import TYPE_CHECKING, Any

from minidl.playground.model import DATA_FILE
from minidl.playground.setup import SetupError

if TYPE_CHECKING:
    from minidl.playground.session import Session


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(config: dict[str, Any]) -> str:
    top = [f"{k} = {_toml_value(v)}" for k, v in config.items() if not isinstance(v, dict) and v is not None]
    out = ["\n".join(top)]
    for section, table in config.items():
        if isinstance(table, dict):
            rows = [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
            out.append(f"[{section}]\n" + "\n".join(rows))
    return "\n\n".join(out) + "\n"


def notes(session: Session) -> list[str]:
    """Why ``minidl train`` would not give the playground's current weights (empty: it would)."""
    built = session.built
    setup, loop = built.setup, built.trainer.loop
    out = []
    if setup.bn:
        out.append("batch norm is on: minidl train's config has no batch-norm layer")
    if setup.reg == "l1" and setup.reg_rate > 0:
        out.append("L1 regularization is on: it is a playground-only proximal step, minidl train has no L1")
    out.extend(session.edits)
    if loop.step:
        out.append(
            f"the playground stopped {loop.step} steps into epoch {len(built.trainer.history) + 1}; minidl train "
            "trains whole epochs, so the config reproduces the weights at the end of the last finished epoch"
        )
    if not built.trainer.history:
        out.append("no epoch finished yet: the config trains 1 epoch")
    return out


def export_config(session: Session) -> dict[str, Any]:
    """The resolved config with the epochs the playground finished and the CSV's name next to it."""
    config = json.loads(json.dumps(session.built.config))
    config["epochs"] = max(1, len(session.built.trainer.history))
    config["data"]["dataset"] = DATA_FILE
    return config


def config_toml(session: Session) -> str:
    config = export_config(session)
    problems = notes(session)
    head = [
        "# minidl playground export. Run in the folder that holds data.csv:",
        "#     minidl train --config config.toml",
        f"# {config['epochs']} epoch(s) of batch size {config['batch_size']}, seed {config['seed']}: "
        "the weights of model.safetensors",
    ]
    if problems:
        head.append("# NOT REPRODUCIBLE exactly, because:")
        head.extend(f"#   - {p}" for p in problems)
    return "\n".join(head) + "\n\n" + to_toml(config)


def model_bytes(session: Session) -> bytes:
    """``model.safetensors`` written by minidl's own saved-model writer (``Experiment.saved_model``)."""
    built = session.built
    if built.setup.bn:
        raise SetupError("export: a model with batch norm cannot be saved in minidl's model format; turn it off")
    # Experiment.saved_model leaves out the dropout, which the model file needs to rebuild the layer names
    saved = dataclasses.replace(built.experiment.saved_model(), dropout=built.config["model"]["dropout"])
    return saved.to_bytes()


TORCH_ACTIVATIONS = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
    "gelu": "GELU",
    "softplus": "Softplus",
    "silu": "SiLU",
}


def script(session: Session) -> str:
    setup = session.built.setup
    widths = [len(setup.features), *setup.layers, session.built.linears[-1].out_features]
    torch_layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        torch_layers.append(f"nn.Linear({n_in}, {n_out})")
        if i < len(setup.acts) and setup.acts[i] != "linear":
            torch_layers.append(f"nn.{TORCH_ACTIVATIONS[setup.acts[i]]}()")
            if setup.dropout:
                torch_layers.append(f"nn.Dropout({setup.dropout})")
        elif i < len(setup.acts) and setup.dropout:
            torch_layers.append(f"nn.Dropout({setup.dropout})")
    if session.built.experiment.output_activation == "sigmoid":
        torch_layers.append("nn.Sigmoid()")
    layers = ",\n    ".join(torch_layers)
    return f'''"""The playground's network again: train it with minidl, then load the weights into PyTorch.

Run in the folder that holds config.toml and data.csv:  python train.py
"""

import tomllib

import torch
from safetensors.torch import load_file
from torch import nn

from minidl.experiment.config import check_layer, resolve
from minidl.experiment.experiment import Experiment

with open("config.toml", "rb") as f:
    config = resolve(check_layer(tomllib.load(f), "config.toml"))
experiment = Experiment(config)
experiment.fit()
test = experiment.evaluate("test")
print(f"minidl: test loss {{test.loss:.6f}}, accuracy {{test.accuracy}}")

# model.safetensors holds the layers under PyTorch's names (0.weight, 0.bias, ...), and the features'
# standardisation (standardizer.mean, standardizer.std) when it was on: the network reads (x - mean) / std
tensors = load_file("model.safetensors")
net = nn.Sequential(
    {layers},
)
net.load_state_dict({{k: v for k, v in tensors.items() if k[0].isdigit()}})
net.eval()
'''


def readme(session: Session) -> str:
    problems = notes(session)
    lines = [
        "minidl playground export",
        "",
        "config.toml        minidl train --config config.toml  (run in this folder: it reads data.csv)",
        "data.csv           the points, one column per input feature, then label",
        "model.safetensors  the weights now, in minidl's model format (PyTorch's names; see train.py)",
        "config.json        with model.safetensors this folder is a run folder: in it, minidl evaluate .",
        "                   and minidl predict . --input new.csv --output predictions.csv",
        "train.py           the same in Python, and loading the weights into PyTorch",
        "",
    ]
    if problems:
        lines += ["The config does NOT reproduce model.safetensors exactly, because:", *[f"  - {p}" for p in problems]]
    else:
        lines.append(
            "minidl train --config config.toml reproduces model.safetensors exactly (same seed, same batches)."
        )
    return "\n".join(lines) + "\n"


def zip_bytes(session: Session) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.toml", config_toml(session))
        z.writestr("config.json", json.dumps(export_config(session), indent=2) + "\n")
        z.writestr(DATA_FILE, (session.folder / DATA_FILE).read_text(encoding="utf-8"))
        if not session.built.setup.bn:
            z.writestr("model.safetensors", model_bytes(session))
        z.writestr("train.py", script(session))
        z.writestr("README.txt", readme(session))
    return buffer.getvalue()
