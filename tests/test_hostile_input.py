"""Hostile sizes and special files (issue 11, items 3 to 7): every case through the real CLI gives one line
naming the file and the problem, a non-zero exit, no traceback, nothing changed on disk, and is bounded in
time and memory.

- a crafted ``model.safetensors`` whose metadata promises 20,000 or 10^9 classes (item 3);
- a CSV header of 300,000 columns, with and without duplicates (item 4: linear, not quadratic);
- ``--config`` on a FIFO, on ``/dev/zero``, on a file over the size cap (item 5);
- a config value of 200,000 items or 10^6 characters quoted in an error (item 6);
- ``predict --output X --overwrite`` where X is a FIFO, a symlink, a folder or a device (item 7).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file, save

from minidl.cli.main import main
from minidl.limits import QUOTE_CHARS, short_repr
from tests.test_bad_input import snapshot

GOOD_CSV = "x1,x2,y\n" + "".join(f"{0.1 * i:.1f},{0.05 * i:.2f},{i % 2}\n" for i in range(1, 13))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 1-epoch run on 60 disk points."""
    root = tmp_path_factory.mktemp("hostile")
    argv = ["train", "--n-train", "60", "--n-test", "40", "--epochs", "1", "--hidden", "4:relu"]
    assert main([*argv, "--no-plots", "--quiet", "--out", str(root / "run")]) == 0
    return root / "run"


def crafted_model(run: Path, tmp: Path, **changes) -> Path:
    """A copy of ``run`` whose model.safetensors keeps its tensors but has ``changes`` in its metadata."""
    copy = Path(shutil.copytree(run, tmp / "run"))
    path = copy / "model.safetensors"
    tensors = load_file(path)
    meta = json.loads(json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])[
        "__metadata__"
    ]["minidl"])  # fmt: skip
    for key, value in changes.items():
        target = meta
        *parents, last = key.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    path.write_bytes(save(tensors, metadata={"minidl": json.dumps(meta)}))
    return copy


def one_line(argv: list[str], tmp: Path, capsys, monkeypatch, code: int = 1) -> str:
    """Run the CLI in ``tmp``: exit ``code``, one line on stderr, nothing on stdout, the disk unchanged."""
    monkeypatch.chdir(tmp)
    capsys.readouterr()
    before = snapshot(tmp)
    try:
        got = main(argv)
    except SystemExit as stop:
        got = stop.code
    out, err = capsys.readouterr()
    assert got == code, err
    assert snapshot(tmp) == before
    assert out == "" and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and "internal error" not in err, err
    return err


# -- item 3: a model's metadata is checked against the file ------------------------------------------------
# fmt: off
MODEL_CASES = [
    ("20000-classes", {"task__num_classes": 20000}, r"a binary task with num_classes 20000"),
    ("20000-classes-multiclass", {"task__num_classes": 20000, "task__kind": "multiclass"},
     r"num_classes 20000 but the last layer has 1 output"),
    ("1e9-classes", {"task__num_classes": 10**9, "task__kind": "multiclass"},
     r"num_classes 1000000000 but the last layer has 1 output"),
    ("1e18-outputs", {"out_features": 10**18}, r"num_classes 2 but the last layer has 1000000000000000000 output"),
    ("huge-in-features", {"in_features": 10**12}, r"in_features 1000000000000 but 2 feature name"),
    ("huge-hidden", {"hidden": "1000000000:relu"}, r"metadata describes \d+ parameters, the file holds 17"),
    ("classes-list-too-long", {"classes": list(range(50))}, r"num_classes 2 but the classes list holds 50"),
    ("multiclass-of-two", {"task__kind": "multiclass"}, r"a multiclass task with num_classes 2"),
    ("regression-with-classes", {"task__kind": "regression"}, r"a regression model has no classes"),
    ("negative-classes", {"task__num_classes": -1}, r"invalid task \{'kind': 'binary', 'num_classes': -1\}"),
    ("string-classes", {"task__num_classes": "2"}, r"invalid task"),
    ("bool-in-features", {"in_features": True}, r"invalid layer sizes True, 1"),
    ("dropout-string", {"dropout": "x" * 10**5}, r"dropout must be a number in \[0, 1\), got 'xxx"),
    ("nested-class-label", {"classes": [[0], [1]]}, r"class labels must be numbers or strings"),
]
# fmt: on


