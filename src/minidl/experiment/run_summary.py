"""summary.md: what was run, the final metrics table, and links to the figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minidl.experiment.report import metrics_markdown
from minidl.train.trainer import EpochResult, Evaluation

CAPTIONS = {
    "dataset.png": "Figure 1: the data set",
    "training.png": "Figure 2: loss and accuracy per epoch, training and validation",
    "predictions.png": "Figure 3: predictions on the test set",
    "confusion.png": "Confusion matrix on the test set",
    "roc.png": "ROC curve on the test set",
}


def _value(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def summary_markdown(
    config: dict[str, Any],
    test: Evaluation,
    classes: list[Any],
    history: Sequence[EpochResult],
    figures: Sequence[str],
) -> str:
    optim = config["optimizer"]
    extras = ", ".join(f"{k} {optim[k]}" for k in ("lr", "momentum", "weight_decay") if optim.get(k) not in (None, 0))
    lines = [
        "# minidl run",
        "",
        f"- data: `{config['data']['dataset']}`" + ("" if config["data"]["standardize"] else " (not standardised)"),
        f"- model: hidden layers `{config['model']['hidden'] or '(none)'}`",
        f"- loss: `{config['loss']['name']}`; optimizer: `{optim['name']}` ({extras})",
        f"- scheduler: `{config['scheduler']['name']}`",
        f"- {config['epochs']} epochs, batch size {config['batch_size']}, seed {config['seed']}",
        "",
        "## Test metrics",
        "",
        metrics_markdown(test, classes),
    ]
    if history:
        last = history[-1]
        lines += [
            f"## Last epoch ({last.epoch})",
            "",
            "| | training | validation |",
            "|---|---:|---:|",
            f"| loss | {_value(last.loss, '.6f')} | {_value(last.val_loss, '.6f')} |",
        ]
        if last.accuracy is not None:
            lines.append(f"| accuracy | {_value(last.accuracy, '.4f')} | {_value(last.val_accuracy, '.4f')} |")
        lines.append("")
    if figures:
        lines += ["## Figures", ""]
        for name in figures:
            caption = CAPTIONS.get(name, name)
            lines += [f"[{caption}]({name})", "", f"![{caption}]({name})", ""]
    lines += [
        "## Files",
        "",
        "- `config.json`: the resolved config; `minidl train --config config.json --out DIR` runs it again",
        "- `metrics.csv`: one row per epoch",
        "- `model.safetensors`: the weights, the standardisation and the metadata to rebuild the model",
        "",
    ]
    return "\n".join(lines)
