"""Checkpoints: a model, its optimizer and scheduler state, RNG states and metadata in one safetensors file.

Every tensor is a safetensors tensor (``model/0.weight``, ``optim/state/0/momentum_buffer``, ``rng/torch``);
everything else is JSON in the safetensors metadata (a dict of strings)::

    __metadata__ = {"format": "minidl.checkpoint", "format_version": "1", "minidl_version": "0.1.0",
                    "contents": JSON}
    contents = {"model": [state_dict keys, in order], "rng": [names],
                "optimizer": tree | null, "scheduler": tree | null, "metadata": tree}

A tree is JSON with tagged tensors, tuples and int-keyed dicts (``checkpoint_tree``); the optimizer's
tensors are ``optim/state/<index>/<name>``, the scheduler's ``sched/...``, the metadata's ``meta/...``.
Nothing is pickled and ``torch.load`` is never called: loading refuses anything that is not such a file
with a ``CheckpointError`` and nothing else (``checkpoint_file`` checks the bytes first).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minidl.checks import is_int
from minidl.errors import CheckpointError
from minidl.persist.durable import atomic_write_bytes
from minidl.persist.safetensors_file import load_tensors, parse_safetensors, read_regular_file
from minidl.persist.tree import Malformed, decode_tree, encode_tree, put_tensor

FORMAT, FORMAT_VERSION = "minidl.checkpoint", "1"


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
        put_tensor(tensors, f"model/{name}", tensor)
    for name, tensor in (rng_states or {}).items():
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8:
            raise TypeError(f"rng state {name!r} must be a uint8 tensor (torch.get_rng_state()), got {tensor!r:.60}")
        put_tensor(tensors, f"rng/{name}", tensor)
    contents = {
        "model": list(model_state),
        "rng": list(rng_states or {}),
        "optimizer": None if optimizer_state is None else encode_tree(dict(optimizer_state), "optim", tensors),
        "scheduler": None if scheduler_state is None else encode_tree(dict(scheduler_state), "sched", tensors),
        "metadata": encode_tree(dict(metadata or {}), "meta", tensors),
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
    except (Malformed, KeyError, TypeError, ValueError, AttributeError, RecursionError) as error:
        raise CheckpointError(f"checkpoint {path}: malformed minidl contents: {error}") from None
    checkpoint.minidl_version = metadata.get("minidl_version", "")
    return checkpoint


def _decode_contents(contents: Any, tensors: dict[str, torch.Tensor]) -> Checkpoint:
    if not isinstance(contents, dict):
        raise Malformed("not a JSON object")
    missing = [key for key in ("model", "rng", "optimizer", "scheduler", "metadata") if key not in contents]
    if missing:
        raise Malformed(f"missing key(s) {', '.join(missing)}")
    used: set[str] = set()

    def named(kind: str, prefix: str) -> dict[str, torch.Tensor]:
        names = contents[kind]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise Malformed(f"{kind!r} is not a list of names")
        missing = [n for n in names if f"{prefix}/{n}" not in tensors]
        if missing or len(set(names)) != len(names):
            raise Malformed(f"{kind} tensor(s) missing or repeated: {missing or names}")
        used.update(f"{prefix}/{n}" for n in names)
        return {n: tensors[f"{prefix}/{n}"] for n in names}

    model, rng = named("model", "model"), named("rng", "rng")
    bad_rng = [n for n, t in rng.items() if t.dtype != torch.uint8 or t.dim() != 1]
    if bad_rng:
        raise Malformed(f"rng state(s) {bad_rng} are not 1-D uint8 tensors")
    optimizer, scheduler, metadata = (
        decode_tree(contents[k], tensors, used) for k in ("optimizer", "scheduler", "metadata")
    )
    _check_optimizer(optimizer)
    if (scheduler is not None and not isinstance(scheduler, dict)) or not isinstance(metadata, dict):
        raise Malformed("scheduler state and metadata must be JSON objects")
    unused = sorted(set(tensors) - used)
    if unused:
        raise Malformed(f"unexpected tensor(s) {unused[:5]}")
    return Checkpoint(model, optimizer, scheduler, rng, metadata)


def _check_optimizer(state: Any) -> None:
    """torch.optim's layout: ``{"state": {int: {str: value}}, "param_groups": [{..., "params": [int]}]}``."""
    if state is None:
        return
    if not isinstance(state, dict) or set(state) != {"state", "param_groups"}:
        raise Malformed("optimizer state must have exactly the keys 'state' and 'param_groups'")
    entries, groups = state["state"], state["param_groups"]
    if not isinstance(entries, dict) or not all(isinstance(k, int) and isinstance(v, dict) for k, v in entries.items()):
        raise Malformed("optimizer 'state' must map parameter indices to dicts")
    for group in groups if isinstance(groups, list) else [None]:
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise Malformed("optimizer 'param_groups' must be a list of dicts with a 'params' list")
        if not all(is_int(i) for i in group["params"]):
            raise Malformed("optimizer 'params' must list parameter indices")
