"""``minidl train``: train an MLP from a config and flags, report test metrics, and write a run folder."""

from __future__ import annotations

import argparse
import time

from minidl.cli.options import add_experiment_flags, config_from_args
from minidl.cli.progress import progress_for
from minidl.config import to_json
from minidl.train.experiment import Experiment
from minidl.train.report import metrics_lines
from minidl.train.run_dir import MetricsLog, RunDir
from minidl.train.summary_md import summary_markdown

DESCRIPTION = """\
Train an MLP. With no flags: the EE-559 disk experiment, 2-25-25-25-1, MSE, SGD lr 0.01, batch size 1,
50 epochs, seed 0. Settings come from the defaults, then --config FILE (TOML, or a run's config.json),
then the flags you give. --optim, --loss and --scheduler with a different name replace that whole
section of the config file. The run folder (--out, default runs/<timestamp>) gets config.json,
metrics.csv, model.safetensors, summary.md and figures.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (defaults: the seed disk experiment)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="a TOML config, or a run folder's config.json")
    add_experiment_flags(p)
    run = p.add_argument_group("run folder and output")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    where.add_argument("--name", help="run folder runs/NAME")
    run.add_argument("--overwrite", action="store_true", help="replace the run files in an existing non-empty folder")
    run.add_argument("--no-plots", dest="plots", action="store_false", help="write no figures")
    run.add_argument("--quiet", action="store_true", help="print only the final test metrics")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    run_dir = RunDir.plan(args.out, args.name, overwrite=args.overwrite)  # refuse before any work
    experiment = Experiment(config)
    say = (lambda *a: None) if args.quiet else print
    say(experiment.model)

    run_dir.create()
    run_dir.write("config.json", to_json(config))
    callbacks = [*progress_for(config["epochs"], quiet=args.quiet), MetricsLog(run_dir)]
    start = time.perf_counter()
    history = experiment.fit(callbacks)
    seconds = time.perf_counter() - start
    test = experiment.evaluate("test")
    lines = metrics_lines(test, experiment.data.classes)
    print("\n".join(lines), flush=True)
    say(f"training time: {seconds:.2f}s")

    saved = experiment.saved_model()
    run_dir.write("model.safetensors", saved.to_bytes())
    figures = {}
    if args.plots:
        from minidl.plot.run import run_figures

        figures = run_figures(experiment, saved, test, history)
        for name, png in figures.items():
            run_dir.write(name, png)
    run_dir.write("summary.md", summary_markdown(config, test, experiment.data.classes, history, list(figures)))
    say(f"run folder: {run_dir.path}")
    return 0