@pytest.mark.parametrize(("changes", "pattern"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_crafted_model_metadata_is_one_line(run, tmp_path, capsys, monkeypatch, changes, pattern, command):
    crafted_model(run, tmp_path, **changes)
    (tmp_path / "in.csv").write_text(GOOD_CSV)
    argv = ["evaluate", "run"] if command == "evaluate" else ["predict", "run", "--input", "in.csv", "--output", "o"]
    err = one_line(argv, tmp_path, capsys, monkeypatch)
    assert err.startswith(f"minidl {command}: error: model run/model.safetensors: "), err
    assert re.search(pattern, err), err
    assert len(err) < 400, err


def test_the_crafted_model_is_small_and_evaluate_stays_small(run, tmp_path):
    """The issue's case in a real process: a ~1 KB file promising 10^9 classes, under a 1.5 GB memory cap."""
    crafted = crafted_model(run, tmp_path, task__num_classes=10**9, task__kind="multiclass")
    assert (crafted / "model.safetensors").stat().st_size < 1500

    def cap() -> None:  # the child only: far below the 8 EB the metadata asks for
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "evaluate", str(crafted)],
        capture_output=True, text=True, timeout=120, env=env, preexec_fn=cap,
    )  # fmt: skip
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "num_classes 1000000000 but the last layer has 1 output" in result.stderr


def test_an_untouched_model_still_loads(run, tmp_path, capsys, monkeypatch):
    """The checks refuse only what is inconsistent: the run's own model, rewritten as is, evaluates."""
    crafted_model(run, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run"]) == 0
    assert "accuracy" in capsys.readouterr().out


# -- item 4: a wide CSV header is read in linear time ------------------------------------------------------
WIDTH = 300_000  # list.count per column took 25 s for 40,000 columns: this width would take ~20 minutes


@pytest.mark.parametrize("duplicates", [False, True], ids=["distinct", "duplicated"])
def test_a_wide_header_is_linear(tmp_path, duplicates):
    from minidl.data.csv import read_table
    from minidl.errors import DataError

    names = [f"c{i % (WIDTH // 2) if duplicates else i}" for i in range(WIDTH)]
    path = tmp_path / "wide.csv"
    path.write_text(",".join(names) + "\n" + ",".join("1" for _ in names) + "\n")
    start = time.monotonic()
    if duplicates:
        with pytest.raises(DataError) as error:
            read_table(path)
        message = str(error.value)
        assert message.startswith(f"{path}, line 1: duplicate column name(s) 'c0', 'c1', ")
        assert message.endswith(f" and {WIDTH // 2 - 5} more") and len(message) < 300
    else:
        assert len(read_table(path).columns) == WIDTH
    assert time.monotonic() - start < 60  # linear: ~1 s on a loaded 2-core machine


# -- item 5: --config on special or oversized files --------------------------------------------------------
def fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "c.toml")  # opened for reading without O_NONBLOCK, this would wait for a writer forever
    return "c.toml"


def oversized(tmp: Path) -> str:
    (tmp / "c.toml").write_text("# padding\n" * 200_000)  # 2 MB of comments: valid TOML, over the 1 MiB cap
    return "c.toml"


CONFIG_CASES = [
    ("fifo", fifo, r"c\.toml: not a regular file \(a pipe or a device is never read as a config file\)"),
    ("dev-zero", lambda t: "/dev/zero", r"/dev/zero: not a regular file"),
    ("folder", lambda t: str(t), r": is a folder, not a config file"),
    ("oversized", oversized, r"c\.toml: the config file is larger than 1048576 bytes"),
]


