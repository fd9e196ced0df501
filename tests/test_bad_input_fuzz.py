"""Property tests: random bytes and random CSV text given to every loader raise ``MinidlError`` or nothing, quickly.

The loaders: the CSV reader (training data, and the files ``evaluate --data`` and ``predict --input``
read against a saved model), the config reader (TOML and JSON), the checkpoint reader and the saved-model
reader. Each example runs under a 5-second alarm, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minidl.cli.evaluate import csv_examples
from minidl.data.csv import features_tensor, load_csv, read_table
from minidl.data.model_columns import locate_columns
from minidl.errors import MinidlError
from minidl.experiment.config import load_file, resolve
from minidl.experiment.experiment import Experiment
from minidl.experiment.saved_model import SavedModel
from minidl.persist.checkpoint import load_checkpoint

FUZZ = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])

CELLS = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "2.5", "1e3", "1e39", "-1e400", "nan", "inf", "-inf", "abc", "a,b", '"', "x"]),
    st.from_regex(r"-?[0-9]{0,3}(\.[0-9]{0,3})?(e-?[0-9]{1,3})?", fullmatch=True),
    st.text(alphabet=',"\r\n\t \x00;é\ufeff0123456789.-eE', max_size=6),
)
CSV_TEXT = st.one_of(
    st.lists(st.lists(CELLS, min_size=0, max_size=5), max_size=8).map(
        lambda rows: "\n".join(",".join(row) for row in rows)
    ),
    st.text(max_size=200),
)


class Hang(Exception):
    pass


@contextlib.contextmanager
def at_most(seconds: float) -> Iterator[None]:
    """Raise ``Hang`` if the block runs longer than ``seconds`` (SIGALRM; the main thread only)."""

    def ring(signum, frame):
        raise Hang(f"still running after {seconds}s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def only_minidl_errors(load, *args, **kwargs):
    """Call ``load``; anything raised but a ``MinidlError`` fails the test (a hang too)."""
    with at_most(5), contextlib.suppress(MinidlError):
        load(*args, **kwargs)


@pytest.fixture(scope="module")
def saved_model_bytes():
    config = resolve({"epochs": 1, "batch_size": 16, "data": {"dataset": "disk", "n_train": 40, "n_test": 20}})
    experiment = Experiment(config)
    experiment.fit()
    return experiment.saved_model().to_bytes()


@FUZZ
@given(text=CSV_TEXT, header=st.booleans(), task=st.sampled_from(["auto", "classification", "regression"]))
def test_csv_loader_on_random_text(tmp_path, text, header, task):
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8", newline="")
    only_minidl_errors(load_csv, path, header=header, task=task)


@FUZZ
@given(data=st.binary(max_size=300))
def test_csv_loader_on_random_bytes(tmp_path, data):
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    only_minidl_errors(load_csv, path)


@FUZZ
@given(text=CSV_TEXT, header=st.booleans())
def test_csv_against_a_saved_model_on_random_text(tmp_path, saved_model_bytes, text, header):
    """What ``evaluate --data`` and ``predict --input`` do with a file: columns, features, labels."""
    saved = SavedModel.from_bytes(saved_model_bytes)
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8", newline="")

    def predict_then_evaluate():
        table = read_table(path, header=header)
        features, _ = locate_columns(table, saved.feature_names, saved.target_name)
        saved.predict(features_tensor(table, features))
        csv_examples(saved, {}, str(path), "y" if header else None, header)

    only_minidl_errors(predict_then_evaluate)


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
    suffix=st.sampled_from([".toml", ".json"]),
)
def test_config_loader_on_random_input(tmp_path, data, suffix):
    path = tmp_path / f"c{suffix}"
    path.write_bytes(data)
    only_minidl_errors(load_file, path)


@pytest.mark.parametrize("text", ["a = " + "[" * 2000 + "]" * 2000, "[" * 5000 + "]" * 5000, "a = " + "9" * 5000])
@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_config_loader_on_deep_nesting_and_huge_numbers(tmp_path, text, suffix):
    path = tmp_path / f"c{suffix}"
    path.write_text(text if suffix == ".toml" else text.removeprefix("a = "))
    only_minidl_errors(load_file, path)


@FUZZ
@given(data=st.binary(max_size=300))
def test_checkpoint_and_model_loaders_on_random_bytes(tmp_path, data):
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    only_minidl_errors(load_checkpoint, path)
    only_minidl_errors(SavedModel.load, path)


@FUZZ
@given(data=st.data())
def test_model_loader_on_damaged_model_files(saved_model_bytes, data):
    """A real model file, truncated or with bytes overwritten anywhere (header, metadata JSON, tensor data)."""
    raw = bytearray(saved_model_bytes)
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1), label="length")]
    else:
        for _ in range(data.draw(st.integers(1, 4), label="edits")):
            at = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[at] = data.draw(st.integers(0, 255), label="byte")
    only_minidl_errors(SavedModel.from_bytes, bytes(raw), "m.safetensors")


def test_the_alarm_catches_a_hang():
    def forever():
        while True:
            pass

    with pytest.raises(Hang), at_most(0.2):
        forever()
