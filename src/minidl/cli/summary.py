"""``minidl summary``: the layers, output shapes and parameter counts of a run's model or of a config."""

from __future__ import annotations

import argparse

from minidl.cli.options import add_experiment_flags, config_from_args, flags_layer
from minidl.errors import ConfigError
from minidl.experiment.model_summary import model_summary
from minidl.experiment.run_dir import open_run


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary",
        help="print a table of the model's layers and parameters",
        description="Print a Keras-style table of layers, output shapes and parameter counts: of a run folder's "
        "model, or of the model that minidl train would build from the same --config and flags.",
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a folder written by minidl train")
    p.add_argument("--config", metavar="FILE", help="a TOML config, or a run folder's config.json")
    add_experiment_flags(p)
    p.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    if args.run_dir is not None:
        if args.config is not None or flags_layer(args):
            raise ConfigError("give a run folder or a config and model flags, not both")
        _, saved = open_run(args.run_dir)
        model, in_features = saved.model, saved.model[0].in_features
    else:
        from minidl.experiment.experiment import Experiment

        experiment = Experiment(config_from_args(args))
        model, in_features = experiment.model, experiment.data.in_features
    print(model_summary(model, in_features))
    return 0
