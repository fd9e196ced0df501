"""Trees of dicts, lists, tuples, numbers, strings and tensors <-> JSON-able data plus named tensors.

In the JSON a tensor is ``{"__tensor__": "<safetensors key>"}``, a tuple ``{"__tuple__": [...]}`` and a
dict with int keys (an optimizer's ``state``) ``{"__int_keys__": {"0": ...}}``; a tensor's key is its path
in the tree (``optim/state/0/momentum_buffer``). Floats keep their exact value through Python's JSON,
``inf`` and ``nan`` included. Anything else (an object, a dict with mixed keys) is refused at save time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from minidl.checks import is_int

TAGS = ("__tensor__", "__tuple__", "__int_keys__")


class Malformed(Exception):
    """The JSON tree does not describe a valid checkpoint (the loader turns this into CheckpointError)."""


def put_tensor(tensors: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> None:
    """Store a copy of ``tensor`` under ``key``; two tensors under one key is a bug in the caller."""
    if key in tensors:
        raise ValueError(f"checkpoint: two tensors would be stored under {key!r}")
    # own, contiguous CPU storage: parameters may be views into one flat buffer, which safetensors refuses
    tensors[key] = tensor.detach().cpu().clone(memory_format=torch.contiguous_format)


def encode_tree(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` as JSON-able data; each tensor moves to ``tensors[<key>/<path>]`` and leaves a reference."""
    if isinstance(value, torch.Tensor):
        put_tensor(tensors, key, value)
        return {"__tensor__": key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [encode_tree(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        if value and all(is_int(k) for k in value):
            return {"__int_keys__": {str(k): encode_tree(v, f"{key}/{k}", tensors) for k, v in value.items()}}
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"checkpoint: {key}: dict keys must be all str or all int, got {list(value)!r:.80}")
        if len(value) == 1 and next(iter(value)) in TAGS:
            raise TypeError(f"checkpoint: {key}: a dict whose only key is {next(iter(value))!r} cannot be saved")
        return {k: encode_tree(v, f"{key}/{k}", tensors) for k, v in value.items()}
    raise TypeError(f"checkpoint: {key}: cannot save a value of type {type(value).__name__} ({value!r:.60})")


def decode_tree(value: Any, tensors: dict[str, torch.Tensor], used: set[str]) -> Any:
    """Undo ``encode_tree``; adds each referenced tensor name to ``used`` (a name may be used once)."""
    if isinstance(value, list):
        return [decode_tree(v, tensors, used) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in TAGS:
        ((tag, inner),) = value.items()
        if tag == "__tensor__":
            if not isinstance(inner, str) or inner not in tensors or inner in used:
                raise Malformed(f"missing or reused tensor {inner!r:.80}")
            used.add(inner)
            return tensors[inner]
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(decode_tree(v, tensors, used) for v in inner)
        if tag == "__int_keys__" and isinstance(inner, dict):
            return {int(k): decode_tree(v, tensors, used) for k, v in inner.items()}
        raise Malformed(f"invalid {tag} entry")
    return {k: decode_tree(v, tensors, used) for k, v in value.items()}
