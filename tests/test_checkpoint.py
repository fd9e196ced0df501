"""Checkpoints: exact round trips, bit-identical resume, refusal of pickles and broken files, the folder."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import safetensors.torch
import torch

import minidl.nn as nn
from minidl.data.loader import DataLoader
from minidl.errors import CheckpointError, ConfigError, MinidlError
from minidl.optim import SGD, Adam, StepLR
from minidl.persist.checkpoint import Checkpoint, checkpoint_bytes, load_checkpoint, save_checkpoint
from minidl.persist.checkpoint_folder import CheckpointManager
from minidl.persist.rng import capture_rng_states, module_generators, restore_rng_states

# -- a small run that uses every source of randomness -------------------------------------------
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def make_run(seed: int, device: str = "cpu"):
    """Model with a Dropout on the global RNG and one on its own generator; momentum SGD; a shuffling
    loader; a StepLR. ``seed`` only changes the initial state, which a resume must overwrite."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3, generator=seed + 1), nn.Tanh(), nn.Dropout(0.2))
    model = nn.Sequential(model, nn.Linear(8, 1)).to(device)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.5)
    data = torch.Generator().manual_seed(7)
    x = torch.randn(20, 3, generator=data)
    y = x.sum(dim=1, keepdim=True).sin()
    loader = DataLoader(x.to(device), y.to(device), batch_size=6, shuffle=True, seed=seed + 2)
    return model, optimizer, scheduler, loader


def train(model, optimizer, scheduler, loader, epochs: int) -> None:
    loss_fn = nn.MSELoss()
    for _ in range(epochs):
        for xb, yb in loader:
            loss_fn(model(xb), yb)
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
        scheduler.step()


def generators(model, loader) -> dict[str, torch.Generator]:
    return {"loader": loader.generator, **module_generators(model)}


def save_run(path: Path, model, optimizer, scheduler, loader, epoch: int) -> None:
    save_checkpoint(
        path,
        model_state=model.state_dict(),
        optimizer_state=optimizer.state_dict(),
        scheduler_state=scheduler.state_dict(),
        rng_states=capture_rng_states(generators(model, loader)),
        metadata={"epoch": epoch, "step": epoch * len(loader), "config": {"lr": 0.05, "hidden": [8]}},
    )


