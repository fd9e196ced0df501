"""A run trained with --dropout evaluates and predicts from its folder (the saved model keeps the Dropout layers)."""

from __future__ import annotations

import contextlib
import io

from minidl.cli.main import main
from minidl.experiment import SavedModel


def _run(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def test_a_dropout_run_evaluates_to_the_lines_training_printed(tmp_path):
    run = tmp_path / "run"
    trained = _run(
        ["train", "--dropout", "0.2", "--epochs", "2", "--batch-size", "32", "--no-plots", "--out", str(run)]
    )
    evaluated = _run(["evaluate", str(run)])
    test_lines = [line for line in trained.splitlines() if line.startswith("test:")]
    assert test_lines and [line for line in evaluated.splitlines() if line.startswith("test:")] == test_lines
    saved = SavedModel.load(run / "model.safetensors")
    assert any(type(m).__name__ == "Dropout" and m.p == 0.2 for m in saved.model.modules())
