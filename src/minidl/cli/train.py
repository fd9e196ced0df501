"""``minidl train``: train an MLP from a config and flags, report test metrics, and write a run folder."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from minidl.cli.args import non_negative_int, positive_int
from minidl.cli.finished import complete, early_stop_line
from minidl.cli.options import add_experiment_flags, config_from_args
from minidl.cli.progress import progress_for
from minidl.cli.resume import DEFAULT_EVERY, DEFAULT_KEEP, Resume, plan_resume
from minidl.distributed import DistContext, init_from_env, parallel_device
from minidl.distributed.stop import AgreedStop
from minidl.distributed.supervise import as_worker
from minidl.distributed.supervise import launch_run as launch  # torchrun, supervised: one line on how it ended
from minidl.experiment.config import to_json
from minidl.experiment.experiment import Experiment
from minidl.experiment.report import metrics_lines
from minidl.experiment.run_dir import RunDir
from minidl.experiment.run_lock import lock_for_command, lock_new_run_folder, releases_run_locks
from minidl.experiment.run_logs import MetricsLog
from minidl.experiment.run_summary import summary_markdown
from minidl.experiment.saved_model import SavedModel
from minidl.train.checkpointer import Checkpointer
from minidl.train.evaluation import EpochResult, Evaluation
from minidl.train.interrupt import StopOnSignal, TrainingInterrupted, stop_on_signals
from minidl.train.state import FitStart

DESCRIPTION = """\
Train an MLP. With no flags: the EE-559 disk experiment, 2-25-25-25-1, MSE, SGD lr 0.01, batch size 1,
50 epochs, seed 0. Settings come from the defaults, then --config FILE (TOML, or a run's config.json),
then the flags you give. --optim, --loss and --scheduler with a different name replace that whole
section of the config file. The run folder (--out, default runs/<timestamp>) gets config.json,
metrics.csv, timings.csv, checkpoints/, model.safetensors, summary.md and figures.

Checkpoints: after every --checkpoint-every epochs (and the last), the newest --keep kept. Ctrl-C or
SIGTERM stops at the next step with a checkpoint (exit 130 / 143); `minidl train --resume RUN_DIR`
continues from the newest readable checkpoint with the run's own settings, bit for bit as if never stopped.

--nproc N trains data-parallel in N processes on this machine (torchrun on 127.0.0.1, gloo on CPUs, nccl on
GPUs); --batch-size is the global batch size, so the same command gives the same training for any N.
`torchrun --nproc-per-node N -m minidl train ...` does the same, and spans machines (docs/scaling.md).
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (defaults: the seed disk experiment)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="a TOML config, or a run folder's config.json")
    add_experiment_flags(p, train=True)
    run = p.add_argument_group("run folder and output")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--out", metavar="DIR", help="run folder (default runs/<timestamp>)")
    where.add_argument("--name", help="run folder runs/NAME")
    where.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest readable checkpoint, with the settings saved in it "
        "(only --epochs, --device, --nproc, --checkpoint-every, --keep, --quiet, --no-plots may be given)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace the run files in an existing non-empty folder")
    run.add_argument("--no-plots", dest="plots", action="store_false", help="write no figures")
    run.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        metavar="N",
        help=f"save a checkpoint every N epochs and after the last (0: only the last and on Ctrl-C; "
        f"default {DEFAULT_EVERY}, or the resumed run's)",
    )
    run.add_argument(
        "--keep",
        type=positive_int,
        metavar="K",
        help=f"keep the newest K checkpoints (default {DEFAULT_KEEP}, or the resumed run's)",
    )
    run.add_argument("--quiet", action="store_true", help="print only the final test metrics")
    p.add_argument("--worker-job", metavar="FILE", help=argparse.SUPPRESS)  # written by launch_workers
    p.set_defaults(run=run_train)


