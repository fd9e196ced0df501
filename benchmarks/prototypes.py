"""Scratch prototypes of per-step speedups for the seed model at batch size 1 (not part of minidl).

Each variant below changes one thing on top of the previous one (cumulative), as subclasses or loops
written here, so src/minidl is untouched. Run from the repository root::

    .venv/bin/python -m benchmarks.prototypes            # µs per step, median of alternated rounds
    .venv/bin/python -m benchmarks.prototypes --count    # aten ops per step for each variant

The variants run round-robin (A B C … A B C …) so that machine noise hits every variant alike.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from collections.abc import Callable

import torch

import minidl.nn as mnn
from minidl.data import Standardizer, disk
from minidl.optim import SGD
from minidl.optim.flat import flatten_parameters

# -- layers with the candidate changes ---------------------------------------------------------------


class Linear2D(mnn.Linear):
    """No reshape when the input is already (N, in_features): saves 2 views forward, 2 backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            return super().forward(x)
        if x.shape[1] != self.in_features:
            raise ValueError("shape")
        self._input = x
        return torch.addmm(self.bias.data, x, self.weight.data.t())

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        x = self._cached(self._input)
        self.weight.grad.addmm_(g.t(), x)
        self.bias.grad += g.sum(0)
        return g @ self.weight.data


class LinearBiasMv(Linear2D):
    """Bias grad as one op: b.grad += gᵀ 1 (addmv_ with a cached ones vector) instead of sum + add_."""

    _ones: torch.Tensor | None = None

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        x = self._cached(self._input)
        self.weight.grad.addmm_(g.t(), x)
        ones = self._ones
        if ones is None or ones.shape[0] != g.shape[0] or ones.dtype != g.dtype:
            ones = self._ones = g.new_ones(g.shape[0])
        self.bias.grad.addmv_(g.t(), ones)
        return g @ self.weight.data


