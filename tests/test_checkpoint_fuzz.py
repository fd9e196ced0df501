"""Property tests: whatever bytes load_checkpoint is given, it returns a Checkpoint or raises CheckpointError.

Sizes are bounded (a few KB), so every example also shows the loader finishes on such input.
"""

from __future__ import annotations

import json
import struct

import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import minidl.nn as nn
from minidl.errors import CheckpointError
from minidl.optim import SGD
from minidl.persist.checkpoint import Checkpoint, checkpoint_bytes, load_checkpoint
from minidl.persist.rng import capture_rng_states

FILE_SETTINGS = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_checkpoint() -> bytes:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = nn.MSELoss()
    loss(model(torch.randn(4, 2)), torch.randn(4, 1))
    model.backward(loss.backward())
    optimizer.step()
    return checkpoint_bytes(
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        rng_states=capture_rng_states({"loader": torch.Generator().manual_seed(1)}),
        metadata={"epoch": 1, "step": 4, "config": {"lr": 0.1, "betas": (0.9, 0.99)}},
    )


VALID = _valid_checkpoint()
HEADER_END = 8 + struct.unpack("<Q", VALID[:8])[0]


def _load_or_refuse(tmp_path, data: bytes) -> Checkpoint | None:
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(data)
    try:
        return load_checkpoint(path)
    except CheckpointError as error:
        assert str(path) in str(error)
        return None


@FILE_SETTINGS
@given(data=st.binary(max_size=4096))
@example(data=b"")
@example(data=b"\x80\x04\x95")
@example(data=struct.pack("<Q", 2) + b"{}")
def test_random_bytes_only_ever_raise_checkpoint_error(tmp_path, data):
    _load_or_refuse(tmp_path, data)


@FILE_SETTINGS
@given(length=st.integers(0, 2**64 - 1), body=st.binary(max_size=512))
def test_random_header_lengths_only_ever_raise_checkpoint_error(tmp_path, length, body):
    _load_or_refuse(tmp_path, struct.pack("<Q", length) + b"{" + body)


# a mutation: overwrite, insert or delete a few bytes, or cut the file; biased towards the JSON header
_position = st.one_of(st.integers(0, HEADER_END), st.integers(0, len(VALID)))
_mutation = st.tuples(st.sampled_from(["set", "insert", "delete", "cut"]), _position, st.binary(min_size=1, max_size=8))


@FILE_SETTINGS
@given(mutations=st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_checkpoints_load_or_raise_checkpoint_error(tmp_path, mutations):
    data = bytearray(VALID)
    for kind, position, chunk in mutations:
        position = min(position, len(data))
        if kind == "set":
            data[position : position + len(chunk)] = chunk[: len(data) - position]
        elif kind == "insert":
            data[position:position] = chunk
        elif kind == "delete":
            del data[position : position + len(chunk)]
        else:
            del data[position:]
    loaded = _load_or_refuse(tmp_path, bytes(data))
    if loaded is not None:  # a flip inside tensor data still loads: same structure, maybe other numbers
        assert list(loaded.model_state) == ["0.weight", "0.bias", "2.weight", "2.bias"]


_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
_key = st.text(max_size=3) | st.integers(-2, 99).map(str)


def _extend(children):
    return (
        st.lists(children, max_size=3)
        | st.dictionaries(_key, children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["__tensor__", "__tuple__", "__int_keys__"]), children, min_size=1, max_size=1
        )
        | st.dictionaries(_key, children, max_size=3).map(lambda d: {"__int_keys__": d})
        | st.sampled_from(["model/w", "rng/torch", "meta/x", ""]).map(lambda name: {"__tensor__": name})
    )


_tree = st.recursive(_leaf, _extend, max_leaves=10)  # JSON with minidl's tags anywhere, right or wrong
_object = st.dictionaries(_key, _tree, max_size=3)
_contents = st.fixed_dictionaries(  # mostly right where a wrong value stops decoding early, so the tags get reached
    {
        "model": st.just(["w"]),  # wrong names and lists: the table in test_checkpoint.py
        "rng": st.sampled_from([["torch"], []]),
        "optimizer": st.none() | _tree | st.fixed_dictionaries({"state": _tree, "param_groups": _tree}),
        "scheduler": st.none() | _object | _tree,
        "metadata": _object | _object | _tree,
    }
)
_dropped = st.sets(st.sampled_from(["model", "rng", "optimizer", "scheduler", "metadata"]), max_size=1)


@FILE_SETTINGS
@given(contents=_contents, dropped=_dropped, version=st.sampled_from(["1", "1", "1", "0"]))
def test_arbitrary_contents_json_only_ever_raises_checkpoint_error(tmp_path, contents, dropped, version):
    """A well-formed safetensors file whose minidl contents are any JSON (with stray tags and names)."""
    contents = {key: value for key, value in contents.items() if key not in dropped}
    header = {
        "__metadata__": {"format": "minidl.checkpoint", "format_version": version, "contents": json.dumps(contents)},
        "model/w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "rng/torch": {"dtype": "U8", "shape": [3], "data_offsets": [8, 11]},
    }
    raw = json.dumps(header).encode()
    _load_or_refuse(tmp_path, struct.pack("<Q", len(raw)) + raw + bytes(11))


def test_the_unmutated_checkpoint_loads(tmp_path):
    """Guard for the mutation test: without mutations the file loads, so refusals come from the mutations."""
    loaded = _load_or_refuse(tmp_path, VALID)
    assert loaded is not None and loaded.metadata["config"]["betas"] == (0.9, 0.99)