@pytest.mark.parametrize("device", DEVICES)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, device):
    reference = make_run(seed=0, device=device)
    train(*reference, epochs=5)

    first = make_run(seed=0, device=device)
    train(*first, epochs=2)
    save_run(tmp_path / "ckpt.safetensors", *first, epoch=2)
    del first

    model, optimizer, scheduler, loader = make_run(seed=99, device=device)  # as a fresh process would
    checkpoint = load_checkpoint(tmp_path / "ckpt.safetensors")
    model.load_state_dict(checkpoint.model_state)
    optimizer.load_state_dict(checkpoint.optimizer_state)
    scheduler.load_state_dict(checkpoint.scheduler_state)
    restore_rng_states(checkpoint.rng_states, generators(model, loader))
    assert checkpoint.metadata == {"epoch": 2, "step": 8, "config": {"lr": 0.05, "hidden": [8]}}
    train(model, optimizer, scheduler, loader, epochs=3)

    for (name, expected), (_, got) in zip(reference[0].state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(expected, got), name
    assert optimizer.param_groups[0]["lr"] == reference[1].param_groups[0]["lr"] == 0.05 * 0.5**2
    assert set(checkpoint.rng_states) == {"torch", "loader", "module/0.1"} | ({"cuda/0"} if device == "cuda" else set())


@pytest.mark.parametrize(
    ("device", "left_out"),
    [("cpu", "torch"), ("cpu", "loader"), ("cpu", "module/0.1"), pytest.param("cuda", "cuda/0", marks=CUDA)],
)
def test_each_rng_state_matters(tmp_path, device, left_out):
    """The bit-identity test above can fail: leaving out any one RNG state changes the weights."""
    reference = make_run(seed=0, device=device)
    train(*reference, epochs=3)
    first = make_run(seed=0, device=device)
    train(*first, epochs=2)
    save_run(tmp_path / "c.safetensors", *first, epoch=2)
    model, optimizer, scheduler, loader = make_run(seed=99, device=device)
    checkpoint = load_checkpoint(tmp_path / "c.safetensors")
    model.load_state_dict(checkpoint.model_state)
    optimizer.load_state_dict(checkpoint.optimizer_state)
    scheduler.load_state_dict(checkpoint.scheduler_state)
    states = {name: state for name, state in checkpoint.rng_states.items() if name != left_out}
    own = {name: generator for name, generator in generators(model, loader).items() if name != left_out}
    if left_out == "torch":
        states["torch"] = torch.get_rng_state()  # keep this run's own global RNG
    restore_rng_states(states, own)
    train(model, optimizer, scheduler, loader, epochs=1)
    assert not torch.equal(model.state_dict()["1.weight"], reference[0].state_dict()["1.weight"])


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True), lambda ps: Adam(ps, lr=0.01, betas=(0.8, 0.99))],
    ids=["sgd-nesterov", "adam"],
)
def test_optimizer_state_round_trips_exactly(tmp_path, make_optimizer):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    optimizer = make_optimizer(model.parameters())
    for _ in range(3):
        loss = nn.MSELoss()
        loss(model(torch.randn(4, 2)), torch.randn(4, 1))
        optimizer.zero_grad()
        model.backward(loss.backward())
        optimizer.step()
    expected = optimizer.state_dict()
    save_checkpoint(tmp_path / "c.safetensors", model_state=model.state_dict(), optimizer_state=expected)
    got = load_checkpoint(tmp_path / "c.safetensors").optimizer_state
    assert got["param_groups"] == expected["param_groups"]  # tuples (betas) stay tuples, floats exact
    assert got["state"].keys() == expected["state"].keys()
    for index, entry in expected["state"].items():
        assert got["state"][index].keys() == entry.keys()
        for name, value in entry.items():
            same = (
                torch.equal(got["state"][index][name], value)
                if torch.is_tensor(value)
                else got["state"][index][name] == value
            )
            assert same and type(got["state"][index][name]) is type(value), (index, name)
    fresh = make_optimizer(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).parameters())
    fresh.load_state_dict(got)
    assert fresh.param_groups[0].keys() == optimizer.param_groups[0].keys()


def test_values_of_every_kind_round_trip(tmp_path):
    flat = torch.arange(10, dtype=torch.float64)
    model_state = {"a.weight": flat[:6].view(2, 3), "a.bias": flat[6:], "t": torch.ones(3, 2).t()}  # shared, strided
    metadata = {
        "epoch": 3, "ratio": 0.1 + 0.2, "big": 2**70, "inf": float("inf"), "none": None, "flag": True,
        "name": "ünï", "pair": (1, (2.5, "x")), "by_index": {0: "a", 7: [1, 2]}, "empty": {}, "list": [],
        "loss_sum": torch.tensor(1.25, dtype=torch.float64), "mask": torch.tensor([True, False]),
    }  # fmt: skip
    scheduler_state = {"last_epoch": 4, "best": float("-inf"), "buffer": torch.arange(3, dtype=torch.int64)}
    save_checkpoint(tmp_path / "c.safetensors", model_state=model_state, scheduler_state=scheduler_state,
                    metadata=metadata)  # fmt: skip
    got = load_checkpoint(tmp_path / "c.safetensors")
    assert list(got.model_state) == list(model_state)
    for key, tensor in model_state.items():
        assert torch.equal(got.model_state[key], tensor) and got.model_state[key].dtype == tensor.dtype
    assert got.optimizer_state is None and got.rng_states == {}
    assert got.scheduler_state["best"] == float("-inf") and torch.equal(got.scheduler_state["buffer"], torch.arange(3))
    plain = {k: v for k, v in metadata.items() if not torch.is_tensor(v)}
    assert {k: v for k, v in got.metadata.items() if k in plain} == plain
    assert got.metadata["pair"] == (1, (2.5, "x")) and got.metadata["ratio"] == 0.1 + 0.2
    assert torch.equal(got.metadata["loss_sum"], metadata["loss_sum"]) and got.metadata["mask"].dtype == torch.bool
    got.model_state["a.bias"].add_(1)  # loaded tensors are writable and own their memory
    assert got.minidl_version == __import__("minidl").__version__


