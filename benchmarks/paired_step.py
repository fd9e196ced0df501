"""CPU time of a benchmark case's step (cases 1-4): two source trees, paired in one process.

    python -m benchmarks.paired_step --before /path/to/old/src --after src --blocks 30 [--case 2]

Both trees' ``minidl`` live in one process: each is imported in turn (``minidl.nn``, ``optim``, ``train``)
and its modules are then moved out of ``sys.modules``, so the second import is the other tree's code;
the step imports nothing at run time. The trees then alternate block by block (1,000 steps each, the
order swapped every block), timed with ``time.process_time``, and the result is the median of the
per-block ratios after / before. On a loaded machine this is far steadier than separate processes
(their medians moved ±10 % between rounds here; the paired ratio's quartiles stay within ±2 %).
The step is the Trainer's own (``train_step``, or ``_train_step`` in older trees), one thread, under
``torch.no_grad()`` as ``minidl train``:

- case 1: seed MLP 2-25-25-25-1, MSE, SGD lr 0.01, batch 1;
- case 2: the same MLP, BCE-with-logits, Adam lr 0.01, batch 32;
- case 3: MLP 784-1024-1024-10 float32, cross-entropy, SGD lr 0.01, batch 512 (blocks of 5 steps);
- cases 4a / 4b: the seed MLP's forward in eval mode, batch 1 / 1024.

``--whole fit`` (cases 1 and 2) times what ``benchmarks.run`` times instead: each block is a whole
``Trainer.fit`` on the disk data (case 1: 1 epoch of 1,000 steps; case 2: 10 epochs of 32 steps), with its
shuffling, summed loss and per-epoch evaluation; ``--whole loop`` the benchmark's own user loop (forward,
``zero_grad``, ``backward``, ``step``) over one epoch's shuffled batches.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def load_tree(src: str) -> tuple[object, object, object]:
    """``minidl.nn``, ``minidl.optim``, ``minidl.train`` of the tree at ``src``, out of ``sys.modules`` again."""
    ours = {k: sys.modules.pop(k) for k in [k for k in sys.modules if k == "minidl" or k.startswith("minidl.")]}
    sys.path.insert(0, str(Path(src).resolve()))
    try:
        for name in ("minidl.nn", "minidl.optim", "minidl.train"):
            importlib.import_module(name)
        loaded = {k: sys.modules[k] for k in list(sys.modules) if k == "minidl" or k.startswith("minidl.")}
    finally:
        sys.path.pop(0)
    for name in loaded:
        del sys.modules[name]
    sys.modules.update(ours)  # the caller's minidl again: a later import must not make a second copy of its classes
    print(f"loaded {loaded['minidl'].__file__}")
    return loaded["minidl.nn"], loaded["minidl.optim"], loaded["minidl.train"]


def seed_mlp(nn) -> object:
    return nn.Sequential(
        nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25), nn.ReLU(), nn.Linear(25, 1)
    )


def trainer_step(train, model, loss_fn, optimizer) -> Callable:
    trainer = train.Trainer(model, loss_fn, optimizer)
    model.train()
    return getattr(trainer, "train_step", None) or trainer._train_step


def case_step(case: str, nn, optim, train) -> Callable:
    """The step of ``case`` built from one tree's modules; it takes ``(x, target)``."""
    torch.manual_seed(0)
    if case == "1":
        model = seed_mlp(nn)
        return trainer_step(train, model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01))
    if case == "2":
        model = seed_mlp(nn)
        return trainer_step(train, model, nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01))
    if case == "3":
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
        return trainer_step(train, model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.01))
    model = seed_mlp(nn)
    model.eval()
    return lambda x, target: model(x)


