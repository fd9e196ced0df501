"""The bad-input catalogue: every case through the real CLI gives one line naming the input and the problem,
a non-zero exit, no traceback, and leaves the disk exactly as it was.

Each row is ``(id, setup, pattern, exit code)``: ``setup(tmp, runs)`` writes the files the case needs into
``tmp`` (the working directory) and returns the command line; ``runs`` holds two small finished runs (copy
them before corrupting). The disk is compared before and after: every path, its type, size, mtime and
bytes, folders included, so a temporary file created and deleted again also counts as a change.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from minidl.cli.main import main
from minidl.errors import ConfigError
from minidl.persist.checkpoint import load_checkpoint, save_checkpoint

CSV_ROWS = "".join(f"{0.1 * i:.1f},{0.05 * i:.2f},{i % 2}\n" for i in range(1, 13))
GOOD_CSV = "x1,x2,y\n" + CSV_ROWS
THREE_CLASSES = "a,b,y\n" + "".join(f"{i},{i + 1},{i % 3}\n" for i in range(12))
REGRESSION = "a,b,y\n" + "".join(f"{i},{i + 1},{i * 0.37:.2f}\n" for i in range(12))
TRAIN = ["train", "--epochs", "1", "--no-plots", "--quiet", "--out", "new"]


class Payload:
    """Unpickling this calls ``open(marker, "w")``: it would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def pickle_payload(tmp: Path) -> bytes:
    return pickle.dumps(Payload(tmp / "PWNED"), protocol=4)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished 2-epoch runs on 60 disk points: hidden 4:relu ("run") and 6:relu ("other")."""
    root = tmp_path_factory.mktemp("runs")
    for name, hidden in (("run", "4:relu"), ("other", "6:relu")):
        argv = ["train", "--n-train", "60", "--n-test", "40", "--epochs", "2", "--batch-size", "16"]
        assert main([*argv, "--hidden", hidden, "--no-plots", "--quiet", "--out", str(root / name)]) == 0
    return root


def copy_run(tmp: Path, runs: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(runs / name, tmp / name))


def write(tmp: Path, name: str, text: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return name


def config(tmp: Path, text: str) -> list[str]:
    return ["train", "--config", write(tmp, "c.toml", text), *TRAIN[1:]]


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").iterdir())


# -- setups that need more than one line ------------------------------------------------------------------
def truncated_checkpoints(tmp, runs):
    run = copy_run(tmp, runs)
    for path in checkpoints(run):
        path.write_bytes(path.read_bytes()[:100])
    return ["train", "--resume", "run"]


def corrupt_header(tmp, runs):
    run = copy_run(tmp, runs)
    for path in checkpoints(run):
        data = bytearray(path.read_bytes())
        data[20:24] = b"\xff\xfe\xff\xfe"  # inside the JSON header
        path.write_bytes(bytes(data))
    return ["train", "--resume", "run"]


def absurd_header(tmp, runs):
    run = copy_run(tmp, runs)
    for path in checkpoints(run):
        path.write_bytes(struct.pack("<Q", 2**62) + path.read_bytes()[8:])
    return ["train", "--resume", "run"]


def pickled_checkpoint(tmp, runs):
    run = copy_run(tmp, runs)
    for path in checkpoints(run):
        path.write_bytes(pickle_payload(tmp))
    return ["train", "--resume", "run"]


def other_architecture(tmp, runs):
    """A checkpoint whose weights (another run's, 6 hidden units) do not fit its own config (4 units)."""
    run = copy_run(tmp, runs)
    other = load_checkpoint(checkpoints(runs / "other")[-1])
    for path in checkpoints(run):
        mine = load_checkpoint(path)
        save_checkpoint(
            path,
            model_state=other.model_state,
            optimizer_state=other.optimizer_state,
            scheduler_state=mine.scheduler_state,
            rng_states=mine.rng_states,
            metadata=mine.metadata,
        )
    return ["train", "--resume", "run"]


def other_runs_checkpoint(tmp, runs):
    run = copy_run(tmp, runs)
    newest = checkpoints(runs / "other")[-1]
    shutil.copy(newest, run / "checkpoints" / "epoch-0009.safetensors")
    return ["train", "--resume", "run"]


def no_checkpoints(tmp, runs):
    run = copy_run(tmp, runs)
    shutil.rmtree(run / "checkpoints")
    return ["train", "--resume", "run"]


def model_file(content):
    def setup(tmp, runs):
        run = copy_run(tmp, runs)
        data = content(tmp)
        (run / "model.safetensors").write_bytes(data)
        return ["predict", "run", "--input", write(tmp, "in.csv", GOOD_CSV), "--output", "out.csv"]

    return setup


def torch_save_bytes(tmp: Path) -> bytes:
    torch.save({"0.weight": torch.zeros(4, 2)}, tmp / "t.pt")
    data = (tmp / "t.pt").read_bytes()
    (tmp / "t.pt").unlink()
    return data


def evaluate_model_file(tmp, runs):
    model_file(torch_save_bytes)(tmp, runs)
    return ["evaluate", "run"]


def pipe(tmp: Path, name: str) -> str:
    os.mkfifo(tmp / name)  # reading it would wait for a writer forever
    return name


def model_pipe(tmp, runs):
    run = copy_run(tmp, runs)
    (run / "model.safetensors").unlink()
    pipe(run, "model.safetensors")
    return ["evaluate", "run"]


def corrupt_config_json(tmp, runs):
    run = copy_run(tmp, runs)
    (run / "config.json").write_text('{"seed": 0,')
    return ["evaluate", "run"]


def csv_train(name: str, text: str, *more: str):
    return lambda t, r: [*TRAIN, "--dataset", write(t, name, text), *more]


def with_run(command: str, *more):
    """``command RUN_COPY more...``; a ``(name, text)`` item in ``more`` is written as a file first."""
    return lambda t, r: [command, str(copy_run(t, r)), *(write(t, *m) if isinstance(m, tuple) else m for m in more)]


def resume(*more: str):
    return lambda t, r: ["train", "--resume", str(copy_run(t, r)), *more]


UNSEEN_LABEL = GOOD_CSV.replace(",1\n", ",7\n", 1)  # line 2's label 1 becomes 7
FOUR_COLUMNS = ("in.csv", "a,b,c,d\n1,2,3,0\n")
# fmt: off
CASES = [
    # wrong input shapes, mismatched targets
    ("predict-wrong-columns", with_run("predict", "--input", FOUR_COLUMNS, "--output", "o.csv"),
     r"in\.csv: missing feature column\(s\) 'x1', 'x2'; the model reads x1, x2; the file has a, b, c, d", 1),
    ("evaluate-wrong-columns", with_run("evaluate", "--data", FOUR_COLUMNS, "--target", "d"),
     r"in\.csv: missing feature column\(s\) 'x1', 'x2'; the model reads x1, x2", 1),
    ("class-weights-vs-classes",
     csv_train("three.csv", THREE_CLASSES, "--loss", "cross-entropy", "--loss-args", "weight=[1.0,2.0]"),
     r"weight of shape \(2,\) does not give one weight to each of the 3 classes", 1),
    ("class-loss-on-regression-target", csv_train("reg.csv", REGRESSION, "--loss", "cross-entropy"),
     r"loss 'cross-entropy' needs class labels, but reg\.csv has a regression target", 1),
    ("loss-without-reduction", csv_train("reg.csv", REGRESSION, "--loss", "huber", "--loss-args", "reduction=none"),
     r"loss 'huber': reduction must be 'mean' or 'sum' to train, got 'none'", 1),
    # unknown names
    ("unknown-activation", lambda t, r: [*TRAIN, "--hidden", "8:relux"],
     r"hidden layer '8:relux': unknown activation 'relux'; choose from", 1),
    ("unknown-layer-spec", lambda t, r: [*TRAIN, "--hidden", "8-relu"],
     r"hidden layer '8-relu': expected SIZE:ACTIVATION", 1),
    ("unknown-loss-flag", lambda t, r: [*TRAIN, "--loss", "hinge"],
     r"argument --loss: invalid choice: 'hinge'", 2),
    ("unknown-loss-config", lambda t, r: config(t, '[loss]\nname = "hinge"\n'),
     r"unknown loss 'hinge'; choose from", 1),
    ("unknown-optimizer-flag", lambda t, r: [*TRAIN, "--optim", "adamx"],
     r"argument --optim: invalid choice: 'adamx'", 2),
    ("unknown-optimizer-config", lambda t, r: config(t, '[optimizer]\nname = "adamx"\n'),
     r"unknown optimizer 'adamx'; choose from", 1),
    ("unknown-scheduler-config", lambda t, r: config(t, '[scheduler]\nname = "warmup"\n'),
     r"unknown scheduler 'warmup'; choose from", 1),
    ("unknown-dataset", lambda t, r: [*TRAIN, "--dataset", "moon"],
     r"unknown data set 'moon'; choose from", 1),
    # hyperparameters out of range
    ("lr-zero-flag", lambda t, r: [*TRAIN, "--lr", "0"],
     r"argument --lr: must be a finite number > 0, got 0", 2),
    ("lr-negative-config", lambda t, r: config(t, "[optimizer]\nlr = -0.1\n"),
     r"optimizer\.lr must be > 0, got -0\.1", 1),
    ("lr-zero-config", lambda t, r: config(t, "[optimizer]\nlr = 0.0\n"),
     r"optimizer\.lr must be > 0, got 0\.0", 1),
    ("epochs-zero-flag", lambda t, r: [*TRAIN[:2], "0", *TRAIN[3:]],
     r"argument --epochs: must be an integer >= 1", 2),
    ("epochs-zero-config", lambda t, r: ["train", "--config", write(t, "c.toml", "epochs = 0\n"), "--out", "new"],
     r"c\.toml: epochs must be an integer >= 1, got 0", 1),
    ("batch-size-zero-flag", lambda t, r: [*TRAIN, "--batch-size", "0"],
     r"argument --batch-size: must be an integer >= 1, got 0", 2),
    ("batch-size-negative-config", lambda t, r: config(t, "batch_size = -4\n"),
     r"c\.toml: batch_size must be an integer >= 1, got -4", 1),
    ("dropout-one-flag", lambda t, r: [*TRAIN, "--dropout", "1"],
     r"argument --dropout: must be a number in \[0, 1\)", 2),
    ("dropout-negative-config", lambda t, r: config(t, "[model]\ndropout = -0.1\n"),
     r"model\.dropout must be a dropout probability in \[0, 1\), got -0\.1", 1),
    # bad data
    ("nan-cell", csv_train("d.csv", GOOD_CSV.replace("0.10,0", "nan,0", 1)),
     r"d\.csv, line 3, column 'x2': non-finite value 'nan'", 1),
    ("inf-cell", csv_train("d.csv", GOOD_CSV.replace("0.4,", "-inf,", 1)),
     r"d\.csv, line 5, column 'x1': non-finite value '-inf'", 1),
    ("too-large-for-float32", csv_train("d.csv", GOOD_CSV.replace("0.3,", "1e39,")),
     r"d\.csv, line 4, column 'x1': '1e39' is too large for float32", 1),
    ("empty-csv", csv_train("d.csv", ""),
     r"d\.csv: the file is empty", 1),
    ("header-only-csv", csv_train("d.csv", "x1,x2,y\n"),
     r"d\.csv: no data rows after the header", 1),
    ("missing-target-column", csv_train("d.csv", GOOD_CSV, "--target", "label"),
     r"d\.csv: no column named 'label'; the columns are x1, x2, y", 1),
    ("non-numeric-cell", csv_train("d.csv", GOOD_CSV.replace("0.3,", "abc,")),
     r"d\.csv, line 4, column 'x1': 'abc' is not a number", 1),
    ("ragged-row", csv_train("d.csv", GOOD_CSV.replace("0.4,0.20,0", "0.4,0.20")),
     r"d\.csv, line 5: expected 3 columns, got 2", 1),
    ("unseen-class-label", with_run("evaluate", "--data", ("d.csv", UNSEEN_LABEL), "--target", "y"),
     r"d\.csv, line 2, column 'y': class label '7' was never seen in training \(known: 0, 1\)", 1),
    # checkpoints and model files
    ("resume-truncated-checkpoints", truncated_checkpoints,
     r"no readable checkpoint in run/checkpoints: checkpoint run/checkpoints/epoch-0002\.safetensors: .*truncated", 1),
    ("resume-corrupt-checkpoints", corrupt_header,
     r"no readable checkpoint in run/checkpoints: .*not valid UTF-8 JSON", 1),
    ("resume-other-architecture", other_architecture,
     r"checkpoint run/checkpoints/epoch-0002\.safetensors does not fit this run: .*size mismatch for 0\.weight", 1),
    ("resume-other-runs-checkpoint", other_runs_checkpoint,
     r"checkpoint run/checkpoints/epoch-0009\.safetensors belongs to another run: .*model\.hidden", 1),
    ("resume-absurd-header-length", absurd_header,
     r"absurd safetensors header length 4611686018427387904", 1),
    ("resume-pickle-checkpoint", pickled_checkpoint,
     r"epoch-0002\.safetensors: looks like a pickle file .*never unpickles", 1),
    ("predict-pickle-model", model_file(pickle_payload),
     r"model run/model\.safetensors: looks like a pickle file .*never unpickles", 1),
    ("predict-absurd-header-model", model_file(lambda t: struct.pack("<Q", 2**40) + b'{"a": 1}'),
     r"model run/model\.safetensors: absurd safetensors header length", 1),
    ("evaluate-torch-save-model", evaluate_model_file,
     r"model run/model\.safetensors: looks like a zip archive", 1),
    ("evaluate-model-is-a-pipe", model_pipe,
     r"model run/model\.safetensors: is not a regular file", 1),
    ("dataset-is-a-pipe", lambda t, r: [*TRAIN, "--dataset", pipe(t, "d.csv")],
     r"d\.csv: not a regular file \(a pipe or a device is never read", 1),
    ("evaluate-corrupt-config-json", corrupt_config_json,
     r"run/config\.json: not valid JSON", 1),
    ("resume-without-checkpoints", no_checkpoints,
     r"no checkpoint in run/checkpoints to resume from", 1),
    # paths and folders
    ("resume-nonexistent", lambda t, r: ["train", "--resume", "nowhere"],
     r"--resume nowhere: no such run folder", 1),
    ("evaluate-nonexistent", lambda t, r: ["evaluate", "nowhere"],
     r"run folder nowhere: no such folder", 1),
    ("dataset-nonexistent-csv", lambda t, r: [*TRAIN, "--dataset", "missing.csv"],
     r"missing\.csv: no such file", 1),
    ("config-nonexistent", lambda t, r: ["train", "--config", "missing.toml"],
     r"missing\.toml: no such config file", 1),
    ("run-folder-exists", lambda t, r: [*TRAIN[:-1], str(copy_run(t, r))],
     r"run folder .*/run already exists and is not empty; pass --overwrite", 1),
    ("unwritable-output-folder", lambda t, r: [*TRAIN[:-1], write(t, "afile", "x") + "/run"],
     r"cannot create the run folder afile/run: .*afile is a file, not a folder", 1),
    ("predict-output-exists", with_run("predict", "--input", ("in.csv", GOOD_CSV), "--output", ("o.csv", "x")),
     r"output o\.csv already exists; pass --overwrite", 1),
    # configs
    ("toml-syntax-error", lambda t, r: config(t, "epochs = 3\nlr 0.1\n"),
     r"c\.toml: invalid TOML: .*\(at line 2, column", 1),
    ("unknown-config-key", lambda t, r: config(t, "epoch = 3\n"),
     r"c\.toml: unknown key 'epoch'; did you mean 'epochs'\?", 1),
    # resume flags
    ("resume-with-lr", resume("--lr", "0.1"),
     r"--lr cannot be used with --resume: a resumed run keeps the settings in its checkpoint", 1),
    ("resume-with-out", resume("--out", "x"),
     r"argument --out: not allowed with argument --resume", 2),
    ("resume-fewer-epochs", resume("--epochs", "1"),
     r"--epochs 1: run .*/run has already done 2 epochs", 1),
]
# fmt: on
SUBPROCESS = ("resume-pickle-checkpoint", "lr-zero-flag", "toml-syntax-error")


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` (and ``root``): type, size, mtime and, for files, the bytes."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        out[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns, content)
    return out


def run_main(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # argparse errors
        return stop.code


def test_the_catalogue_has_at_least_25_distinct_cases():
    assert len(CASES) >= 25 and len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("setup", "pattern", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(setup, pattern, code, runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = setup(tmp_path, runs)
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert run_main(argv) == code
    out, err = capsys.readouterr()
    assert snapshot(tmp_path) == before
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and err.startswith(("minidl train: ", "minidl evaluate: ", "minidl predict: "))
    if code == 1:
        assert ": error: " in err and "internal error" not in err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in SUBPROCESS], ids=lambda c: c[0])
def test_bad_input_in_a_real_process(case, runs, tmp_path):
    """The console command: the real exit status, one line on stderr, no traceback, nothing written."""
    _, setup, pattern, code = case
    argv = setup(tmp_path, runs)
    before = snapshot(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "minidl", *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == code, result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "PWNED").exists()


def test_the_pickle_payload_is_live(tmp_path):
    """The payload used above really creates its marker when unpickled, so its absence above means something."""
    pickle.loads(pickle_payload(tmp_path)).close()
    assert (tmp_path / "PWNED").exists()


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no such run folder"):
        main(["--debug", "train", "--resume", "nowhere"])


def test_the_snapshot_sees_a_file_created_and_deleted_again(tmp_path):
    (tmp_path / "a").mkdir()
    before = snapshot(tmp_path)
    (tmp_path / "a" / ".tmp").write_text("x")
    (tmp_path / "a" / ".tmp").unlink()
    assert snapshot(tmp_path) != before  # the folder's mtime moved
