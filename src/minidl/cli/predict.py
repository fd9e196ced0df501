"""``minidl predict RUN_DIR --input in.csv --output preds.csv``: the input's rows with a prediction column."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from minidl.data.csv import features_tensor, locate_columns, read_table
from minidl.errors import ConfigError
from minidl.experiment.run_dir import open_run, write_atomic


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="predict a CSV file's rows with a trained run",
        description="Read the feature columns of --input (by the training feature names when its header has "
        "them, else by position; a target column, if present, is ignored), and write every input row with a "
        "'prediction' column added: the class label as the training data named it, or the regression value.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by minidl train")
    p.add_argument("--input", required=True, metavar="PATH.csv", help="rows to predict")
    p.add_argument("--output", required=True, metavar="PATH.csv", help="where to write the predictions")
    p.add_argument("--no-header", dest="header", action="store_false", default=None, help="--input has no header")
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
    table = read_table(args.input, header=header)
    features, _ = locate_columns(table, saved.feature_names, saved.target_name)
    x = features_tensor(table, features, saved.model[0].weight.data.dtype)
    predicted = saved.predict(x)
    if saved.task.is_classification:
        values = [saved.classes[int(i)] if int(i) < len(saved.classes) else int(i) for i in predicted]
    else:
        values = [repr(float(v)) for v in predicted.reshape(len(x), -1)[:, 0].tolist()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if table.has_header:
        writer.writerow([*table.columns, "prediction"])
    for row, value in zip(table.rows, values, strict=True):
        writer.writerow([*row, value])
    write_atomic(output, buffer.getvalue())
    print(f"wrote {len(values)} predictions to {output}")
    return 0
