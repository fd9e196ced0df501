"""Build a multi-layer perceptron from a hidden-layer spec such as ``"25:relu,25:tanh,25:relu"``.

The spec is a comma-separated list of ``SIZE:ACTIVATION`` items, one per hidden layer; ``linear``
(or ``identity``) means no activation. An empty spec gives a single Linear layer.
"""

from __future__ import annotations

from collections.abc import Callable

from minidl.errors import ConfigError
from minidl.nn.activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from minidl.nn.activation_smooth import GELU, SiLU, Softplus
from minidl.nn.container import Sequential
from minidl.nn.linear import Linear
from minidl.nn.module import Module

# name -> factory; a new activation becomes usable from the CLI and configs by adding a row here
ACTIVATIONS: dict[str, Callable[[], Module] | None] = {
    "relu": ReLU,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "gelu": GELU,
    "softplus": Softplus,
    "silu": SiLU,
    "linear": None,
    "identity": None,
}


def parse_hidden(spec: str) -> list[tuple[int, str]]:
    """``"25:relu,25:tanh"`` -> ``[(25, "relu"), (25, "tanh")]``, with an error naming the bad item."""
    layers = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        size_text, sep, activation = item.partition(":")
        if not sep:
            raise ConfigError(f"hidden layer {item!r}: expected SIZE:ACTIVATION, e.g. 25:relu")
        try:
            size = int(size_text)
        except ValueError:
            raise ConfigError(f"hidden layer {item!r}: size {size_text!r} is not an integer") from None
        if size < 1:
            raise ConfigError(f"hidden layer {item!r}: size must be at least 1, got {size}")
        activation = activation.strip().lower()
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"hidden layer {item!r}: unknown activation {activation!r}; "
                f"choose from {', '.join(sorted(ACTIVATIONS))}"
            )
        layers.append((size, activation))
    return layers


def mlp(in_features: int, hidden: str | list[tuple[int, str]], out_features: int, **factory) -> Sequential:
    """``Linear → act → … → Linear(last, out_features)``, with torch.nn's names and initialisation."""
    layers: list[Module] = []
    width = in_features
    for size, activation in parse_hidden(hidden) if isinstance(hidden, str) else hidden:
        layers.append(Linear(width, size, **factory))
        make = ACTIVATIONS[activation]
        if make is not None:
            layers.append(make())
        width = size
    layers.append(Linear(width, out_features, **factory))
    return Sequential(*layers)
