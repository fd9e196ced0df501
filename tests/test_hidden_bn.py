"""``--hidden`` items with ``bn``: BatchNorm1d where the item writes it, torch.nn's state_dict keys, and runs
whose saved model, predict, evaluate and resume carry the running statistics."""

from __future__ import annotations

import csv
import json
import re

import pytest
import torch
from safetensors.torch import load_file

import minidl.nn as mnn
from minidl.cli.main import main
from minidl.errors import ConfigError
from minidl.experiment.saved_model import SavedModel
from minidl.nn.mlp import hidden_layers

BN, L = mnn.BatchNorm1d, mnn.Linear
R, T = mnn.ReLU, mnn.Tanh


def run(argv):
    """``minidl ARGV`` in this process: its exit status (argparse's errors exit 2)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize(
    ("spec", "layers"),
    [
        ("8:relu:bn", [L, R, BN, L]),
        ("8:bn:relu", [L, BN, R, L]),
        ("8:BN:Tanh,4:tanh", [L, BN, T, L, T, L]),
        ("8:bn", [L, BN, L]),
        ("8:linear:bn,4:relu", [L, BN, L, R, L]),
        ("8:relu", [L, R, L]),
    ],
)
def test_bn_goes_where_the_item_writes_it(spec, layers):
    model = mnn.mlp(3, spec, 2)
    assert [type(m) for m in model] == layers
    for m in model:
        if isinstance(m, BN):
            assert m.num_features == 8  # the size of its item's Linear


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("64:bn:bn", "hidden layer '64:bn:bn': bn given twice"),
        ("64:xx", "hidden layer '64:xx': unknown activation 'xx'; choose from elu, gelu, identity"),
        ("8:relu,64:xx:bn", "hidden layer '64:xx:bn': unknown activation 'xx'"),
        ("64:relu:tanh", "hidden layer '64:relu:tanh': two activations 'relu' and 'tanh'"),
        ("64:relu:bn:bn", "hidden layer '64:relu:bn:bn': expected SIZE:ACTIVATION with at most one :bn"),
        ("64:relu:", "hidden layer '64:relu:': unknown activation ''"),
        ("bn:relu", "hidden layer 'bn:relu': size 'bn' is not an integer"),
    ],
)
def test_bad_items_are_errors_naming_the_item(spec, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        mnn.parse_hidden(spec)


def test_parse_hidden_keeps_its_pairs_and_hidden_layers_says_where_bn_goes():
    assert mnn.parse_hidden("8:bn:relu,4:tanh:bn,2:bn") == [(8, "relu"), (4, "tanh"), (2, "linear")]
    layers = hidden_layers("8:bn:relu,4:tanh:bn,2:tanh")
    assert [layer.bn for layer in layers] == ["before", "after", None]


@pytest.fixture(scope="module")
def wine_like(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    path = tmp_path_factory.mktemp("bn") / "three.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "d", "kind"])
        for i in range(150):
            c = i % 3
            writer.writerow([*(torch.randn(4, generator=g) * (1 + c) + 3 * c).tolist(), "xyz"[c]])
    return path


def torch_twin(model):
    """The same Sequential in torch.nn, float64."""
    make = {mnn.ReLU: torch.nn.ReLU, mnn.Tanh: torch.nn.Tanh}
    layers = []
    for m in model:
        if isinstance(m, L):
            layers.append(torch.nn.Linear(m.in_features, m.out_features))
        elif isinstance(m, BN):
            layers.append(torch.nn.BatchNorm1d(m.num_features))
        else:
            layers.append(make[type(m)]())
    return torch.nn.Sequential(*layers).double()


FLAGS = ["--hidden", "8:relu:bn,6:bn:tanh", "--epochs", "3", "--no-plots", "--dtype", "float64"]


def test_a_bn_run_loads_into_torch_nn_and_predicts_the_same(wine_like, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(wine_like), *FLAGS, "--out", str(out)]) == 0
    saved = SavedModel.load(out / "model.safetensors")
    tensors = {k: v for k, v in load_file(out / "model.safetensors").items() if not k.startswith(("stand", "target"))}
    assert "2.running_mean" in tensors and "4.num_batches_tracked" in tensors
    assert tensors["2.num_batches_tracked"].item() > 0 and not torch.all(tensors["2.running_mean"] == 0)
    twin = torch_twin(saved.model)
    twin.load_state_dict(tensors, strict=True)  # torch.nn's keys, buffers included
    twin.eval()
    x = torch.randn(20, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 3
    with torch.no_grad():
        expected = twin(saved.inputs(x))
    assert torch.allclose(saved.output(x), expected, rtol=0, atol=1e-12)
    assert saved.predict(x) == [saved.classes[i] for i in expected.argmax(1).tolist()]
    # predict and evaluate through the CLI read the same file: the eval-mode outputs
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    assert "test: loss" in capsys.readouterr().out


def test_running_stats_update_in_training_only(wine_like, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(wine_like), *FLAGS, "--quiet", "--out", str(out)]) == 0
    tensors = load_file(out / "model.safetensors")
    config = json.loads((out / "config.json").read_text())  # 150 rows: 105 train, batch 32 -> 4 steps per epoch
    assert config["batch_size"] == 32 and config["epochs"] == 3
    steps = -(-105 // 32) * 3
    assert tensors["2.num_batches_tracked"].item() == steps  # evaluations (eval mode) did not count


def test_resume_of_a_bn_run_equals_the_uninterrupted_run(wine_like, tmp_path):
    whole, part = tmp_path / "whole", tmp_path / "part"
    base = ["train", "--dataset", str(wine_like), "--hidden", "8:bn:relu", "--no-plots", "--quiet"]
    assert main([*base, "--epochs", "4", "--out", str(whole)]) == 0
    assert main([*base, "--epochs", "2", "--out", str(part)]) == 0
    assert main(["train", "--resume", str(part), "--epochs", "4", "--quiet", "--no-plots"]) == 0
    a, b = load_file(whole / "model.safetensors"), load_file(part / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["1.num_batches_tracked"].item() == 4 * 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hidden", "64:bn:bn"], "hidden layer '64:bn:bn': bn given twice"),
        (["--hidden", "64:xx"], "hidden layer '64:xx': unknown activation 'xx'"),
        (["--hidden", "8:relu:bn", "--nproc", "2"], "hidden layer '8:relu:bn': BatchNorm1d trains in one process only"),
        (["--hidden", "8:relu:bn", "--batch-size", "1"], "BatchNorm1d needs at least 2 rows in every training batch, "
         "but batch size 1 over 105 training rows leaves a batch of 1"),
        (["--hidden", "4:tanh,8:relu:bn", "--batch-size", "52"], "hidden layer '8:relu:bn': BatchNorm1d needs"),
    ],
)  # fmt: skip
def test_bad_bn_runs_are_one_line_errors(wine_like, tmp_path, capsys, flags, message):
    out = tmp_path / "run"
    assert run(["train", "--dataset", str(wine_like), *flags, "--epochs", "1", "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_config_file_takes_bn_items_too(wine_like, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'epochs = 1\n[data]\ndataset = "{wine_like}"\n[model]\nhidden = ["8:bn:relu", "4:tanh:bn"]\n')
    out = tmp_path / "run"
    assert main(["train", "--config", str(config), "--no-plots", "--quiet", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["hidden"] == "8:bn:relu,4:tanh:bn"
    assert [type(m) for m in SavedModel.load(out / "model.safetensors").model] == [L, BN, R, L, T, BN, L]


def test_early_stopping_restores_the_best_epochs_running_statistics_too(wine_like, tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--hidden", "8:relu:bn", "--early-stopping", "1", "--epochs", "60", "--lr", "0.1", "--batch-size", "32"]
    assert main(["train", "--dataset", str(wine_like), *flags, "--no-plots", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    best = int(re.search(r"weights of epoch (\d+) restored", said)[1])
    rows = (out / "metrics.csv").read_text().splitlines()[1:]
    assert best < len(rows)  # it stopped after a worse epoch
    tensors = load_file(out / "model.safetensors")
    assert tensors["2.num_batches_tracked"].item() == best * -(-105 // 32)  # the best epoch's buffers, not the last's


def test_spaces_and_capitals_in_a_bn_item_are_still_checked(wine_like, tmp_path, capsys):
    argv = ["train", "--dataset", str(wine_like), "--hidden", "4:tanh, 8 : Relu : BN ", "--batch-size", "1"]
    assert run([*argv, "--out", str(tmp_path / "run")]) == 1
    assert "hidden layer '8 : Relu : BN': BatchNorm1d needs at least 2 rows" in capsys.readouterr().err


def test_training_steps_with_bn_items_equal_torch_nn_and_torch_optim(wine_like):
    from minidl.experiment.config import resolve
    from minidl.experiment.experiment import Experiment

    layer = {
        "data": {"dataset": str(wine_like)},
        "dtype": "float64",
        "model": {"hidden": "6:bn:relu,5:tanh:bn"},
        "batch_size": 16,
    }
    experiment = Experiment(resolve({**layer, "loss": {"name": "cross-entropy"}, "optimizer": {"name": "sgd"}}))
    model, trainer = experiment.model, experiment.trainer
    twin = torch_twin(model)
    twin.load_state_dict(model.state_dict(), strict=True)
    optimizer = torch.optim.SGD(twin.parameters(), lr=experiment.config["optimizer"]["lr"])
    x, y = experiment.split("train")
    model.train()
    twin.train()
    for start in (0, 16, 32, 48):
        xb, yb = x[start : start + 16], y[start : start + 16]
        trainer.train_step(xb, yb)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(twin(xb), yb).backward()
        optimizer.step()
    ours, theirs = model.state_dict(), twin.state_dict()
    assert ours.keys() == theirs.keys() and {k for k in ours if "running" in k} == {
        "1.running_mean", "1.running_var", "5.running_mean", "5.running_var"
    }  # fmt: skip
    for key in ours:
        assert torch.allclose(ours[key], theirs[key], rtol=0, atol=1e-12), key
