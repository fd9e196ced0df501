"""The recipe by task: what a run on a data set other than the seed's ``disk`` trains with when the user
chose no loss and no optimizer (neither in flags nor in a config file).

Adam with lr 0.001, batch size 32, 100 epochs and one hidden layer of 32 ReLUs (each unless the user set
it), and the loss of the task, known once the data is read: cross-entropy for several classes,
BCE-with-logits for two, MSE (on standardised targets, ``data.standardize_target``) for regression.
Measured on CSV copies of scikit-learn's sets, seeds 0-2 (``tests/test_recipe.py``): iris and wine
accuracy >= 0.93, breast_cancer >= 0.95, diabetes R² >= 0.43. ``minidl train`` with no flags stays the
seed experiment: the disk data set keeps the defaults of the schema.
"""

from __future__ import annotations

from typing import Any

AUTO = "auto"  # loss.name until the data says which task it is
LOSS_BY_TASK = {"multiclass": "cross-entropy", "binary": "bce-logits", "regression": "mse"}
OPTIMIZER = {"name": "adam", "lr": 0.001}
TOP = {"batch_size": 32, "epochs": 100}
HIDDEN = "32:relu"


def wants_recipe(config: dict[str, Any], user: dict[str, Any]) -> bool:
    """A data set other than disk, and no loss or optimizer named by the user."""
    chosen = any("name" in user.get(section, {}) for section in ("loss", "optimizer"))
    return config["data"]["dataset"] != "disk" and not chosen


def apply_recipe(config: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    """Fill ``config`` with the recipe where the user set nothing; the user layer the components resolve from."""
    if not wants_recipe(config, user):
        return user
    for key, value in TOP.items():
        if key not in user:
            config[key] = value
    if "hidden" not in user.get("model", {}):
        config["model"]["hidden"] = HIDDEN
    return {
        **user,
        "loss": {"name": AUTO, **user.get("loss", {})},
        "optimizer": {**OPTIMIZER, **user.get("optimizer", {})},
    }


def loss_name(kind: str) -> str:
    """The recipe's loss for a task kind (binary, multiclass, regression)."""
    return LOSS_BY_TASK[kind]


def describe(config: dict[str, Any], kind: str, num_classes: int) -> str:
    """One line saying which recipe the run uses and why."""
    task = "regression" if kind == "regression" else f"{num_classes}-class classification"
    optimizer = config["optimizer"]
    return (
        f"recipe for {task} (no --loss or --optim given): loss {config['loss']['name']}, "
        f"{optimizer['name']} lr {optimizer['lr']}, batch size {config['batch_size']}, "
        f"{config['epochs']} epochs, hidden {config['model']['hidden'] or 'none'}"
    )
