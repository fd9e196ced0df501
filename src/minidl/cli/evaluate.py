"""``minidl evaluate RUN_DIR``: the metrics of a trained model, on its own test split or on a CSV file."""

from __future__ import annotations

import argparse

import torch

from minidl.cli.options import delimiter
from minidl.data.csv import check_fits, features_tensor, read_table
from minidl.data.model_columns import encode_labels, locate_columns
from minidl.data.source import load_data
from minidl.device import resolve_dtype
from minidl.errors import DataError
from minidl.experiment.config import check_layer, resolve
from minidl.experiment.data_identity import check_evaluated_file
from minidl.experiment.report import metrics_lines
from minidl.experiment.run_dir import open_run
from minidl.experiment.saved_model import SavedModel


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="print the metrics of a trained run",
        description="Print the metrics table of a run's model: on the run's own test split (rebuilt from its "
        "config.json, so the numbers are exactly those printed at the end of training), another split, or a "
        "CSV file (its features found by name, its target by the run's target name). Binary: TP/TN/FP/FN, "
        "accuracy, precision, recall, F1, and the ROC AUC where the model gives probabilities. Multi-class: "
        "per-class precision, recall and F1, and the confusion matrix. Regression: MSE, RMSE, MAE, R², and the "
        "MSE of predicting the training mean.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by minidl train")
    p.add_argument("--split", choices=("train", "val", "test"), default="test", help="the run's split (default test)")
    p.add_argument("--data", metavar="PATH.csv", help="evaluate on this CSV file instead (features and target)")
    p.add_argument("--target", metavar="COLUMN", help="target column of --data (default: the training target)")
    p.add_argument("--no-header", dest="header", action="store_false", default=None, help="--data has no header")
    p.add_argument("--delimiter", type=delimiter, metavar="CHAR", help="--data's column separator (default: detected)")
    p.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    config, saved = open_run(args.run_dir)
    if args.data is None:
        config = resolve(check_layer(config, f"{args.run_dir}/config.json"))
        check_evaluated_file(args.run_dir, config["data"]["dataset"], saved.data_file)
        data = load_data(config["data"], config["seed"], resolve_dtype(config["dtype"]))  # the run's own dtype
        split = getattr(data, args.split)
        if split is None:
            raise DataError(f"run {args.run_dir} has no {args.split} split (val_fraction is 0)")
        x, y = split
        prefix = args.split
    else:
        x, y = csv_examples(saved, config, args.data, args.target, args.header, args.delimiter)
        prefix = "data"
    print("\n".join(metrics_lines(saved.evaluate(x, y), saved.classes, prefix=prefix)))
    return 0


def csv_examples(
    saved: SavedModel,
    config: dict,
    path: str,
    target: str | None,
    header: bool | None,
    delimiter: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and targets of a CSV file, its labels mapped with the model's own classes.

    The target is the column ``target``, by default the run's own target column's name.
    """
    header = config.get("data", {}).get("header", True) if header is None else header
    table = read_table(path, header=header, delimiter=delimiter)
    target = target if target is not None else saved.target_name
    features, t = locate_columns(table, saved.feature_names, target, with_target=True)
    if t is None:
        raise DataError(f"{path}: no target column to evaluate against (give --target)")
    x = features_tensor(table, features, saved.model[0].weight.data.dtype)
    if saved.task.is_classification:
        return x, encode_labels(table, t, saved.classes)
    y = torch.tensor(table.numbers(t), dtype=torch.float64).to(x.dtype)
    check_fits(table, y, [t])
    return x, y
