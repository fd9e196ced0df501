"""``minidl predict RUN_DIR --input in.csv --output preds.csv``: the input's rows with a prediction column."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import torch

from minidl.cli.options import delimiter
from minidl.data.csv import features_tensor, read_table
from minidl.data.model_columns import locate_columns
from minidl.errors import ConfigError
from minidl.experiment.run_dir import open_run, write_atomic


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict a CSV file's rows with a trained run",
        description="Read the feature columns of --input (with a header, every training feature by its name, "
        "in any order, other columns ignored; without one, by position: exactly the model's features), and write "
        "every input row with a 'prediction' column added: the class label as the training data named it, or "
        "the regression value. --proba adds one column per class, named by its label: its probability.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by minidl train")
    p.add_argument("--input", required=True, metavar="PATH.csv", help="rows to predict")
    p.add_argument("--output", required=True, metavar="PATH.csv", help="where to write the predictions")
    p.add_argument("--no-header", dest="header", action="store_false", default=None, help="--input has no header")
    p.add_argument("--delimiter", type=delimiter, metavar="CHAR", help="--input's column separator (default: detected)")
    p.add_argument(
        "--proba",
        action="store_true",
        help="also write each class's probability, one column per class (cross-entropy, bce-logits or bce models)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise ConfigError(f"output {output} already exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise ConfigError(f"output {output}: folder {output.parent} does not exist")
    config, saved = open_run(args.run_dir)
    header = config.get("data", {}).get("header", True) if args.header is None else args.header
    table = read_table(args.input, header=header, delimiter=args.delimiter)
    features, _ = locate_columns(table, saved.feature_names, saved.target_name)
    x = features_tensor(table, features, saved.model[0].weight.data.dtype)
    predicted = saved.predict(x)
    if saved.task.is_classification:
        values = [[label] for label in predicted]
    else:
        values = [[repr(float(v))] for v in predicted.reshape(len(x), -1)[:, 0].tolist()]
    names = ["prediction"]
    if args.proba:
        names += proba_columns(saved.labels(torch.arange(saved.task.num_classes)), table.columns)
        proba = saved.predict_proba(x)
        values = [[*v, *(repr(float(p)) for p in row)] for v, row in zip(values, proba.tolist(), strict=True)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if table.has_header:
        writer.writerow([*table.columns, *names])
    for row, value in zip(table.rows, values, strict=True):
        writer.writerow([*row, *value])
    write_atomic(output, buffer.getvalue())
    print(f"wrote {len(values)} predictions to {output}")
    return 0


def proba_columns(labels: list[Any], taken: list[str]) -> list[str]:
    """One column name per class: its label, or ``proba_<label>`` for all if a label is already a column."""
    names = [str(label) for label in labels]
    if any(name in taken or name == "prediction" for name in names) or len(set(names)) < len(names):
        names = [f"proba_{name}" for name in names]
    return names
