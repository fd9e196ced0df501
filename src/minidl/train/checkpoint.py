"""Checkpoints: a model, its optimizer and scheduler state, RNG states and metadata in one safetensors file.

Every tensor is a safetensors tensor (``model/0.weight``, ``optim/state/0/momentum_buffer``, ``rng/torch``);
everything else is JSON in the safetensors metadata (a dict of strings)::

    __metadata__ = {"format": "minidl.checkpoint", "format_version": "1", "minidl_version": "0.1.0",
                    "contents": JSON}
    contents = {"model": [state_dict keys, in order], "rng": [names],
                "optimizer": tree | null, "scheduler": tree | null, "metadata": tree}

In a tree a tensor is ``{"__tensor__": "<safetensors key>"}``, a tuple ``{"__tuple__": [...]}`` and a dict
with int keys (the optimizer's ``state``) ``{"__int_keys__": {"0": ...}}``; floats keep their exact value,
``inf`` and ``nan`` included (Python's JSON). Nothing is pickled and ``torch.load`` is never called:
loading refuses anything that is not such a file with a ``CheckpointError`` and nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.errors import CheckpointError
from minidl.train.checkpoint_file import load_tensors, parse_safetensors, read_regular_file
from minidl.train.durable import atomic_write_bytes

FORMAT, FORMAT_VERSION = "minidl.checkpoint", "1"
_TAGS = ("__tensor__", "__tuple__", "__int_keys__")


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns; tensors are fresh CPU tensors."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    rng_states: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    minidl_version: str = ""


def checkpoint_bytes(
    *,
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any] | None = None,
    scheduler_state: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> bytes:
    """The safetensors bytes of a checkpoint (``save_checkpoint`` writes them atomically)."""
    from safetensors.torch import save  # lazily: only checkpoints need it

    import minidl

    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in model_state.items():
        _put(tensors, f"model/{name}", tensor)
    for name, tensor in (rng_states or {}).items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8:
            raise TypeError(f"rng state {name!r} must be a uint8 tensor (torch.get_rng_state()), got {tensor!r:.60}")
        _put(tensors, f"rng/{name}", tensor)
    contents = {
        "model": list(model_state),
        "rng": list(rng_states or {}),
        "optimizer": None if optimizer_state is None else _encode(dict(optimizer_state), "optim", tensors),
        "scheduler": None if scheduler_state is None else _encode(dict(scheduler_state), "sched", tensors),
        "metadata": _encode(dict(metadata or {}), "meta", tensors),
    }
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "minidl_version": minidl.__version__,
        "contents": json.dumps(contents, separators=(",", ":")),
    }
    return save(tensors, metadata=header)


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model_state: Mapping[str, torch.Tensor],
    optimizer_state: Mapping[str, Any] | None = None,
    scheduler_state: Mapping[str, Any] | None = None,
    rng_states: Mapping[str, torch.Tensor] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically and durably; tensors are copied, so training may go on at once.

    ``metadata`` holds JSON-able values (and tensors, stored as such): epoch, step, config, seeds. A crash
    at any moment leaves ``path`` as it was or complete; a failed write raises ``CheckpointError``.
    """
    path = Path(path)
    data = checkpoint_bytes(
        model_state=model_state,
        optimizer_state=optimizer_state,
        scheduler_state=scheduler_state,
        rng_states=rng_states,
        metadata=metadata,
    )
    try:
        atomic_write_bytes(path, data)
    except OSError as error:
        raise CheckpointError(f"cannot write checkpoint {path}: {error.strerror or error}") from None
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``; any problem raises ``CheckpointError`` naming ``path``."""
    path = Path(path)
    data = read_regular_file(path)
    _, metadata = parse_safetensors(data, path)
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: a safetensors file, but not a minidl checkpoint (no format tag)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path}: format version {metadata.get('format_version')!r} is not supported "
            f"(this minidl reads version {FORMAT_VERSION})"
        )
    try:
        contents = json.loads(metadata.get("contents", ""))
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {path}: its contents metadata is not valid JSON ({error})") from None
    tensors = load_tensors(data, path)
    try:
        checkpoint = _decode_contents(contents, tensors)
    except (_Malformed, KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {path}: malformed minidl contents: {error}") from None
    checkpoint.minidl_version = metadata.get("minidl_version", "")
    return checkpoint


# -- encoding: trees of dicts, lists, numbers and tensors <-> JSON + named tensors -------------------
class _Malformed(Exception):
    pass


def _put(tensors: dict[str, torch.Tensor], key: str, tensor: torch.Tensor) -> None:
    if key in tensors:
        raise ValueError(f"checkpoint: two tensors would be stored under {key!r}")
    # own, contiguous CPU storage: parameters may be views into one flat buffer, which safetensors refuses
    tensors[key] = tensor.detach().cpu().clone(memory_format=torch.contiguous_format)


def _encode(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        _put(tensors, key, value)
        return {"__tensor__": key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{key}/{i}", tensors) for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, Mapping):
        if value and all(isinstance(k, int) and not isinstance(k, bool) for k in value):
            return {"__int_keys__": {str(k): _encode(v, f"{key}/{k}", tensors) for k, v in value.items()}}
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"checkpoint: {key}: dict keys must be all str or all int, got {list(value)!r:.80}")
        if len(value) == 1 and next(iter(value)) in _TAGS:
            raise TypeError(f"checkpoint: {key}: a dict whose only key is {next(iter(value))!r} cannot be saved")
        return {k: _encode(v, f"{key}/{k}", tensors) for k, v in value.items()}
    raise TypeError(f"checkpoint: {key}: cannot save a value of type {type(value).__name__} ({value!r:.60})")


def _decode(value: Any, tensors: dict[str, torch.Tensor], used: set[str]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors, used) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _TAGS:
        ((tag, inner),) = value.items()
        if tag == "__tensor__":
            if not isinstance(inner, str) or inner not in tensors or inner in used:
                raise _Malformed(f"missing or reused tensor {inner!r:.80}")
            used.add(inner)
            return tensors[inner]
        if tag == "__tuple__" and isinstance(inner, list):
            return tuple(_decode(v, tensors, used) for v in inner)
        if tag == "__int_keys__" and isinstance(inner, dict):
            return {int(k): _decode(v, tensors, used) for k, v in inner.items()}
        raise _Malformed(f"invalid {tag} entry")
    return {k: _decode(v, tensors, used) for k, v in value.items()}


def _decode_contents(contents: Any, tensors: dict[str, torch.Tensor]) -> Checkpoint:
    if not isinstance(contents, dict):
        raise _Malformed("not a JSON object")
    missing = [key for key in ("model", "rng", "optimizer", "scheduler", "metadata") if key not in contents]
    if missing:
        raise _Malformed(f"missing key(s) {', '.join(missing)}")
    used: set[str] = set()

    def named(kind: str, prefix: str) -> dict[str, torch.Tensor]:
        names = contents[kind]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _Malformed(f"{kind!r} is not a list of names")
        missing = [n for n in names if f"{prefix}/{n}" not in tensors]
        if missing or len(set(names)) != len(names):
            raise _Malformed(f"{kind} tensor(s) missing or repeated: {missing or names}")
        used.update(f"{prefix}/{n}" for n in names)
        return {n: tensors[f"{prefix}/{n}"] for n in names}

    model, rng = named("model", "model"), named("rng", "rng")
    bad_rng = [n for n, t in rng.items() if t.dtype != torch.uint8 or t.dim() != 1]
    if bad_rng:
        raise _Malformed(f"rng state(s) {bad_rng} are not 1-D uint8 tensors")
    optimizer, scheduler, metadata = (
        _decode(contents[k], tensors, used) for k in ("optimizer", "scheduler", "metadata")
    )
    _check_optimizer(optimizer)
    if (scheduler is not None and not isinstance(scheduler, dict)) or not isinstance(metadata, dict):
        raise _Malformed("scheduler state and metadata must be JSON objects")
    unused = sorted(set(tensors) - used)
    if unused:
        raise _Malformed(f"unexpected tensor(s) {unused[:5]}")
    return Checkpoint(model, optimizer, scheduler, rng, metadata)


def _check_optimizer(state: Any) -> None:
    """torch.optim's layout: ``{"state": {int: {str: value}}, "param_groups": [{..., "params": [int]}]}``."""
    if state is None:
        return
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise _Malformed("optimizer state must have exactly the keys 'state' and 'param_groups'")
    entries, groups = state["state"], state["param_groups"]
    if not isinstance(entries, dict) or not all(isinstance(k, int) and isinstance(v, dict) for k, v in entries.items()):
        raise _Malformed("optimizer 'state' must map parameter indices to dicts")
    for group in groups if isinstance(groups, list) else [None]:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise _Malformed("optimizer 'param_groups' must be a list of dicts with a 'params' list")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in group["params"]):
            raise _Malformed("optimizer 'params' must list parameter indices")