@pytest.mark.parametrize(
    ("metadata", "match"),
    [({"f": object()}, "cannot save a value of type object"), ({"k": {1: 2, "a": 3}}, "all str or all int"),
     ({"x": {"__tensor__": "model/a"}}, "only key")],
)  # fmt: skip
def test_unsaveable_values_are_refused_before_writing(tmp_path, metadata, match):
    with pytest.raises(TypeError, match=match):
        save_checkpoint(tmp_path / "c.safetensors", model_state={}, metadata=metadata)
    assert not any(tmp_path.iterdir())


# -- pickles are refused and never run ---------------------------------------------------------
class Payload:
    """Unpickling this creates the file ``marker`` (it calls ``open(marker, "w")``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payloads(marker: Path) -> dict[str, bytes]:
    zipped = marker.parent / "zipped.pt"
    torch.save(Payload(marker), zipped)  # torch.save's zip archive with the pickle inside
    return {
        "pickle-protocol-4": pickle.dumps(Payload(marker), protocol=4),
        "pickle-protocol-2": pickle.dumps(Payload(marker), protocol=2),
        "pickle-protocol-0": pickle.dumps(Payload(marker), protocol=0),
        "torch-save-zip": zipped.read_bytes(),
    }


def test_the_payload_is_live(tmp_path):
    """Guard for the refusal test: unpickling these payloads does create the marker file."""
    for kind, payload in _payloads(tmp_path / "live").items():
        if kind != "torch-save-zip":
            pickle.loads(payload)  # deliberately: proves the payload works
            assert (tmp_path / "live").exists(), kind
            (tmp_path / "live").unlink()


REFUSALS = {
    "pickle-protocol-4": "looks like a pickle file (starts with 0x80); minidl only loads safetensors checkpoints "
    "and never unpickles",
    "pickle-protocol-2": "looks like a pickle file (starts with 0x80)",
    "pickle-protocol-0": "not a safetensors file",  # no magic bytes: refused by the header check
    "torch-save-zip": "looks like a zip archive (torch.save's format, which holds a pickle)",
}


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_a_pickle_payload_is_refused_and_never_executed(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "run" / "checkpoints" / "epoch-0001.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(_payloads(marker)[kind])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and REFUSALS[kind] in str(info.value)
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        CheckpointManager(tmp_path / "run").latest_valid()
    assert not marker.exists()


def test_pickle_bytes_inside_a_valid_checkpoint_stay_inert_data(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    blob = torch.frombuffer(bytearray(payload), dtype=torch.uint8)
    save_checkpoint(tmp_path / "c.safetensors", model_state={"w": blob}, metadata={"p": payload.decode("latin-1")})
    got = load_checkpoint(tmp_path / "c.safetensors")
    assert bytes(got.model_state["w"].tolist()) == payload and not marker.exists()


# -- broken files: one CheckpointError naming the path ------------------------------------------
def _valid(tmp_path: Path) -> bytes:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    return checkpoint_bytes(model_state=model.state_dict(), rng_states=capture_rng_states(), metadata={"epoch": 1})


def _header(entries: dict, data: bytes = b"", declared: int | None = None) -> bytes:
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header) if declared is None else declared) + header + data


def _minidl_meta(contents: dict) -> dict:
    return {"format": "minidl.checkpoint", "format_version": "1", "contents": json.dumps(contents)}


_EMPTY_CONTENTS = {"model": [], "rng": [], "optimizer": None, "scheduler": None, "metadata": {}}


def _ours(data: bytes = b"", tensors: dict | None = None, **contents) -> bytes:
    """A safetensors file with minidl's format tags, the given contents and raw tensor entries."""
    return _header({"__metadata__": _minidl_meta({**_EMPTY_CONTENTS, **contents}), **(tensors or {})}, data)


def _entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


