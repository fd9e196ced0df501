"""``class_weight``: weigh each class in the loss, by hand or "balanced" as scikit-learn computes it.

balanced: w_c = n_samples / (n_classes · n_c), with the counts n_c of the TRAINING split only (validation
and test rows never change the loss). The weights become the loss's tensor argument, as torch names it:

- cross-entropy: ``weight`` = (w_0, …, w_{C-1}), in the order of the run's class labels. torch's mean then
  divides by the summed weights of the batch's targets, so the loss stays a weighted average.
- bce-logits (one output for two classes): ``pos_weight`` = n_neg / n_pos = w_1 / w_0, torch's documented
  use of it ("100 positive and 300 negative examples: pos_weight 3"). Positives then count n_neg / n_pos
  times a negative, as with scikit-learn's balanced weights; torch's mean still divides by N, so the loss
  is scikit-learn's weighted loss divided by w_0. An explicit list is refused there (give --loss-args
  pos_weight=P), since it would be only its ratio.

The weights are written into the resolved ``loss`` section (``config.json``), so that ``evaluate`` and
``--resume`` build the same loss; a config that already names a different weight is refused.
"""

from __future__ import annotations

from typing import Any

import torch

from minidl.errors import ConfigError
from minidl.experiment.schema import BALANCED
from minidl.train.task import Task

ARGUMENT = {"cross-entropy": "weight", "bce-logits": "pos_weight"}  # the loss argument class weights become
TENSOR_ARGS = ("weight", "pos_weight")


def balanced(y: torch.Tensor, classes: list[Any]) -> list[float]:
    """n_samples / (n_classes · bincount(y)) for class indices ``y``; a class with no row is an error."""
    counts = torch.bincount(y.long(), minlength=len(classes))
    missing = [classes[i] for i in range(len(classes)) if counts[i] == 0]
    if missing:
        raise ConfigError(f"class_weight balanced: class {missing[0]!r} has no row in the training split")
    return (len(y) / (len(classes) * counts.double())).tolist()


def apply_class_weight(
    config: dict[str, Any], task: Task, y_train: torch.Tensor, classes: list[Any], name: str
) -> str | None:
    """Put the weights ``config["class_weight"]`` asks for into ``config["loss"]``; the line that says so."""
    if "class_weight" not in config:
        return None
    setting, loss = config["class_weight"], config["loss"]["name"]
    if not task.is_classification:
        raise ConfigError(f"class_weight: {name} has a regression target; class weights need a classification task")
    argument = ARGUMENT.get(loss)
    if argument is None:
        raise ConfigError(f"class_weight: loss {loss!r} takes no class weights; use cross-entropy or bce-logits")
    labels = classes if len(classes) == task.num_classes else list(range(task.num_classes))
    if setting == BALANCED:
        weights = balanced(y_train, labels)
    elif argument == "pos_weight":
        raise ConfigError("class_weight: bce-logits weighs positives only; use balanced, or --loss-args pos_weight=P")
    elif len(setting) != task.num_classes:
        raise ConfigError(f"class_weight: {len(setting)} weights for {task.num_classes} classes ({_names(labels)})")
    else:
        weights = [float(w) for w in setting]
    if argument == "pos_weight":  # n_neg / n_pos itself (= w_1 / w_0, without its rounding)
        counts = torch.bincount(y_train.long(), minlength=2).tolist()
        value = [counts[0] / counts[1]]
    else:
        value = weights
    for key in TENSOR_ARGS:
        given = config["loss"].get(key)
        if given is not None and (key != argument or given != value):  # a config.json of this run holds value
            raise ConfigError(
                f"class_weight and loss.{key} = {given!r:.60} both given: use --class-weight or --loss-args {key}=..., "
                "not both (a run's config.json records in the loss the weights it trained with)"
            )
    config["loss"][argument] = value
    return describe(setting, argument, value, labels, len(y_train))


def describe(setting: Any, argument: str, value: list[float], labels: list[Any], n_train: int) -> str:
    """One line: where the weights come from and what each class gets."""
    source = f"balanced, from the {n_train} training rows" if setting == BALANCED else "as given"
    if argument == "pos_weight":
        positive = f"positive class {labels[1]!r}"
        return f"class weights ({source}): bce-logits pos_weight {value[0]:.4g} (n_neg/n_pos, {positive})"
    pairs = ", ".join(f"{label}: {w:.4g}" for label, w in zip(labels, value, strict=True))
    return f"class weights ({source}): cross-entropy weight {pairs}"


def _names(labels: list[Any]) -> str:
    shown = ", ".join(str(label) for label in labels[:10])
    return shown + (", ..." if len(labels) > 10 else "")
