"""``minidl train``: train an MLP on a built-in data set and report test metrics."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from minidl.cli.args import non_negative_float, positive_float, positive_int
from minidl.data import DATASETS, Standardizer
from minidl.nn import LOSSES, mlp, parse_hidden
from minidl.optim import OPTIMIZERS
from minidl.train import EpochResult, Trainer

SEED_HIDDEN = "25:relu,25:tanh,25:relu"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (defaults: the seed disk experiment)",
        description="Train an MLP. With no flags: the EE-559 disk experiment, 2-25-25-25-1, MSE, SGD lr 0.01, "
        "batch size 1, 50 epochs, seed 0.",
    )
    p.add_argument("--dataset", default="disk", choices=sorted(DATASETS), help="built-in data set")
    p.add_argument("--n-train", type=positive_int, default=1000, help="training points (default 1000)")
    p.add_argument("--n-test", type=positive_int, default=1000, help="test points (default 1000)")
    p.add_argument(
        "--hidden",
        default=SEED_HIDDEN,
        metavar="SPEC",
        help="hidden layers as SIZE:ACTIVATION,... (default %(default)s; '' for none)",
    )
    p.add_argument("--loss", default="mse", choices=sorted(LOSSES))
    p.add_argument("--optim", default="sgd", choices=sorted(OPTIMIZERS))
    p.add_argument("--epochs", type=positive_int, default=50)
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (> 0)")
    p.add_argument("--momentum", type=non_negative_float, default=0.0)
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="feed raw features (default: standardize with the training split's mean and std)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for data, initial weights and batch order")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    hidden = parse_hidden(args.hidden)
    make_data = DATASETS[args.dataset]
    # the test set uses a different stream of the same seed so it never repeats training points
    x_train, y_train = make_data(args.n_train, seed=args.seed)
    x_test, y_test = make_data(args.n_test, seed=args.seed + 1_000_003)

    if args.standardize:
        scaler = Standardizer().fit(x_train)
        x_train, x_test = scaler(x_train), scaler(x_test)

    torch.manual_seed(args.seed)
    loss_fn = LOSSES[args.loss]()
    model = mlp(x_train.shape[1], hidden, 1)
    optimizer = OPTIMIZERS[args.optim](model.parameters(), lr=args.lr, momentum=args.momentum)
    print(model)

    width = len(str(args.epochs))

    def report(r: EpochResult) -> None:
        print(f"epoch {r.epoch:>{width}}/{args.epochs}  loss {r.loss:.6f}  acc {r.accuracy:.4f}  ({r.seconds:.2f}s)")
        sys.stdout.flush()

    trainer = Trainer(model, loss_fn, optimizer, callbacks=[report])
    start = time.perf_counter()
    with torch.no_grad():
        trainer.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(x_test, y_test).metrics
    print(f"test: TP {test.tp}  TN {test.tn}  FP {test.fp}  FN {test.fn}")
    print(
        f"test: loss {test.loss:.6f}  accuracy {test.accuracy:.4f}  precision {test.precision:.4f}  "
        f"recall {test.recall:.4f}  F1 {test.f1:.4f}"
    )
    print(f"training time: {seconds:.2f}s")
    return 0