BROKEN = {  # name -> (file bytes, expected words in the message)
    "empty": (b"", "empty"),
    "seven-bytes": (b"\x10\x00\x00\x00\x00\x00\x00", "truncated"),
    "absurd-header-length": (struct.pack("<Q", 2**62) + b"{}", "absurd safetensors header length 4611686018427387904"),
    "header-longer-than-file": (_header({}, declared=1000), "header length 1000 is more than the file's 10 bytes"),
    "header-over-100MB": (struct.pack("<Q", 100_000_001) + b"{" + b" " * 64, "100 MB"),
    "text-file": (b"epoch,loss\n1,0.5\n2,0.25\n", "not a safetensors file"),
    "not-json": (struct.pack("<Q", 4) + b"{abc", "not valid UTF-8 JSON"),
    "not-utf8": (struct.pack("<Q", 4) + b"{\xff\xfe}", "not valid UTF-8 JSON"),
    "json-array": (struct.pack("<Q", 2) + b"[]", "does not start with '{'"),
    "offsets-beyond-file": (_header({"a": _entry("F32", [4], 0, 16)}, b"\0" * 8), "cover"),
    "offsets-not-shape": (_header({"a": _entry("F32", [3], 0, 16)}, b"\0" * 16), "do not fit shape"),
    "overlap": (_header({"a": _entry("U8", [4], 0, 4), "b": _entry("U8", [4], 2, 6)}, b"\0" * 6), "overlap"),
    "trailing-bytes": (_header({}, b"junk"), "cover 0 bytes"),
    "bad-dtype": (_header({"a": _entry("F128", [1], 0, 16)}, b"\0" * 16), "unsupported dtype"),
    "bool-shape": (_header({"a": _entry("U8", [True], 0, 1)}, b"\0"), "invalid shape"),
    "metadata-not-strings": (_header({"__metadata__": {"format": 1}}), "mapping of strings"),
    "plain-safetensors": (safetensors.torch.save({"w": torch.ones(2)}), "not a minidl checkpoint"),
    "future-version": (_header({"__metadata__": {"format": "minidl.checkpoint", "format_version": "9"}}), "version"),
    "contents-not-json": (_header({"__metadata__": {**_minidl_meta({}), "contents": "{"}}), "not valid JSON"),
    "contents-not-object": (_header({"__metadata__": {**_minidl_meta({}), "contents": "[]"}}), "malformed"),
    "contents-key-missing": (_header({"__metadata__": _minidl_meta({"model": []})}), "missing key(s) rng, optimizer"),
    "missing-model-tensor": (_ours(model=["w"]), "missing"),
    "dangling-reference": (_ours(metadata={"x": {"__tensor__": "q"}}), "missing or reused tensor"),
    "unreferenced-tensor": (_ours(b"\0", {"extra": _entry("U8", [1], 0, 1)}), "unexpected tensor"),
    "bad-optimizer": (_ours(optimizer={"state": 3}), "optimizer"),
    "bad-int-keys": (_ours(metadata={"__int_keys__": {"x": 1}}), "malformed"),
    "rng-not-uint8": (_ours(b"\0" * 4, {"rng/torch": _entry("F32", [1], 0, 4)}, rng=["torch"]), "uint8"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_file_gives_one_checkpoint_error_naming_it(tmp_path, name):
    data, words = BROKEN[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and words in str(info.value)
    assert isinstance(info.value, MinidlError) and "\n" not in str(info.value)


def test_a_truncated_checkpoint_is_refused_at_every_cut(tmp_path):
    data = _valid(tmp_path)
    (header_length,) = struct.unpack("<Q", data[:8])
    cuts = sorted({*range(0, 8 + header_length + 16), *range(8 + header_length, len(data), 97), len(data) - 1})
    path = tmp_path / "cut.safetensors"
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=r"cut\.safetensors"):
            load_checkpoint(path)
    path.write_bytes(data)
    assert isinstance(load_checkpoint(path), Checkpoint)  # the uncut file loads


def test_paths_that_are_not_checkpoint_files(tmp_path):
    cases = {tmp_path / "missing.safetensors": "no such file", tmp_path: "is a folder"}
    if hasattr(os, "mkfifo"):  # opening a FIFO for reading would block: refused without opening it for real
        os.mkfifo(tmp_path / "fifo")
        cases[tmp_path / "fifo"] = "not a regular file"
    for path, words in cases.items():
        with pytest.raises(CheckpointError, match=words) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value)


# -- the checkpoint folder --------------------------------------------------------------------
def _save(manager: CheckpointManager, epoch: int, step: int | None = None) -> Path:
    return manager.save(epoch, step=step, model_state={"w": torch.full((2,), float(epoch))}, metadata={"epoch": epoch})


def test_manager_keeps_the_newest_k_in_training_order(tmp_path):
    manager = CheckpointManager(tmp_path, keep=3)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "notes.txt").write_text("mine")
    for epoch in range(1, 6):
        _save(manager, epoch)
    _save(manager, 6, step=3)
    names = [p.name for p in manager.paths()]
    assert names == ["epoch-0004.safetensors", "epoch-0005.safetensors", "epoch-0006-step-000003.safetensors"]
    _save(manager, 6)
    assert [p.name for p in manager.paths()][-2:] == ["epoch-0006-step-000003.safetensors", "epoch-0006.safetensors"]
    assert (tmp_path / "checkpoints" / "notes.txt").read_text() == "mine"
    found = manager.latest_valid()
    assert found.path.name == "epoch-0006.safetensors" and found.checkpoint.metadata == {"epoch": 6}
    assert found.skipped == [] and found.warnings() == []


