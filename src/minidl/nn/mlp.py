"""Build a multi-layer perceptron from a hidden-layer spec such as ``"25:relu,25:tanh,25:relu"``.

The spec is a comma-separated list of ``SIZE:ACTIVATION`` items, one per hidden layer; ``linear``
(or ``identity``) means no activation. An empty spec gives a single Linear layer. An item may also name
``bn``, a BatchNorm1d over the layer's ``SIZE`` features, placed where it is written: ``64:relu:bn`` is
Linear → ReLU → BatchNorm1d, ``64:bn:relu`` is Linear → BatchNorm1d → ReLU, ``64:bn`` is Linear → BatchNorm1d.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from minidl.errors import ConfigError
from minidl.nn.activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from minidl.nn.activation_smooth import GELU, SiLU, Softplus
from minidl.nn.batchnorm import BatchNorm1d
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
BN = "bn"  # the item part that asks for a BatchNorm1d


class HiddenLayer(NamedTuple):
    """One item of a spec: ``size``, ``activation`` (a key of ACTIVATIONS) and ``bn``: None (no BatchNorm1d),
    "before" or "after" the activation."""

    size: int
    activation: str
    bn: str | None = None


def hidden_layers(spec: str) -> list[HiddenLayer]:
    """``"25:relu,64:bn:tanh"`` -> ``[HiddenLayer(25, "relu"), HiddenLayer(64, "tanh", "before")]``; a bad item
    raises ConfigError naming it."""
    return [_item(item) for item in (part.strip() for part in spec.split(",")) if item]


def _item(item: str) -> HiddenLayer:
    size_text, *parts = item.split(":")
    if not parts:
        raise ConfigError(f"hidden layer {item!r}: expected SIZE:ACTIVATION, e.g. 25:relu (or 25:relu:bn)")
    try:
        size = int(size_text)
    except ValueError:
        raise ConfigError(f"hidden layer {item!r}: size {size_text!r} is not an integer") from None
    if size < 1:
        raise ConfigError(f"hidden layer {item!r}: size must be at least 1, got {size}")
    parts = [part.strip().lower() for part in parts]
    if len(parts) > 2:
        raise ConfigError(
            f"hidden layer {item!r}: expected SIZE:ACTIVATION with at most one :bn, got {len(parts)} parts"
        )
    for part in parts:
        if part != BN and part not in ACTIVATIONS:
            raise ConfigError(
                f"hidden layer {item!r}: unknown activation {part!r}; choose from {', '.join(sorted(ACTIVATIONS))} "
                f"(and {BN} for BatchNorm1d)"
            )
    if parts.count(BN) > 1:
        raise ConfigError(f"hidden layer {item!r}: {BN} given twice (one BatchNorm1d per hidden layer)")
    activations = [part for part in parts if part != BN]
    if len(activations) > 1:
        raise ConfigError(f"hidden layer {item!r}: two activations {activations[0]!r} and {activations[1]!r}; give one")
    if BN not in parts:
        return HiddenLayer(size, activations[0])
    if not activations:  # SIZE:bn: a BatchNorm1d, no activation
        return HiddenLayer(size, "linear", "after")
    return HiddenLayer(size, activations[0], "before" if parts[0] == BN else "after")


def parse_hidden(spec: str) -> list[tuple[int, str]]:
    """``"25:relu,25:tanh"`` -> ``[(25, "relu"), (25, "tanh")]``, with an error naming the bad item.

    The sizes and activations only; ``hidden_layers`` also says where each BatchNorm1d goes.
    """
    return [(layer.size, layer.activation) for layer in hidden_layers(spec)]


def mlp(
    in_features: int, hidden: str | Sequence[tuple[int, str] | HiddenLayer], out_features: int, **factory
) -> Sequential:
    """``Linear → act → … → Linear(last, out_features)``, with torch.nn's names and initialisation; an item
    with ``bn`` adds ``BatchNorm1d(size)`` before or after its activation."""
    layers: list[Module] = []
    width = in_features
    for size, activation, *rest in hidden_layers(hidden) if isinstance(hidden, str) else hidden:
        bn = rest[0] if rest else None
        layers.append(Linear(width, size, **factory))
        make = ACTIVATIONS[activation]
        around = [BatchNorm1d(size, **factory)] if bn is not None else []
        act = [make()] if make is not None else []
        layers.extend([*around, *act] if bn == "before" else [*act, *around])
        width = size
    layers.append(Linear(width, out_features, **factory))
    return Sequential(*layers)
