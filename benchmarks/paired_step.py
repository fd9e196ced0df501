"""CPU time of the Trainer's step on the seed MLP (case 1's step), two source trees paired, alternating.

    python -m benchmarks.paired_step --before /path/to/old/src --after src --rounds 5

Each measurement is a fresh process with ``PYTHONPATH`` at one tree's ``src``; the trees alternate
(before, after, before, …) so load from other sessions falls on both. A process warms up, then times
blocks of steps with ``time.process_time`` (CPU time: less hit by other processes than wall time) and
prints the median µs/step of its blocks. Reported: each tree's median over the rounds and the median of
the per-round ratios after / before. The step is the Trainer's own (``train_step``, or ``_train_step``
in older trees): seed MLP 2-25-25-25-1, MSE, SGD lr 0.01, batch 1, one thread.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import statistics, time, torch
from minidl import nn, optim
from minidl.train import Trainer
torch.set_num_threads(1)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25), nn.ReLU(),
                      nn.Linear(25, 1))
trainer = Trainer(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.01))
step = getattr(trainer, "train_step", None) or trainer._train_step
x = torch.randn(1000, 2)
t = (x[:, :1] * x[:, 1:] > 0).to(x.dtype)
batches = list(zip(x.split(1), t.split(1)))
model.train()
with torch.no_grad():  # as `minidl train` runs fit
    for xb, tb in batches:
        step(xb, tb)
    blocks = []
    for _ in range(BLOCKS):
        begin = time.process_time()
        for xb, tb in batches:
            step(xb, tb)
        blocks.append((time.process_time() - begin) / len(batches) * 1e6)
print(statistics.median(blocks))
"""


def measure(src: str, blocks: int) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "OMP_NUM_THREADS": "1"}
    code = CHILD.replace("BLOCKS", str(blocks))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the src folder of the tree measured first in each round")
    parser.add_argument("--after", required=True, help="the src folder of the other tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=7, help="blocks of 1,000 steps per process")
    args = parser.parse_args(argv)
    before, after, ratios = [], [], []
    for i in range(args.rounds):
        b, a = measure(args.before, args.blocks), measure(args.after, args.blocks)
        before.append(b)
        after.append(a)
        ratios.append(a / b)
        print(f"round {i + 1}: before {b:.1f} µs/step, after {a:.1f} µs/step, after/before {a / b:.3f}", flush=True)
    print(
        f"median: before {statistics.median(before):.1f} µs/step, after {statistics.median(after):.1f} µs/step, "
        f"after/before {statistics.median(ratios):.3f} (medians over {args.rounds} rounds, CPU time)"
    )


if __name__ == "__main__":
    main()