@releases_run_locks
def run_train(args: argparse.Namespace) -> int:
    worker = "WORLD_SIZE" in os.environ  # started by torchrun (perhaps through --nproc)
    main = not worker or os.environ.get("RANK") == "0"  # only rank 0 writes: other ranks never look at the folder
    args, config, resume = plan_run(args, lock=main)
    run_dir = None
    if resume is not None:
        run_dir = resume.run_dir
    elif main:
        run_dir = RunDir.plan(args.out, args.name, overwrite=args.overwrite)  # refuse before any work
    if config["nproc"] > 1 and not worker:
        parallel_device(config["device"], config["nproc"], config["nproc"] - 1)  # no device, no torchrun
        if resume is None:  # the launcher holds the lock until its workers are gone
            lock_new_run_folder(run_dir.path, overwrite=run_dir.overwrite)
        return launch_workers(args, config, run_dir)  # at most one line on how the run ended
    if worker:  # config.json records the processes per machine that ran, however they were started
        config["nproc"] = int(os.environ.get("LOCAL_WORLD_SIZE", config["nproc"]))
    with as_worker(args.debug), init_from_env(config["device"]) as context:  # as_worker: --nproc's lifecycle
        return train_here(args, config, run_dir, context, resume)


def plan_run(args: argparse.Namespace, *, lock: bool) -> tuple[argparse.Namespace, dict, Resume | None]:
    """The options, the resolved config and the resume plan (checked and loaded; nothing written yet).

    ``lock`` (the process that writes): one writer per run folder (``experiment/run_lock.py``), refused
    before anything is read, naming the holder's PID; under the ``--nproc`` launcher, the launcher holds it.
    """
    config = None
    if args.worker_job is not None:  # a worker that --nproc started: the launcher's resolved config and folder
        args, config = read_job(args)
    if lock:
        lock_for_command(args.resume, args.out, args.name)
    resume = plan_resume(args) if args.resume is not None else None
    if config is None:
        config = resume.config if resume is not None else config_from_args(args)
    elif resume is not None:
        resume.config = config
    return args, config, resume


def train_here(
    args: argparse.Namespace, config: dict, run_dir: RunDir | None, context: DistContext, resume: Resume | None = None
) -> int:
    """The run itself, in this process; with several ranks, only rank 0 prints and writes files."""
    experiment = Experiment(config, context)
    start = resume.restore(experiment) if resume is not None else None  # a checkpoint that does not fit: refused
    if resume is not None and complete(run_dir.path, start, config, context.is_main):  # every rank: none trains
        return 0
    if not context.is_main:  # the same steps as rank 0 (the collectives are in fit), silently
        return follow(experiment, context, start)
    say = (lambda *a: None) if args.quiet else print
    for line in (experiment.recipe, experiment.class_weight, experiment.model):  # the run's first lines
        if line is not None:
            say(line)
    if resume is not None:
        resume.prepare(start)
        done = f"epoch {start.epoch}, step {start.step}" if start.step else f"epoch {start.epochs_done}"
        say(f"resuming {run_dir.path} from {resume.path.name} (after {done} of {config['epochs']})")
    else:
        lock_new_run_folder(run_dir.path, overwrite=run_dir.overwrite)  # held until run_train returns
        run_dir.create()
        run_dir.write("config.json", to_json(config))
    checkpointer = checkpointer_for(args, config, run_dir, resume)
    checkpointer.metadata["data"] = experiment.data_file  # a CSV file's path, size, sha256: --resume checks it
    callbacks = [*progress_for(config["epochs"], quiet=args.quiet), MetricsLog(run_dir), checkpointer]
    on_signal = stop_for(context)  # last: it names the checkpoint written where a signal stopped the run
    start_time = time.perf_counter()
    try:
        with stop_on_signals(on_signal):
            history = experiment.fit([*callbacks, on_signal], start=start)
    except TrainingInterrupted as stop:
        print(f"minidl train: {stop}; resume with: minidl train --resume {run_dir.path}", file=sys.stderr)
        return stop.exit_code
    seconds = time.perf_counter() - start_time
    if experiment.early_stopping is not None and experiment.early_stopping.stopped_epoch:
        say(early_stop_line(experiment.early_stopping))
    test = experiment.evaluate("test")
    print("\n".join(metrics_lines(test, experiment.data.classes)), flush=True)
    say(f"training time: {seconds:.2f}s")
    write_results(args, experiment, run_dir, test, history)
    say(f"run folder: {run_dir.path}")
    return 0