def test_manager_falls_back_past_unreadable_checkpoints(tmp_path):
    manager = CheckpointManager(tmp_path)  # keep everything
    paths = [_save(manager, epoch) for epoch in range(1, 6)]
    paths[4].write_bytes(paths[4].read_bytes()[:100])  # torn
    paths[3].write_bytes(pickle.dumps({"epoch": 4}))  # not ours
    found = manager.latest_valid()
    assert found.path == paths[2] and found.checkpoint.metadata["epoch"] == 3
    assert [p for p, _ in found.skipped] == [paths[4], paths[3]]
    warnings = found.warnings()
    assert str(paths[4]) in warnings[0] and warnings[0].endswith("falling back to epoch-0004")
    assert "pickle" in warnings[1] and warnings[1].endswith("falling back to epoch-0003")
    for path in paths[:3]:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no readable checkpoint in .*epoch-0005.*empty"):
        manager.latest_valid()


def test_manager_without_checkpoints_and_bad_keep(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in"):
        CheckpointManager(tmp_path / "nowhere").latest_valid()
    for keep in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="keep must be a positive number"):
            CheckpointManager(tmp_path, keep=keep)


def test_manager_ignores_and_cleans_leftover_temp_files(tmp_path):
    manager = CheckpointManager(tmp_path, keep=2)
    _save(manager, 1)
    leftover = tmp_path / "checkpoints" / ".epoch-0002.safetensors.0123456789abcdef.tmp"
    leftover.write_bytes(b"half a checkpoint")
    assert manager.latest_valid().path.name == "epoch-0001.safetensors"
    _save(manager, 2)
    assert not leftover.exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch-0001.safetensors",
        "epoch-0002.safetensors",
    ]


def test_unwritable_checkpoint_folder_is_a_checkpoint_error(tmp_path):
    (tmp_path / "run").write_text("a file where the run folder should be")
    with pytest.raises(CheckpointError, match="cannot create checkpoint folder"):
        _save(CheckpointManager(tmp_path / "run"), 1)


def test_rng_states_must_match_the_runs_generators():
    loader = torch.Generator().manual_seed(3)
    states = capture_rng_states({"loader": loader})
    expected = (torch.rand(2), torch.rand(2, generator=loader))
    restore_rng_states(states, {"loader": loader})
    assert torch.equal(torch.rand(2), expected[0]) and torch.equal(torch.rand(2, generator=loader), expected[1])
    with pytest.raises(CheckpointError, match="missing: module/1; unexpected: loader"):
        restore_rng_states(states, {"module/1": torch.Generator()})
    with pytest.raises(CheckpointError, match="RNG state is invalid"):
        restore_rng_states({"torch": torch.zeros(3, dtype=torch.uint8)})
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5, generator=1), nn.Dropout(0.5))
    assert list(module_generators(model)) == ["module/1"]


@CUDA
def test_cuda_rng_states_are_captured_and_restored():
    torch.rand(1, device="cuda")  # CUDA in use
    states = capture_rng_states()
    expected = torch.rand(4, device="cuda")
    torch.rand(4, device="cuda")
    restore_rng_states(states)
    assert "cuda/0" in states and torch.equal(torch.rand(4, device="cuda"), expected)
