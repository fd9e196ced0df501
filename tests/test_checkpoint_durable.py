"""Crash-safe writes: atomic replacement (also under SIGKILL), durable appends, trimming metrics.csv on resume."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.persist.durable import (
    append_line_durable,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    remove_temp_files,
    truncate_to_epoch,
)

DURABLE_PY = Path(__file__).resolve().parents[1] / "src" / "minidl" / "persist" / "durable.py"


def test_atomic_write_replaces_the_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "config.toml"
    target.write_text("old")
    atomic_write_text(target, "new ünïcode\r\n")
    assert target.read_bytes() == "new ünïcode\r\n".encode()
    atomic_write_bytes(tmp_path / "fresh.bin", b"\x00\x01")
    assert (tmp_path / "fresh.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "fresh.bin"]


def test_an_error_inside_the_writer_leaves_the_old_file(tmp_path):
    target = tmp_path / "epoch-0001.safetensors"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(target) as f:
        f.write(b"half of the new")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["epoch-0001.safetensors"]


def test_a_failed_write_into_a_missing_folder_raises_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nowhere" / "x", b"data")


# The child rewrites TARGET in a loop, alternating b"A" * SIZE and b"B" * SIZE, in 64 chunks. With
# STOP_AT = (i, j) it says "mid" after chunk j of write i and waits to be killed: a kill mid-write.
_CHILD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("durable", sys.argv[1])
durable = importlib.util.module_from_spec(spec)
spec.loader.exec_module(durable)
target, size, stop_write, stop_chunk = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print("ready", flush=True)
i = 0
while True:
    with durable.atomic_open(target) as f:
        for j in range(64):
            f.write(b"AB"[i % 2 : i % 2 + 1] * (size // 64))
            if (i, j) == (stop_write, stop_chunk):
                print("mid", flush=True)
                time.sleep(60)
    i += 1
"""
SIZE = 64 * 4096


def _run_child(target: Path, stop: tuple[int, int]) -> subprocess.Popen:
    args = [sys.executable, "-c", _CHILD, str(DURABLE_PY), str(target), str(SIZE), *map(str, stop)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_mid_write_leaves_the_old_content(tmp_path):
    target = tmp_path / "ckpt"
    for stop_write, expected in [(0, b"old"), (1, b"A"), (2, b"B")]:
        target.write_bytes(b"old")
        child = _run_child(target, (stop_write, 31))
        assert child.stdout.readline() == "ready\n" and child.stdout.readline() == "mid\n"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        content = target.read_bytes()
        assert content == (expected if expected == b"old" else expected * SIZE), stop_write
        assert remove_temp_files(tmp_path), "the killed writer left its temporary file"
        assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX only")
def test_sigkill_at_random_moments_never_tears_the_file(tmp_path):
    target = tmp_path / "ckpt"
    target.write_bytes(b"A" * SIZE)
    rng = random.Random(0)
    for _ in range(6):
        child = _run_child(target, (-1, -1))
        assert child.stdout.readline() == "ready\n"
        try:
            child.wait(timeout=rng.uniform(0.0, 0.05))
        except subprocess.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        child.stdout.close()
        assert target.read_bytes() in (b"A" * SIZE, b"B" * SIZE)
        remove_temp_files(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_remove_temp_files_only_touches_atomic_open_leftovers(tmp_path):
    keep = [".hidden", "a.tmp", ".x.tmp", ".x.0123456789abcdeg.tmp", "epoch-0001.safetensors"]
    for name in keep:
        (tmp_path / name).write_text("keep")
    (tmp_path / ".epoch-0002.safetensors.0123456789abcdef.tmp").write_text("leftover")
    assert [p.name for p in remove_temp_files(tmp_path)] == [".epoch-0002.safetensors.0123456789abcdef.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert remove_temp_files(tmp_path / "missing") == []


# -- metrics.csv ----------------------------------------------------------------------------------
HEADER = "epoch,loss,accuracy"


def test_append_line_durable_appends_lines(tmp_path):
    path = tmp_path / "metrics.csv"
    append_line_durable(path, HEADER)
    append_line_durable(path, "1,0.5,0.75\n")
    assert path.read_text() == f"{HEADER}\n1,0.5,0.75\n"


@pytest.mark.parametrize(
    ("text", "epoch", "expected", "kept"),
    [
        (f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n3,0.3,0.9\n", 2, f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n", 2),
        (f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n3,0.3", 2, f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n", 2),  # torn row 3
        (f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n3,0.3", 5, f"{HEADER}\n1,0.5,0.7\n2,0.4,0.8\n", 2),  # torn, epoch past it
        (f"{HEADER}\n1,0.5,0.7\n2,0.4\n", 5, f"{HEADER}\n1,0.5,0.7\n", 1),  # too few fields
        (f"{HEADER}\n1,0.5,0.7\n", 0, f"{HEADER}\n", 0),
        (f"{HEADER}\n", 3, f"{HEADER}\n", 0),
        ("epo", 3, "", 0),  # a torn header
        ("", 3, "", 0),
        ("loss,epoch\n0.5,1\n0.4,2\n", 1, "loss,epoch\n0.5,1\n", 1),  # found by name
    ],
)
def test_truncate_to_epoch(tmp_path, text, epoch, expected, kept):
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    assert truncate_to_epoch(path, epoch) == kept
    assert path.read_text() == expected
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_truncate_to_epoch_missing_file_and_missing_column(tmp_path):
    assert truncate_to_epoch(tmp_path / "metrics.csv", 3) == 0
    assert not (tmp_path / "metrics.csv").exists()
    (tmp_path / "metrics.csv").write_text("loss\n0.5\n")
    with pytest.raises(ValueError, match="has no 'epoch' column"):
        truncate_to_epoch(tmp_path / "metrics.csv", 3)


def test_resume_then_append_gives_each_epoch_once(tmp_path):
    path = tmp_path / "metrics.csv"
    append_line_durable(path, HEADER)
    for epoch in range(1, 5):
        append_line_durable(path, f"{epoch},0.{epoch},0.9")
    with open(path, "a") as f:
        f.write("5,0.5")  # the crash hit mid-append
    truncate_to_epoch(path, 3)  # the newest checkpoint is epoch 3
    for epoch in range(4, 6):
        append_line_durable(path, f"{epoch},0.{epoch},0.9")
    rows = path.read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["1", "2", "3", "4", "5"]