def follow(experiment: Experiment, context: DistContext, start: FitStart | None) -> int:
    """A rank other than 0: the same steps, silently; rank 0 saves, speaks for the run and gives the exit code."""
    on_signal = stop_for(context)  # a signal stops every rank after the same step
    try:
        with stop_on_signals(on_signal):
            experiment.fit([on_signal], start=start)
    except TrainingInterrupted:
        pass
    return 0


def checkpointer_for(args: argparse.Namespace, config: dict, run_dir: RunDir, resume: Resume | None) -> Checkpointer:
    """The run's ``Checkpointer``: --checkpoint-every and --keep, or what the resumed run was given."""
    every = resume.every if resume is not None else args.checkpoint_every
    keep = resume.keep if resume is not None else args.keep
    return Checkpointer(
        run_dir.path,
        every=DEFAULT_EVERY if every is None else every,
        keep=DEFAULT_KEEP if keep is None else keep,
        metadata={"config": config, "data_seed": config["seed"]},
        last=resume.path if resume is not None else None,
    )


def stop_for(context: DistContext) -> StopOnSignal:
    """This process's ``StopOnSignal``: with several ranks, ``AgreedStop`` (every rank stops after the same step)."""
    return AgreedStop(context.rank) if context.distributed else StopOnSignal()


def write_results(
    args: argparse.Namespace, experiment: Experiment, run_dir: RunDir, test: Evaluation, history: list[EpochResult]
) -> None:
    """model.safetensors, the figures (unless --no-plots) and summary.md."""
    saved = experiment.saved_model()
    model_bytes = saved.to_bytes()
    run_dir.write("model.safetensors", model_bytes)
    figures = {}
    if args.plots:
        from minidl.plot.run import run_figures

        drawn = (saved, test)
        if experiment.device.type != "cpu":  # matplotlib reads CPU tensors: the saved model, read back, raw data
            cpu = SavedModel.from_bytes(model_bytes)
            drawn = (cpu, cpu.evaluate(*experiment.data.test))
        figures = run_figures(experiment, *drawn, history)
        for name, png in figures.items():
            run_dir.write(name, png)
    summary = summary_markdown(experiment.config, test, experiment.data.classes, history, list(figures))
    run_dir.write("summary.md", summary)


JOB_KEYS = ("resume", "overwrite", "plots", "quiet", "checkpoint_every", "keep")  # run options the workers need


def launch_workers(args: argparse.Namespace, config: dict, run_dir: RunDir) -> int:
    """Start ``config["nproc"]`` workers under torchrun, supervised (``launch_run``: they die with this process,
    signals go to them, at most one line on how the run ended); each reads the resolved config and the run
    folder from a job file (JSON), never the command line: torchrun reads the script's arguments too."""
    job = {"config": config, "out": str(run_dir.path), **{key: getattr(args, key) for key in JOB_KEYS}}
    with tempfile.TemporaryDirectory(prefix="minidl-job-") as folder:
        path = Path(folder) / "job.json"
        path.write_text(json.dumps(job), encoding="utf-8")
        argv = [*(["--debug"] if args.debug else []), "train", "--worker-job", str(path)]
        return launch(config["nproc"], argv, run_dir=run_dir.path)


def read_job(args: argparse.Namespace) -> tuple[argparse.Namespace, dict]:
    """The run options and the resolved config a launcher wrote (``launch_workers``)."""
    job = json.loads(Path(args.worker_job).read_text(encoding="utf-8"))
    options = {key: job[key] for key in JOB_KEYS}
    out = None if job["resume"] is not None else job["out"]
    return argparse.Namespace(**{**vars(args), **options, "out": out, "name": None, "config": None}), job["config"]
