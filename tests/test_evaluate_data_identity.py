"""``minidl evaluate RUN`` on a CSV run: the model records its data file (path, size, SHA-256), and the run's
own split is rebuilt only from the same bytes; a changed file is refused in one line pointing at ``--data``."""

from __future__ import annotations

import json
import struct

import pytest

from minidl.cli.main import main
from minidl.errors import CheckpointError
from minidl.experiment.saved_model import SavedModel

ROWS = "".join(f"{0.1 * i:.1f},{0.05 * (i % 7):.2f},{i % 2}\n" for i in range(1, 41))
RUN = ["--epochs", "1", "--batch-size", "8", "--hidden", "6:relu", "--no-plots", "--quiet"]


@pytest.fixture
def csv_run(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text("x1,x2,y\n" + ROWS)
    assert main(["train", "--dataset", str(data), *RUN, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    return tmp_path


def evaluate(*args: str, capsys) -> tuple[int, str, str]:
    code = main(["evaluate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_model_records_its_data_file(csv_run):
    record = SavedModel.load(csv_run / "run" / "model.safetensors").data_file
    assert record["path"] == str((csv_run / "data.csv").resolve())
    assert record["size"] == (csv_run / "data.csv").stat().st_size and len(record["sha256"]) == 64


def test_evaluate_on_the_same_file_prints_the_metrics(csv_run, capsys):
    code, out, _ = evaluate(str(csv_run / "run"), capsys=capsys)
    assert code == 0 and out.startswith("test:")


def test_evaluate_refuses_a_changed_file_and_names_data(csv_run, capsys):
    data = csv_run / "data.csv"
    data.write_text(data.read_text().replace("0.5,", "0.6,", 1))
    code, out, err = evaluate(str(csv_run / "run"), capsys=capsys)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "has changed since the run trained on it" in err and f"--data {data.resolve()}" in err
    code, out, _ = evaluate(str(csv_run / "run"), "--data", str(data), capsys=capsys)  # the way it names works
    assert code == 0 and out.startswith("data:")


def test_generated_data_records_no_file(tmp_path, capsys):
    assert (
        main(["train", "--epochs", "1", "--n-train", "40", "--no-plots", "--quiet", "--out", str(tmp_path / "r")]) == 0
    )
    assert SavedModel.load(tmp_path / "r" / "model.safetensors").data_file is None


def test_a_malformed_record_is_refused(csv_run):
    data = (csv_run / "run" / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    meta = json.loads(header["__metadata__"]["minidl"])
    meta["data_file"] = {"path": 3, "size": "big"}
    header["__metadata__"]["minidl"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with pytest.raises(CheckpointError, match="invalid data_file record"):
        SavedModel.from_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :], "m")
