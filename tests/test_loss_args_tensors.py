"""``--loss-args weight=[1,2,1]`` / ``pos_weight=0.6`` become tensors, and the losses equal torch.nn's with them."""

from __future__ import annotations

import pytest
import torch

from minidl.cli.main import main
from minidl.experiment.components import build
from minidl.experiment.config import resolve

F64 = torch.float64


@pytest.mark.parametrize(
    ("name", "args", "torch_loss", "classes"),
    [
        (
            "cross-entropy",
            {"weight": [1, 2, 1]},
            lambda: torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2, 1], dtype=F64)),
            3,
        ),
        (
            "bce-logits",
            {"pos_weight": 0.6},
            lambda: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(0.6, dtype=F64)),
            2,
        ),
        (
            "bce-logits",
            {"pos_weight": [0.6]},
            lambda: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([0.6], dtype=F64)),
            2,
        ),
    ],
)
def test_numbers_and_lists_become_tensors_as_torch_takes_them(name, args, torch_loss, classes) -> None:
    config = resolve({"loss": {"name": name, **args}, "data": {"dataset": "moons"}})
    assert {k: config["loss"][k] for k in args} == args  # config.json keeps the plain values
    ours = build("loss", config["loss"]).to(dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    if classes == 3:
        output, target = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randint(0, 3, (8,), generator=g)
    else:
        output = torch.randn(8, 1, generator=g, dtype=torch.float64)
        target = torch.randint(0, 2, (8, 1), generator=g).double()
    expected = torch_loss().double()(output, target)
    assert ours(output, target).item() == pytest.approx(expected.item(), rel=1e-12)


def test_the_cli_trains_with_them(tmp_path, capsys) -> None:
    flags = ["--dataset", "moons", "--n-train", "60", "--n-test", "30", "--epochs", "1", "--no-plots", "--quiet"]
    assert (
        main(["train", *flags, "--loss", "bce-logits", "--loss-args", "pos_weight=0.6", "--out", str(tmp_path / "a")])
        == 0
    )
    argv = [*flags, "--dataset", "blobs", "--loss", "cross-entropy", "--loss-args", "weight=[1,2,1]"]
    assert main(["train", *argv, "--out", str(tmp_path / "b")]) == 0
    assert "test:" in capsys.readouterr().out