def case_batches(case: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One block's batches: 1,000 steps (case 3: 5 steps, case 4b: 100 batches of 1,024)."""
    generator = torch.Generator().manual_seed(0)
    if case == "3":
        x = torch.randn(5 * 512, 784, generator=generator)
        return list(zip(x.split(512), torch.randint(0, 10, (5 * 512,), generator=generator).split(512), strict=True))
    size, count = {"1": (1, 1000), "2": (32, 1000), "4a": (1, 1000), "4b": (1024, 100)}[case]
    x = torch.randn(size * count, 2, generator=generator)
    t = (x[:, :1] * x[:, 1:] > 0).to(x.dtype)
    return list(zip(x.split(size), t.split(size), strict=True))


WHOLE_EPOCHS = {"1": 1, "2": 10}  # per block: about 0.1 s (case 1) and 0.06 s (case 2)


def whole_run(case: str, how: str, nn, optim, train) -> Callable:
    """A block of ``--whole fit`` or ``--whole loop`` built from one tree's modules; it takes ``(x, y)``."""
    from benchmarks.cases import SEED, TRAIN_CASES

    batch_size = TRAIN_CASES[int(case)][2]
    torch.manual_seed(0)
    model = seed_mlp(nn)
    if case == "1":
        loss_fn, optimizer = nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01)
    else:
        loss_fn, optimizer = nn.BCEWithLogitsLoss(), optim.Adam(model.parameters(), lr=0.01)
    if how == "fit":
        trainer = train.Trainer(model, loss_fn, optimizer)
        return lambda x, y: trainer.fit(x, y, epochs=WHOLE_EPOCHS[case], batch_size=batch_size, seed=SEED)

    def loop(x: torch.Tensor, y: torch.Tensor) -> None:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(SEED))
        targets = y.to(x.dtype).unsqueeze(1)[order]
        model.train()
        total = torch.zeros(())
        for xb, tb in zip(x[order].split(batch_size), targets.split(batch_size), strict=True):
            value = loss_fn(model(xb), tb)
            optimizer.zero_grad()
            model.backward(loss_fn.backward())
            optimizer.step()
            total.add_(value, alpha=len(xb))
        model.eval()
        model(x)

    return loop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the src folder of the reference tree")
    parser.add_argument("--after", required=True, help="the src folder of the tree compared with it")
    parser.add_argument("--blocks", type=int, default=30, help="blocks of steps per tree")
    parser.add_argument("--case", choices=("1", "2", "3", "4a", "4b"), default="1", help="the benchmark case")
    parser.add_argument("--whole", choices=("fit", "loop"), help="cases 1-2: time Trainer.fit or the user loop")
    args = parser.parse_args(argv)
    if args.whole and args.case not in WHOLE_EPOCHS:
        parser.error("--whole is for cases 1 and 2")
    torch.set_num_threads(2 if args.case == "3" else 1)
    trees = (("before", args.before), ("after", args.after))
    if args.whole:
        from benchmarks.cases import disk_data

        steps = {name: whole_run(args.case, args.whole, *load_tree(src)) for name, src in trees}
        batches = [disk_data()[:2]]
    else:
        steps = {name: case_step(args.case, *load_tree(src)) for name, src in trees}
        batches = case_batches(args.case)
    times: dict[str, list[float]] = {"before": [], "after": []}
    with torch.no_grad():
        for step in steps.values():  # warm-up: first-call costs, the optimizer's state
            for xb, tb in batches:
                step(xb, tb)
        for block in range(args.blocks):
            for name in ("before", "after") if block % 2 == 0 else ("after", "before"):
                begin = time.process_time()
                for xb, tb in batches:
                    steps[name](xb, tb)
                times[name].append((time.process_time() - begin) / len(batches) * 1e6)
    ratios = [a / b for a, b in zip(times["after"], times["before"], strict=True)]
    q1, median, q3 = statistics.quantiles(ratios, n=4)
    print(
        f"before {statistics.median(times['before']):.1f}, after {statistics.median(times['after']):.1f} "
        f"µs/{'block' if args.whole else 'step'} (case {args.case}{', whole ' + args.whole if args.whole else ''}, "
        f"medians of {args.blocks} blocks, CPU time); after/before median {median:.3f} "
        f"(quartiles {q1:.3f}-{q3:.3f})"
    )


if __name__ == "__main__":
    main()
