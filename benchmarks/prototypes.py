"""Scratch prototypes of per-step speedups for the seed model at batch size 1 (not part of minidl).

Each variant below changes one thing on top of the previous one (cumulative), as subclasses or loops
written here, so src/minidl is untouched. Run from the repository root::

    .venv/bin/python -m benchmarks.prototypes            # µs per step, median of alternated rounds
    .venv/bin/python -m benchmarks.prototypes --count    # aten ops per step for each variant

The variants run round-robin (A B C … A B C …) so that machine noise hits every variant alike.

Phase 1 of issue 6 wrote these against the layers and optimizers of that time; phase 2 moved the changes
into src/minidl, so the subclasses now sit on top of the integrated code and row 0 measures today's
library (with the user loop, ``model.backward``). The history is in docs/performance.md.
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


class LinearGradT(LinearBiasMv):
    """gᵀ computed once in backward and used for both the weight and the bias grad."""

    def backward(self, g: torch.Tensor) -> torch.Tensor:
        x = self._cached(self._input)
        gt = g.t()
        self.weight.grad.addmm_(gt, x)
        ones = self._ones
        if ones is None or ones.shape[0] != g.shape[0] or ones.dtype != g.dtype:
            ones = self._ones = g.new_ones(g.shape[0])
        self.bias.grad.addmv_(gt, ones)
        return g @ self.weight.data


class LinearCachedWT(LinearGradT):
    """Wᵀ as a view made once (re-made if weight.data is rebound): saves the t() of every forward."""

    _wt: torch.Tensor | None = None
    _wt_of: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            return mnn.Linear.forward(self, x)
        if x.shape[1] != self.in_features:
            raise ValueError("shape")
        self._input = x
        w = self.weight.data
        if self._wt_of is not w:
            self._wt, self._wt_of = w.t(), w
        return torch.addmm(self.bias.data, x, self._wt)


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


class FlatAdam:
    """torch.optim.Adam's single-tensor rule on the flat buffers: 6 ops per step for all parameters."""

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        self.groups = flatten_parameters(params)
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0
        self.m = [torch.zeros_like(g.data) for g in self.groups]  # made here, outside any inference_mode
        self.v = [torch.zeros_like(g.data) for g in self.groups]

    def zero_grad(self) -> None:
        for g in self.groups:
            g.grad.zero_()

    def step(self) -> None:
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.t)
        root = (1 - beta2**self.t) ** 0.5
        for g, m, v in zip(self.groups, self.m, self.v, strict=True):
            m.lerp_(g.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(g.grad, g.grad, value=1 - beta2)
            g.data.addcdiv_(m, (v.sqrt() / root).add_(self.eps), value=-step_size)


def make_variants() -> dict[str, dict]:
    """Cumulative: each row keeps every change above it."""
    best = dict(linear=mnn.Linear, relu=mnn.ReLU, tanh=mnn.Tanh, seq=mnn.Sequential, loss=mnn.MSELoss, opt="sgd")
    rows = [
        ("0a user loop, grad mode on", dict(nograd=False)),
        ("0 baseline: under no_grad (CLI)", dict()),
        ("1 +flat zero_grad/step", dict(opt="flat")),
        ("2 +Linear no reshape (2-D)", dict(linear=Linear2D)),
        ("3 +bias grad addmv_", dict(linear=LinearBiasMv)),
        ("3b +g.t() once in backward", dict(linear=LinearGradT)),
        ("4 +ReLU relu()/sign", dict(relu=ReLUSign)),
        ("5 +Tanh addcmul", dict(tanh=TanhAddcmul)),
        ("6 +MSE backward one op", dict(loss=MSEOneOp)),
        ("7 +Sequential direct forward", dict(seq=SequentialDirect)),
        ("8 +split batches once/epoch", dict(split=True)),
        ("8b +losses in a list, no add_", dict(loss_list=True)),
        ("8c +cached W.t() view", dict(linear=LinearCachedWT)),
        ("9 +inference_mode", dict(inference=True)),
    ]
    variants = {}
    for name, change in rows:
        spec = {**best, "nograd": True, **change}
        if name != "0a user loop, grad mode on":
            best = {**best, **change}
        layers = {k: spec[k] for k in ("linear", "relu", "tanh", "seq")}
        variants[name] = {**spec, "model": build(**layers)}
    return variants


def data() -> tuple[torch.Tensor, torch.Tensor]:
    x, labels = disk(1000, seed=0)
    return Standardizer().fit(x)(x), labels.float().unsqueeze(1)


def make_loop(spec: dict, x: torch.Tensor, t: torch.Tensor) -> Callable[[int], None]:
    """A function running ``steps`` per-sample SGD steps as a user (or the Trainer) writes them."""
    model, loss_fn = spec["model"], spec["loss"]()
    opt = SGD(model.parameters(), lr=0.01) if spec["opt"] == "sgd" else FlatSGD(model.parameters(), lr=0.01)
    n = len(x)
    if spec.get("inference"):
        context = torch.inference_mode
    elif spec.get("nograd", True):
        context = torch.no_grad
    else:
        context = torch.enable_grad

    def run(steps: int) -> None:
        total = torch.zeros(())
        with context():
            if spec.get("split"):
                xs, ts = x.split(1), t.split(1)
                batches = ((xs[i % n], ts[i % n]) for i in range(steps))
            else:
                batches = ((x[i % n : i % n + 1], t[i % n : i % n + 1]) for i in range(steps))
            if spec.get("loss_list"):
                values = []
                for xb, tb in batches:
                    values.append(loss_fn(model(xb), tb))
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()
                total += torch.stack(values).sum()
            else:
                for xb, tb in batches:
                    value = loss_fn(model(xb), tb)
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


def adam_loops(x: torch.Tensor, t: torch.Tensor, batch: int = 32) -> dict[str, Callable[[int], None]]:
    """Case 2's step (BCE-with-logits, Adam, batch 32): per-parameter Adam, flat Adam, torch."""
    from minidl.optim import Adam

    xs, ts = x.split(batch), t.split(batch)
    loops = {}
    for name in ("minidl Adam (per parameter)", "flat Adam + fast layers", "torch.nn + torch.optim.Adam"):
        if name.startswith("torch"):
            nn = torch.nn
            torch.manual_seed(0)
            model = nn.Sequential(
                nn.Linear(2, 25),
                nn.ReLU(),
                nn.Linear(25, 25),
                nn.Tanh(),
                nn.Linear(25, 25),
                nn.ReLU(),
                nn.Linear(25, 1),
            )
            loss_fn, opt = nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01)
        elif name.startswith("flat"):
            model = build(linear=LinearCachedWT, relu=ReLUSign, tanh=TanhAddcmul, seq=SequentialDirect)
            loss_fn, opt = mnn.BCEWithLogitsLoss(), FlatAdam(model.parameters(), lr=0.01)
        else:
            model = build()
            loss_fn, opt = mnn.BCEWithLogitsLoss(), Adam(model.parameters(), lr=0.01)
        loops[name] = _batch_loop(model, loss_fn, opt, xs, ts, name.startswith("torch"))
    return loops


