"""CSV files: parsing, task inference, label mapping, and errors that name the file, line and column."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.data import load_csv
from minidl.errors import DataError, MinidlError


def _write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_named_target_and_features(tmp_path):
    path = _write(tmp_path, "a,label,b\n1,0,2.5\n3,1,-4\n\n5,1,6e-1\n")
    data = load_csv(path, "label")
    assert data.feature_names == ["a", "b"] and data.target_name == "label"
    torch.testing.assert_close(data.x, torch.tensor([[1.0, 2.5], [3.0, -4.0], [5.0, 0.6]]))
    assert data.y.tolist() == [0, 1, 1] and data.kind == "binary" and data.classes == [0, 1]


def test_default_target_is_the_last_column_and_no_header_uses_indices(tmp_path):
    path = _write(tmp_path, "1,2,0\n3,4,1\n5,6,2\n")
    assert load_csv(path, header=False).kind == "multiclass"
    data = load_csv(path, "0", header=False)
    assert data.feature_names == ["1", "2"] and data.classes == [1, 3, 5]
    assert load_csv(path, -1, header=False).y.tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    ("column", "task", "kind", "classes", "y"),
    [
        (["3", "5", "3", "7"], "auto", "multiclass", [3, 5, 7], [0, 1, 0, 2]),  # integer-valued, few values
        (["1.0", "0.0", "1", "0"], "auto", "binary", [0, 1], [1, 0, 1, 0]),
        (["0.5", "1.5", "2", "3"], "auto", "regression", [], [0.5, 1.5, 2.0, 3.0]),
        (["3", "5", "3", "7"], "regression", "regression", [], [3.0, 5.0, 3.0, 7.0]),
        (["0.5", "1.5", "0.5", "1.5"], "classification", "binary", [0.5, 1.5], [0, 1, 0, 1]),
        (["cat", "dog", "emu", "cat"], "auto", "multiclass", ["cat", "dog", "emu"], [0, 1, 2, 0]),
    ],
)
def test_task_inference_and_label_mapping(tmp_path, column, task, kind, classes, y):
    path = _write(tmp_path, "x,y\n" + "".join(f"{i},{v}\n" for i, v in enumerate(column)))
    data = load_csv(path, "y", task=task)
    assert data.kind == kind and data.classes == classes
    assert data.y.tolist() == pytest.approx(y)
    assert data.y.dtype == (torch.float32 if kind == "regression" else torch.long)


def test_many_integer_values_are_regression(tmp_path):
    path = _write(tmp_path, "x,y\n" + "".join(f"{i},{i * 3}\n" for i in range(30)))
    assert load_csv(path).kind == "regression"


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, "data.csv: the file is empty"),
        ("\n \n", {}, "data.csv: the file is empty"),
        ("a,b\n", {}, "data.csv: no data rows after the header"),
        ("a,b\n1,2\n3,x\n", {"target": "a"}, "data.csv, line 3, column 'b': 'x' is not a number"),
        ("a,b\n1,2\nfoo,1\n", {}, "data.csv, line 3, column 'a': 'foo' is not a number"),
        ("a,b\n1,2\n3,4,5\n", {}, "data.csv, line 3: expected 2 columns, got 3"),
        ("a,b\n1,2\n3\n", {}, "data.csv, line 3: expected 2 columns, got 1"),
        ("a,b\n1,2\n,1\n", {}, "data.csv, line 3, column 'a': empty cell"),
        ("a,b\nnan,1\n2,0\n", {}, "data.csv, line 2, column 'a': non-finite value 'nan'"),
        ("a,b\n1,inf\n2,0\n", {"task": "regression"}, "data.csv, line 2, column 'b': non-finite value 'inf'"),
        ("a,b\n1,2\n3,4\n", {"target": "price"}, "data.csv: no column named 'price'; the columns are a, b"),
        ("1,2\n3,4\n", {"target": "b", "header": False}, "without a header the target is a column index"),
        ("1,2\n3,4\n", {"target": 5, "header": False}, "target column index 5 is out of range"),
        ("a,b\n1,2\n3,2\n", {}, "target column 'b' has a single class (2)"),
        ("a,b\n1,x\n3,y\n", {"task": "regression"}, "line 2, column 'b': 'x' is not a number"),
        ("a,a\n1,2\n", {}, "duplicate column name(s) 'a'"),
        ("a\n1\n2\n", {}, "needs at least one feature column and a target column"),
    ],
)
def test_errors_name_the_file_line_and_column(tmp_path, text, kwargs, message):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as error:
        load_csv(path, **kwargs)
    assert message in str(error.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        load_csv(tmp_path)


@settings(max_examples=40)
@given(text=st.text(alphabet=st.sampled_from(list('0123456789.,-+eEnaif"x \n\r')), max_size=80))
def test_any_text_loads_or_raises_only_minidl_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "f.csv"
    path.write_text(text)
    try:
        data = load_csv(path)
    except MinidlError:
        return
    assert len(data.x) == len(data.y) >= 1 and torch.isfinite(data.x).all()
