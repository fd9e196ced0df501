"""Data files as users have them: delimiters, pandas' index column, misspelt targets, continuous targets
taken as classes, and columns found by name when predicting and evaluating (issue 12)."""

from __future__ import annotations

import csv
import json
import os
import random
import warnings
from pathlib import Path

import pytest

from minidl.cli.main import main
from minidl.data.csv import DataWarning, load_csv, read_table
from minidl.data.model_columns import locate_columns
from minidl.errors import DataError


def _rows(n: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b, c = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)
        rows.append([f"{a:.4f}", f"{b:.4f}", f"{c:.4f}", "yes" if a + b > 0 else "no"])
    return rows


def _write(path: Path, header: list[str] | None, rows: list[list[str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize("delimiter", [";", "\t", "|", ","])
def test_the_delimiter_is_detected(tmp_path, delimiter):
    path = _write(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows(30), delimiter)
    data = load_csv(path, "label")
    assert data.feature_names == ["a", "b", "c"] and data.x.shape == (30, 3) and data.classes == ["no", "yes"]


def test_an_explicit_delimiter_wins_and_a_ragged_row_hints_at_it(tmp_path):
    path = _write(tmp_path / "d.csv", ["a", "b", "label"], [["1", "2", "0"], ["3", "4", "1"]], ";")
    assert load_csv(path, delimiter=";").x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(DataError) as error:
        load_csv(path, delimiter=",")
    assert "needs at least one feature column" in str(error.value)  # one column per row: a;b;label
    path.write_text("a;b;label\n1;2;0\n3;4\n")
    with pytest.raises(
        DataError, match=r"line 3: expected 3 columns, got 2 \(columns separated by ';'; pass --delimiter"
    ):
        load_csv(path)


def test_an_unnamed_first_column_warns_and_index_col_skips_it(tmp_path):
    rows = [[str(i), *row] for i, row in enumerate(_rows(20))]
    path = _write(tmp_path / "d.csv", ["", "a", "b", "c", "label"], rows)
    with pytest.warns(DataWarning, match=r"the first column has no name \(a pandas index\?\).*--index-col"):
        kept = load_csv(path, "label")
    assert kept.feature_names == ["", "a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skipped = load_csv(path, "label", index_col=True)
    assert skipped.feature_names == ["a", "b", "c"] and skipped.x.tolist() == kept.x[:, 1:].tolist()
    (tmp_path / "p.csv").write_text("Unnamed: 0,a,label\n0,1,0\n1,2,1\n2,3,0\n")
    with pytest.warns(DataWarning):
        load_csv(tmp_path / "p.csv")


@pytest.mark.parametrize(
    ("target", "header", "message"),
    [
        ("Label", True, "no column named 'Label'; the columns are a, b, c, label (did you mean 'label'?)"),
        ("lable", True, "(did you mean 'label'?)"),
        ("3", True, "a column index is read only in a file without a header: pass --no-header"),
        ("price", True, "no column named 'price'; the columns are a, b, c, label"),
    ],
)
def test_a_wrong_target_gets_a_hint(tmp_path, target, header, message):
    path = _write(tmp_path / "d.csv", ["a", "b", "c", "label"], _rows(10))
    with pytest.raises(DataError) as error:
        load_csv(path, target)
    assert message in str(error.value)
    if target == "price":
        assert "did you mean" not in str(error.value) and "--no-header" not in str(error.value)


def test_classification_of_a_continuous_target_is_refused(tmp_path):
    rng = random.Random(0)
    rows = [[f"{rng.random():.3f}", str(rng.randrange(1000))] for _ in range(300)]
    path = _write(tmp_path / "d.csv", ["x", "y"], rows)
    distinct = len({r[1] for r in rows})
    with pytest.raises(DataError, match=rf"'y' has {distinct} distinct values in 300 rows.*use --task regression"):
        load_csv(path, task="classification")
    assert load_csv(path, task="regression").kind == "regression"
    # 30 classes in 40 rows: more than 20 and more than half the rows
    few = _write(tmp_path / "f.csv", ["x", "y"], [[str(i), str(i % 30)] for i in range(40)])
    with pytest.raises(DataError, match="too many for classification"):
        load_csv(few, task="classification")
    ok = _write(tmp_path / "ok.csv", ["x", "y"], [[str(i), str(i % 30)] for i in range(60)])
    assert len(load_csv(ok, task="classification").classes) == 30


def test_cli_flags_for_delimiter_and_index_col(tmp_path, capsys):
    rows = [[str(i), *row] for i, row in enumerate(_rows(80))]
    path = _write(tmp_path / "d.tsv", ["", "a", "b", "c", "label"], rows, "\t")
    run = tmp_path / "run"
    argv = ["train", "--dataset", str(path), "--delimiter", "\\t", "--index-col", "--epochs", "2"]
    assert main([*argv, "--out", str(run), "--quiet", "--no-plots"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["delimiter"] == "\t" and config["data"]["index_col"] is True
    assert config["data"]["dataset"] == str(path.resolve())
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--dataset", str(path), "--delimiter", "ab", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2
    assert "must be one character" in capsys.readouterr().err


def test_config_json_stores_the_csv_path_absolute_so_evaluate_works_elsewhere(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    _write(tmp_path / "data" / "d.csv", ["a", "b", "c", "label"], _rows(60))
    monkeypatch.chdir(tmp_path / "data")
    assert main(["train", "--dataset", "d.csv", "--epochs", "2", "--out", "../run", "--quiet", "--no-plots"]) == 0
    trained = capsys.readouterr().out
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert os.path.isabs(config["data"]["dataset"]) and config["data"]["dataset"].endswith("data/d.csv")
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "run"]) == 0
    assert capsys.readouterr().out == trained


@pytest.fixture
def run(tmp_path):
    path = _write(tmp_path / "train.csv", ["a", "b", "c", "label"], _rows(120))
    out = tmp_path / "run"
    argv = ["train", "--dataset", str(path), "--target", "label", "--loss", "cross-entropy", "--optim", "adam"]
    assert main([*argv, "--epochs", "5", "--batch-size", "16", "--out", str(out), "--quiet", "--no-plots"]) == 0
    return out


def test_predict_fails_naming_missing_features_instead_of_using_positions(run, tmp_path, capsys):
    rows = _rows(5, seed=1)
    # the old fallback: 4 columns = 3 features + target, taken by position although 'b' is missing
    _write(tmp_path / "in.csv", ["a", "c", "label", "extra"], [[r[0], r[2], r[3], "1"] for r in rows])
    out = tmp_path / "p.csv"
    capsys.readouterr()
    assert main(["predict", str(run), "--input", str(tmp_path / "in.csv"), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "in.csv: missing feature column(s) 'b'; the model reads a, b, c; the file has a, c, label, extra" in err
    assert not out.exists()


def test_predict_by_name_any_order_and_by_position_only_without_header(run, tmp_path, capsys):
    rows = _rows(6, seed=2)
    _write(tmp_path / "named.csv", ["id", "c", "label", "b", "a"], [["7", r[2], r[3], r[1], r[0]] for r in rows])
    _write(tmp_path / "bare.csv", None, [r[:3] for r in rows])
    _write(tmp_path / "bare4.csv", None, rows)
    outs = []
    for name, extra in (("named", []), ("bare", ["--no-header"])):
        out = tmp_path / f"{name}.out.csv"
        assert main(["predict", str(run), "--input", str(tmp_path / f"{name}.csv"), "--output", str(out), *extra]) == 0
        outs.append([row[-1] for row in csv.reader(out.open())])
    assert outs[0][0] == "prediction" and outs[0][1:] == outs[1]
    capsys.readouterr()
    argv = ["predict", str(run), "--input", str(tmp_path / "bare4.csv"), "--output", str(tmp_path / "x.csv")]
    assert main([*argv, "--no-header"]) == 1
    assert "without a header, columns are read by position: the model needs 3 feature(s)" in capsys.readouterr().err


def test_evaluate_finds_the_target_by_the_runs_target_name(run, tmp_path, capsys):
    rows = _rows(40, seed=3)
    # the target is the first column, features in another order: positions would be wrong
    _write(tmp_path / "e.csv", ["label", "c", "a", "b"], [[r[3], r[2], r[0], r[1]] for r in rows])
    _write(tmp_path / "same.csv", ["a", "b", "c", "label"], rows)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(tmp_path / "e.csv")]) == 0
    shuffled = capsys.readouterr().out
    assert main(["evaluate", str(run), "--data", str(tmp_path / "same.csv")]) == 0
    assert capsys.readouterr().out == shuffled and shuffled.startswith("data: TP")
    _write(tmp_path / "nolabel.csv", ["a", "b", "c", "Label"], rows)
    assert main(["evaluate", str(run), "--data", str(tmp_path / "nolabel.csv")]) == 1
    assert "no column named 'label'" in capsys.readouterr().err


def test_locate_columns_without_header_takes_the_target_index(tmp_path):
    path = _write(tmp_path / "n.csv", None, [["1", "0", "2"], ["3", "1", "4"]])
    table = read_table(path, header=False)
    assert locate_columns(table, ["0", "2"], "1", with_target=True) == ([0, 2], 1)
    assert locate_columns(table, ["0", "2"], None, with_target=True) == ([0, 1], 2)
    with pytest.raises(DataError, match="the model needs 2 feature"):
        locate_columns(table, ["0", "2"], None)


def test_the_cli_prints_a_data_warning_as_one_line(tmp_path, capsys):
    rows = [[str(i), *row] for i, row in enumerate(_rows(40))]
    path = _write(tmp_path / "d.csv", ["", "a", "b", "c", "label"], rows)
    argv = ["train", "--dataset", str(path), "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert err == (
        f"minidl train: warning: {path}: the first column has no name (a pandas index?); it is read as a feature. "
        "Pass --index-col to skip it\n"
    )