class ReLUSign(mnn.ReLU):
    """Forward relu() and cache the output; backward g * sign(y) (no Python-scalar compare, no bool mul)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._mask = x.relu()
        return self._mask

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        return g * self._cached(self._mask).sign()  # d relu/dx = 1 where y > 0: sign(y) ∈ {0, 1}


class TanhAddcmul(mnn.Tanh):
    """Backward g − (g·y)·y: two ops, no Python scalar (1 − y² costs a wrapped-scalar rsub)."""

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        y = self._cached(self._output)
        return torch.addcmul(g, g * y, y, value=-1)


class MSEOneOp(mnn.MSELoss):
    """Backward as one op: diff * (2/N) with the factor a cached 0-dim tensor (no wrapped Python scalar)."""

    _scale: torch.Tensor | None = None

    def backward(self, grad_output: torch.Tensor | None = None) -> torch.Tensor:
        diff = self._cached(self._diff)
        scale = self._scale
        if scale is None or self._scale_n != diff.numel() or scale.dtype != diff.dtype:
            self._scale_n = diff.numel()
            scale = self._scale = torch.tensor(2.0 / diff.numel(), dtype=diff.dtype, device=diff.device)
        return diff * scale


class SequentialDirect(mnn.Sequential):
    """Calls layer.forward directly (no Module.__call__ frame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._layers:
            x = layer.forward(x)
        return x


# -- building the variants ---------------------------------------------------------------------------

HIDDEN = [(25, "relu"), (25, "tanh"), (25, "relu")]


def build(linear=mnn.Linear, relu=mnn.ReLU, tanh=mnn.Tanh, seq=mnn.Sequential) -> mnn.Sequential:
    torch.manual_seed(0)
    acts = {"relu": relu, "tanh": tanh}
    layers, width = [], 2
    for size, act in HIDDEN:
        layers += [linear(width, size), acts[act]()]
        width = size
    return seq(*layers, linear(width, 1))


class FlatSGD:
    """Plain SGD on flat buffers: zero_grad and step are one op each per (dtype, device)."""

    def __init__(self, params, lr: float) -> None:
        self.groups = flatten_parameters(params)
        self.lr = lr

    def zero_grad(self) -> None:
        for g in self.groups:
            g.grad.zero_()

    def step(self) -> None:
        for g in self.groups:
            g.data.add_(g.grad, alpha=-self.lr)


def make_variants() -> dict[str, dict]:
    v: dict[str, dict] = {}
    v["0 baseline (SGD per param)"] = dict(model=build(), loss=mnn.MSELoss, opt="sgd")
    v["1 +flat zero_grad/step"] = dict(model=build(), loss=mnn.MSELoss, opt="flat")
    v["2 +Linear no reshape (2-D)"] = dict(model=build(linear=Linear2D), loss=mnn.MSELoss, opt="flat")
    v["3 +bias grad addmv_"] = dict(model=build(linear=LinearBiasMv), loss=mnn.MSELoss, opt="flat")
    v["4 +ReLU relu()/sign"] = dict(model=build(linear=LinearBiasMv, relu=ReLUSign), loss=mnn.MSELoss, opt="flat")
    v["5 +Tanh addcmul"] = dict(
        model=build(linear=LinearBiasMv, relu=ReLUSign, tanh=TanhAddcmul), loss=mnn.MSELoss, opt="flat"
    )
    v["6 +MSE backward one op"] = dict(
        model=build(linear=LinearBiasMv, relu=ReLUSign, tanh=TanhAddcmul), loss=MSEOneOp, opt="flat"
    )
    v["7 +Sequential direct forward"] = dict(
        model=build(linear=LinearBiasMv, relu=ReLUSign, tanh=TanhAddcmul, seq=SequentialDirect),
        loss=MSEOneOp,
        opt="flat",
    )
    v["8 +split batches once/epoch"] = {**v["7 +Sequential direct forward"], "split": True}
    v["8 +split batches once/epoch"]["model"] = build(
        linear=LinearBiasMv, relu=ReLUSign, tanh=TanhAddcmul, seq=SequentialDirect
    )
    v["9 +inference_mode"] = dict(
        model=build(linear=LinearBiasMv, relu=ReLUSign, tanh=TanhAddcmul, seq=SequentialDirect),
        loss=MSEOneOp,
        opt="flat",
        split=True,
        inference=True,
    )
    return v


def data() -> tuple[torch.Tensor, torch.Tensor]:
    x, labels = disk(1000, seed=0)
    return Standardizer().fit(x)(x), labels.float().unsqueeze(1)


def make_loop(spec: dict, x: torch.Tensor, t: torch.Tensor) -> Callable[[int], None]:
    """A function running ``steps`` per-sample SGD steps as a user (or the Trainer) writes them."""
    model, loss_fn = spec["model"], spec["loss"]()
    opt = SGD(model.parameters(), lr=0.01) if spec["opt"] == "sgd" else FlatSGD(model.parameters(), lr=0.01)
    total = torch.zeros(())
    n = len(x)

    def run(steps: int) -> None:
        ctx = torch.inference_mode() if spec.get("inference") else torch.no_grad()
        with ctx:
            if spec.get("split"):
                xs, ts = x.split(1), t.split(1)
                for i in range(steps):
                    value = loss_fn(model(xs[i % n]), ts[i % n])
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()
                    total.add_(value)
            else:
                for i in range(steps):
                    j = i % n
                    value = loss_fn(model(x[j : j + 1]), t[j : j + 1])
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()
                    total.add_(value)

    return run


def torch_loop(x: torch.Tensor, t: torch.Tensor) -> Callable[[int], None]:
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25), nn.ReLU(), nn.Linear(25, 1)
    )
    loss_fn, opt = nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.01)
    total = torch.zeros(())
    n = len(x)

    def run(steps: int) -> None:
        for i in range(steps):
            j = i % n
            loss = loss_fn(model(x[j : j + 1]), t[j : j + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total.add_(loss.detach())

    return run


def count_ops(spec_run: Callable[[int], None]) -> collections.Counter:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.ops: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops[str(func).removeprefix("aten.")] += 1
            return func(*args, **(kwargs or {}))

    spec_run(2)
    with Count() as c:
        spec_run(1)
    return c.ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--count", action="store_true", help="count aten ops per step instead of timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, t = data()
    runs = {name: make_loop(spec, x, t) for name, spec in make_variants().items()}
    runs["torch.nn + autograd + torch.optim"] = torch_loop(x, t)
    if args.count:
        for name, run in runs.items():
            ops = count_ops(run)
            print(f"{name:36s} {sum(ops.values()):3d} ops  {dict(ops.most_common())}")
        return
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(200)  # warm-up
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps * 1e6)
    base = statistics.median(times["0 baseline (SGD per param)"])
    ref = statistics.median(times["torch.nn + autograd + torch.optim"])
    print(f"threads={torch.get_num_threads()}  steps/round={args.steps}  rounds={args.rounds}  (median µs/step)")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:36s} {med:7.1f} µs/step   saves {base - med:6.1f} vs baseline   torch/this {ref / med:4.2f}x")


if __name__ == "__main__":
    main()