def _batch_loop(model, loss_fn, opt, xs, ts, is_torch: bool) -> Callable[[int], None]:
    def run(steps: int) -> None:
        n = len(xs)
        for i in range(steps):
            xb, tb = xs[i % n], ts[i % n]
            if is_torch:
                loss = loss_fn(model(xb), tb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            else:
                with torch.no_grad():
                    loss_fn(model(xb), tb)
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                    opt.step()

    return run


def inference_loops(batch: int) -> dict[str, Callable[[int], None]]:
    """Case 4's forward pass in eval mode: minidl today, with the fast layers, torch under no_grad."""
    xs = torch.randn(1024, 2).split(batch)
    fast = build(linear=LinearCachedWT, relu=ReLUSign, tanh=TanhAddcmul, seq=SequentialDirect)
    nn = torch.nn
    ref = nn.Sequential(
        nn.Linear(2, 25), nn.ReLU(), nn.Linear(25, 25), nn.Tanh(), nn.Linear(25, 25), nn.ReLU(), nn.Linear(25, 1)
    )
    models = {"minidl today": build().eval(), "fast layers": fast.eval(), "torch.nn (no_grad)": ref.eval()}

    def loop(model, context) -> Callable[[int], None]:
        def run(steps: int) -> None:
            with context():
                for i in range(steps):
                    model(xs[i % len(xs)])

        return run

    return {
        f"{name}, batch {batch}": loop(m, torch.no_grad if name.startswith("torch") else torch.enable_grad)
        for name, m in models.items()
    }


class SequentialNoInputGrad(SequentialDirect):
    """Backward that skips the first Linear's grad_input (g W, unused: nobody needs dL/dx of the data),
    as torch.autograd does for inputs that do not require grad."""

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor | None:
        for layer in reversed(self._layers[1:]):
            grad_output = layer.backward(grad_output)
        first = self._layers[0]
        if isinstance(first, mnn.Linear):
            x = first._cached(first._input)
            first.weight.grad.addmm_(grad_output.t(), x)
            first.bias.grad += grad_output.sum(0)
            return None
        return first.backward(grad_output)


def big_loops() -> dict[str, Callable[[int], None]]:
    """Case 3's step (784-1024-1024-10, cross-entropy, SGD, batch 512, default threads)."""
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(512, 784, generator=gen), torch.randint(0, 10, (512,), generator=gen)) for _ in range(4)]
    nn = torch.nn

    def tiny(linear=mnn.Linear, relu=mnn.ReLU, seq=mnn.Sequential):
        torch.manual_seed(0)
        return seq(linear(784, 1024), relu(), linear(1024, 1024), relu(), linear(1024, 10))

    def loop(model, loss_fn, opt, is_torch: bool) -> Callable[[int], None]:
        def run(steps: int) -> None:
            for i in range(steps):
                xb, yb = batches[i % 4]
                if is_torch:
                    loss = loss_fn(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                else:
                    loss_fn(model(xb), yb)
                    opt.zero_grad()
                    model.backward(loss_fn.backward())
                opt.step()

        return run

    today = tiny()
    fast = tiny(linear=LinearCachedWT, relu=ReLUSign, seq=SequentialDirect)
    skip = tiny(linear=LinearCachedWT, relu=ReLUSign, seq=SequentialNoInputGrad)
    ref = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    return {
        "minidl today": loop(today, mnn.CrossEntropyLoss(), SGD(today.parameters(), lr=0.01), False),
        "fast layers + flat SGD": loop(fast, mnn.CrossEntropyLoss(), FlatSGD(fast.parameters(), lr=0.01), False),
        "+ no grad_input for layer 0": loop(skip, mnn.CrossEntropyLoss(), FlatSGD(skip.parameters(), lr=0.01), False),
        "torch.nn + torch.optim.SGD": loop(
            ref, nn.CrossEntropyLoss(), torch.optim.SGD(ref.parameters(), lr=0.01), True
        ),
    }


def _with_threads(run: Callable[[int], None], threads: int) -> Callable[[int], None]:
    def wrapped(steps: int) -> None:
        torch.set_num_threads(threads)
        run(steps)

    return wrapped


def count_python_calls(spec_run: Callable[[int], None]) -> int:
    """Python-level function calls per step (sys.setprofile 'call' events), setup cancelled as in count_ops."""
    import sys

    def calls(steps: int) -> int:
        n = 0

        def hook(frame, event, arg) -> None:
            nonlocal n
            n += event == "call"

        sys.setprofile(hook)
        try:
            spec_run(steps)
        finally:
            sys.setprofile(None)
        return n

    spec_run(2)
    return round((calls(101) - calls(1)) / 100)


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
    with Count() as one:
        spec_run(1)
    with Count() as many:
        spec_run(101)
    many.ops.subtract(one.ops)  # per-run setup (split, totals) cancels: what is left is 100 steps
    return collections.Counter({op: n / 100 for op, n in many.ops.items() if n})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 keeps the default")
    parser.add_argument("--count", action="store_true", help="count aten ops per step instead of timing")
    parser.add_argument("--suite", choices=["sgd1", "adam32", "infer1", "infer1024", "big", "threads"], default="sgd1")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    x, t = data()
    if args.suite == "sgd1":
        runs = {name: make_loop(spec, x, t) for name, spec in make_variants().items()}
        runs["torch.nn + autograd + torch.optim"] = torch_loop(x, t)
    elif args.suite == "adam32":
        runs = adam_loops(x, t)
    elif args.suite == "big":
        runs = big_loops()
    elif args.suite == "threads":  # the same baseline loop with 1 thread and with the default, alternated
        default = default_threads
        variants = make_variants()
        base = make_loop(variants["0 baseline: under no_grad (CLI)"], x, t)
        best = make_loop(variants["8c +cached W.t() view"], x, t)
        runs = {}
        for label, loop in (("baseline", base), ("all prototypes", best)):
            for threads in (1, default):
                runs[f"{label}, {threads} thread(s)"] = _with_threads(loop, threads)
    else:
        runs = inference_loops(1 if args.suite == "infer1" else 1024)
    if args.count:
        for name, run in runs.items():
            ops = count_ops(run)
            detail = ", ".join(f"{op} {n:g}" for op, n in ops.most_common())
            py = count_python_calls(run)
            print(f"{name:36s} {sum(ops.values()):5.1f} ops/step, {py:3d} Python calls/step: {detail}")
        return
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(min(200, args.steps))  # warm-up
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run(args.steps)
            times[name].append((time.perf_counter() - start) / args.steps * 1e6)
    names = list(runs)
    base, ref = statistics.median(times[names[0]]), statistics.median(times[names[-1]])
    print(
        f"{args.suite}: threads={torch.get_num_threads()}  steps/round={args.steps}  rounds={args.rounds}  (median µs)"
    )
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:36s} {med:7.1f} µs/step   saves {base - med:6.1f} vs first row   torch/this {ref / med:4.2f}x")


if __name__ == "__main__":
    main()
