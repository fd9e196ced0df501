"""Configs: files, unknown keys, syntax errors, layering, and resolution against the constructors."""

from __future__ import annotations

import json

import pytest

from minidl.cli.options import assignments
from minidl.errors import ConfigError
from minidl.experiment.config import DEFAULTS, check_layer, load_file, merge, resolve


def test_defaults_resolve_to_the_seed_experiment():
    config = resolve()
    assert (config["seed"], config["epochs"], config["batch_size"]) == (0, 50, 1)
    assert config["data"] == {
        "dataset": "disk",
        "n_train": 1000,
        "n_test": 1000,
        "noise": 0.0,  # the generator's own default, filled in
        "val_fraction": 0.1,
        "standardize": True,
    }
    assert config["model"] == {"hidden": "25:relu,25:tanh,25:relu", "dropout": 0.0}
    assert config["loss"] == {"name": "mse", "reduction": "mean"}
    assert config["optimizer"]["name"] == "sgd" and config["optimizer"]["lr"] == 0.01
    assert config["scheduler"] == {"name": "none"}
    assert resolve(json.loads(json.dumps(config))) == config  # the resolved form is a fixed point


def test_toml_file_and_its_errors(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('epochs = 3\n[model]\nhidden = ["8:tanh", "4:relu"]\n[optimizer]\nname = "adam"\n')
    config = resolve(load_file(path))
    assert config["epochs"] == 3 and config["model"]["hidden"] == "8:tanh,4:relu"
    assert config["optimizer"]["betas"] == [0.9, 0.999] and "momentum" not in config["optimizer"]
    path.write_text("epochs = 3\n[data]\nn_trian = 5\n")
    with pytest.raises(ConfigError, match=r"exp.toml: unknown key 'data.n_trian'; did you mean 'data.n_train'\?"):
        load_file(path)
    path.write_text("epochs = 3\nseed = \n")
    with pytest.raises(ConfigError, match=r"exp.toml: invalid TOML: .*line 2"):
        load_file(path)
    path.write_text("epochs = 0\n")
    with pytest.raises(ConfigError, match=r"exp\.toml: epochs must be an integer >= 1, got 0"):
        load_file(path)
    bad_json = tmp_path / "c.json"
    bad_json.write_text('{\n  "epochs": 3,\n}\n')
    with pytest.raises(ConfigError, match=r"c\.json: invalid JSON at line 3"):
        load_file(bad_json)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"epoch": 3}, "unknown key 'epoch'; did you mean 'epochs'"),
        ({"data": {"dataset": 3}}, "data.dataset must be a data set name"),
        ({"data": {"val_fraction": 1.0}}, "data.val_fraction must be a number in [0, 1)"),
        ({"data": {"task": "ranking"}}, "data.task must be auto, classification or regression"),
        ({"model": {"hidden": 25}}, "model.hidden must be a spec"),
        ({"model": 3}, "[model] must be a table"),
        ({"optimizer": {"name": 1}}, "optimizer.name must be a string"),
        ({"optimizer": {"lr": {"a": 1}}}, "optimizer.lr must be a number, string, boolean or list"),
        ({"seed": True}, "seed must be an integer, got True"),
    ],
)
def test_bad_keys_and_values_name_the_key(layer, message):
    with pytest.raises(ConfigError) as error:
        check_layer(layer, "exp.toml")
    assert message in str(error.value) and str(error.value).startswith("exp.toml: ")


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"optimizer": {"name": "adam", "momentum": 0.9}}, "optimizer 'adam' does not take 'momentum'; it takes lr"),
        ({"loss": {"name": "mse", "delta": 1.0}}, "loss 'mse' does not take 'delta'"),
        ({"loss": {"name": "hinge"}}, "unknown loss 'hinge'; choose from"),
        ({"scheduler": {"name": "step"}}, "scheduler 'step' needs 'step_size'"),
        ({"scheduler": {"name": "warm"}}, "unknown scheduler 'warm'; choose from"),
        ({"model": {"hidden": "25:swish"}}, "unknown activation 'swish'"),
        ({"data": {"dataset": "mnist"}}, "unknown data set 'mnist'"),
    ],
)
def test_resolution_checks_against_the_tables_and_constructors(layer, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve(layer)


def test_a_different_name_replaces_the_section_and_the_same_name_merges():
    file = {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}}
    assert merge(file, {"optimizer": {"name": "adam"}})["optimizer"] == {"name": "adam"}
    assert merge(file, {"optimizer": {"lr": 0.5}})["optimizer"] == {"name": "sgd", "lr": 0.5, "momentum": 0.9}
    assert merge(file, {"optimizer": {"name": "sgd"}})["optimizer"]["momentum"] == 0.9
    config = resolve(file, {"optimizer": {"name": "adam"}})
    assert config["optimizer"]["lr"] == DEFAULTS["optimizer"]["lr"]  # minidl's default, not the file's sgd lr


def test_component_defaults_and_cosine_t_max():
    config = resolve({"epochs": 7, "scheduler": {"name": "cosine"}})
    assert config["scheduler"]["T_max"] == 7
    config = resolve({"epochs": 7, "scheduler": {"name": "cosine", "T_max": 3}})
    assert config["scheduler"]["T_max"] == 3


def test_csv_data_keeps_only_its_keys(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1,0\n2,1\n")
    config = resolve({"data": {"dataset": str(tmp_path / "d.csv"), "n_train": 5}})
    assert set(config["data"]) == {
        "dataset",
        "target",
        "header",
        "task",
        "val_fraction",
        "test_fraction",
        "standardize",
        "delimiter",
        "index_col",
        "standardize_target",
    }


def test_key_value_assignments():
    parsed = assignments("step_size=10, gamma=0.5,milestones=[10,20],mode=min,flag=true,name='a,b'")
    assert parsed == {"step_size": 10, "gamma": 0.5, "milestones": [10, 20], "mode": "min", "flag": True, "name": "a,b"}
    assert assignments("") == {}