@pytest.mark.parametrize(("setup", "pattern"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_config_on_a_special_file_is_one_line(tmp_path, capsys, monkeypatch, setup, pattern):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--config", setup(tmp_path), "--epochs", "1", "--out", "new"]
    err = one_line(argv, tmp_path, capsys, monkeypatch)
    assert re.search(pattern, err), err


def test_config_on_a_fifo_in_a_real_process_does_not_block(tmp_path):
    fifo(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "minidl", "train", "--config", "c.toml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert result.returncode == 1 and "not a regular file" in result.stderr and result.stderr.count("\n") == 1


# -- item 6: an error quotes a short prefix of a value ----------------------------------------------------
@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[optimizer]\nname = 'adam'\nbetas = [" + "0.9," * 200_000 + "]\n", r"Invalid betas: .*got \(0\.9, 0\.9"),
        ("epochs = '" + "9" * 10**6 + "'\n", r"epochs must be an integer >= 1, got '9999"),
        ("batch_size = [" + "[" * 50 + "]" * 50 + "]\n", r"batch_size must be an integer >= 1"),
    ],
    ids=["betas-2e5-items", "epochs-1e6-chars", "nested-50-deep"],
)
def test_a_huge_value_is_quoted_as_a_short_prefix(tmp_path, capsys, monkeypatch, text, pattern):
    (tmp_path / "c.toml").write_text(text)
    err = one_line(["train", "--config", "c.toml", "--epochs", "1", "--out", "new"], tmp_path, capsys, monkeypatch)
    assert re.search(pattern, err) and len(err) < 300, err[:500]


@pytest.mark.parametrize(
    "value",
    [list(range(10**6)), "x" * 10**7, {str(i): i for i in range(10**5)}, 10**5000, [[[[[[1]]]]]], b"\xff" * 10**6],
    ids=["list", "str", "dict", "int", "nested", "bytes"],
)
def test_short_repr_is_short(value):
    text = short_repr(value)
    assert len(text) <= QUOTE_CHARS
    assert text[:3] == (repr(value)[:3] if not isinstance(value, int) else "<an")


def test_short_repr_leaves_a_short_value_as_repr():
    for value in (0.1, "abc", [1, 2], (0.9, 0.999), None, {"a": 1}):
        assert short_repr(value) == repr(value)


# -- item 7: predict --overwrite replaces a regular file only ----------------------------------------------
def make_fifo(tmp: Path) -> str:
    os.mkfifo(tmp / "out.csv")
    return "out.csv"


def make_symlink(tmp: Path) -> str:
    (tmp / "precious.txt").write_text("keep me")
    (tmp / "out.csv").symlink_to("precious.txt")
    return "out.csv"


def make_dangling_symlink(tmp: Path) -> str:
    (tmp / "out.csv").symlink_to("nowhere.txt")
    return "out.csv"


def make_folder(tmp: Path) -> str:
    (tmp / "out.csv").mkdir()
    return "out.csv"


OUTPUT_CASES = [
    ("fifo", make_fifo, r"output out\.csv exists and is a FIFO \(named pipe\); predict only ever replaces a regular"),
    ("symlink", make_symlink, r"output out\.csv exists and is a symbolic link"),
    ("dangling-symlink", make_dangling_symlink, r"output out\.csv exists and is a symbolic link"),
    ("folder", make_folder, r"output out\.csv exists and is a folder"),
    ("char-device", lambda t: "/dev/null", r"output /dev/null exists and is a character device"),
]


@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "no-overwrite"])
@pytest.mark.parametrize(("setup", "pattern"), [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_predict_never_replaces_a_special_file(run, tmp_path, capsys, monkeypatch, setup, pattern, overwrite):
    shutil.copytree(run, tmp_path / "run")
    (tmp_path / "in.csv").write_text(GOOD_CSV)
    output = setup(tmp_path)
    argv = ["predict", "run", "--input", "in.csv", "--output", output, *(["--overwrite"] if overwrite else [])]
    err = one_line(argv, tmp_path, capsys, monkeypatch)
    assert re.search(pattern, err), err
    if output == "/dev/null":
        assert Path("/dev/null").is_char_device()


def test_predict_overwrite_still_replaces_a_regular_file(run, tmp_path, monkeypatch):
    shutil.copytree(run, tmp_path / "run")
    (tmp_path / "in.csv").write_text(GOOD_CSV)
    (tmp_path / "out.csv").write_text("old")
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "run", "--input", "in.csv", "--output", "out.csv", "--overwrite"]) == 0
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0] == "x1,x2,y,prediction" and len(lines) == 13 and not (tmp_path / "out.csv").is_symlink()
