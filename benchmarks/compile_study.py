"""Which compiled path works for minidl on this torch (issue 15, item 2): a study, not library code.

Because minidl's forward and backward are plain tensor operations, one training step (or a whole epoch of
steps) can be captured and compiled. This script writes the seed experiment's step by hand, as
``Trainer(..., compile=True)`` would capture it (forward, hand-written backward, SGD update; plain tensor
ops, no autograd, no torch.nn), and measures each way of compiling it on the seed experiment
(2-25-25-25-1, ReLU/Tanh/ReLU, MSE, per-sample SGD lr 0.01, 1000 disk points, float32)::

    .venv/bin/python -m benchmarks.compile_study                    # every variant, writes compile_study.{md,json}
    .venv/bin/python -m benchmarks.compile_study --variants scan-inductor,script-epoch --epochs 10
    .venv/bin/python -m benchmarks.compile_study --one compile-inductor   # one measurement (what the driver runs)

Each measurement is a fresh process with its own empty inductor cache (``TORCHINDUCTOR_CACHE_DIR``), so
the compile time is a cold one; ``--cached`` variants rerun with the cache the first process left, as a
resumed run would find it. In the process: (1) one epoch from minidl's initial weights on a throwaway copy
(first call: capture and compilation) -> ``first_epoch_s``; (2) the weights after one epoch, compared with
the same explicit step run eagerly and with minidl's own layers (normwise relative difference
max|a-b| / max|b| per tensor, the largest over the 8 tensors), in float32 and float64; (3) ``--epochs``
epochs, alternating epoch by epoch with minidl's eager step (its own copy of the model) so that load
bursts hit both alike: the median ms per epoch of each, the median of the per-epoch ratios, and each
one's test accuracy at the end. Threads: 1, as benchmarks case 1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

LR = 0.01
SEED = 0


# -- the explicit step: the seed MLP's forward, backward and SGD update in plain tensor ops -------------


def seed_grads(
    w0: Tensor, b0: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor, x: Tensor, t: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Loss and the 8 parameter grads of 2-25-25-25-1 (ReLU, Tanh, ReLU) with MSE, as minidl's layers compute
    them (TorchScript-compatible: no Python containers of modules, annotated tensors)."""
    # forward; x: (N, 2) -> h0, h1, h2: (N, 25) -> out: (N, 1)
    h0 = torch.addmm(b0, x, w0.t()).relu()
    h1 = torch.addmm(b1, h0, w1.t()).tanh()
    h2 = torch.addmm(b2, h1, w2.t()).relu()
    out = torch.addmm(b3, h2, w3.t())
    diff = out - t
    loss = (diff * diff).mean()
    # backward: dMSE/dout = 2(out - t)/numel; Linear: gW = gᵀ h, gb = Σ g, g_in = g W
    g3 = diff * (2.0 / diff.numel())
    g2 = (g3 @ w3) * h2.sign()  # ReLU: the 0/1 mask of the cached output
    g1 = g2 @ w2
    g1 = g1 - (g1 * h1) * h1  # Tanh: g (1 - y²)
    g0 = (g1 @ w1) * h0.sign()
    return loss, g0.t() @ x, g0.sum(0), g1.t() @ h0, g1.sum(0), g2.t() @ h1, g2.sum(0), g3.t() @ h2, g3.sum(0)


def step_inplace(params: list[Tensor], x: Tensor, t: Tensor, lr: float) -> Tensor:
    """One SGD step on ``params`` in place (what minidl's optimizer does); returns the loss."""
    loss, *grads = seed_grads(*params, x, t)
    torch._foreach_add_(params, grads, alpha=-lr)
    return loss


def step_functional(params: tuple[Tensor, ...], x: Tensor, t: Tensor, lr: float):
    """The same step returning new weights (scan's carry may not be mutated)."""
    loss, *grads = seed_grads(*params, x, t)
    return tuple(p - lr * g for p, g in zip(params, grads, strict=True)), loss


def script_epoch(params: list[Tensor], xs: Tensor, ts: Tensor, lr: float) -> Tensor:
    """A whole epoch as one TorchScript loop (xs: (n, 1, 2), ts: (n, 1, 1)); returns the summed loss."""
    total = torch.zeros((), dtype=xs.dtype)
    for i in range(xs.size(0)):
        w0, b0, w1, b1, w2, b2, w3, b3 = (
            params[0],
            params[1],
            params[2],
            params[3],
            params[4],
            params[5],
            params[6],
            params[7],
        )
        loss, g0, gb0, g1, gb1, g2, gb2, g3, gb3 = SCRIPTED_GRADS(w0, b0, w1, b1, w2, b2, w3, b3, xs[i], ts[i])
        w0.sub_(g0, alpha=lr)
        b0.sub_(gb0, alpha=lr)
        w1.sub_(g1, alpha=lr)
        b1.sub_(gb1, alpha=lr)
        w2.sub_(g2, alpha=lr)
        b2.sub_(gb2, alpha=lr)
        w3.sub_(g3, alpha=lr)
        b3.sub_(gb3, alpha=lr)
        total += loss
    return total


SCRIPTED_GRADS: Callable = seed_grads  # replaced by its scripted version before script_epoch is scripted


# -- the variants: how an epoch runs ------------------------------------------------------------------------
# each builder returns run_epoch(params: list[Tensor], xe: Tensor (n, 2), te: Tensor (n, 1)) -> summed loss;
# params are updated in place (scan's result is copied back, as a Trainer would into its parameters)


def _python_loop(step: Callable) -> Callable:
    def run_epoch(params, xe, te):
        total = torch.zeros((), dtype=xe.dtype)
        for xb, tb in zip(xe.split(1), te.split(1), strict=True):  # views, as minidl's DataLoader
            total += step(params, xb, tb, LR)
        return total

    return run_epoch


def _inductor_options(options: dict) -> None:
    if options:
        import torch._inductor.config as inductor_config

        for key, value in options.items():
            setattr(inductor_config, key, value)


def _compiled_step(backend: str, mode: str | None = None, **options) -> Callable:
    def build():
        _inductor_options(options)
        return _python_loop(torch.compile(step_inplace, backend=backend, mode=mode, dynamic=False, fullgraph=True))

    return build


def _unrolled(chunk: int, backend: str, **options) -> Callable:
    def build():
        _inductor_options(options)

        def steps(params, xs, ts, lr: float):
            total = torch.zeros((), dtype=xs.dtype)
            for i in range(chunk):  # dynamo unrolls: one graph of `chunk` steps
                total = total + step_inplace(params, xs[i], ts[i], lr)
            return total

        compiled = torch.compile(steps, backend=backend, dynamic=False, fullgraph=True)

        def run_epoch(params, xe, te):
            n = len(xe)
            xs, ts = xe.view(n, 1, -1), te.view(n, 1, -1)
            total = torch.zeros((), dtype=xe.dtype)
            for start in range(0, n - n % chunk, chunk):
                total += compiled(params, xs[start : start + chunk], ts[start : start + chunk], LR)
            for i in range(n - n % chunk, n):  # the rest, eagerly (none for 1000 and 10)
                total += step_inplace(params, xs[i], ts[i], LR)
            return total

        return run_epoch

    return build


def _scan(backend: str | None, mode: str | None = None, **options) -> Callable:
    def build():
        from torch._higher_order_ops.scan import scan

        _inductor_options(options)

        def combine(carry, batch):
            xb, tb = batch
            new, loss = step_functional(carry, xb, tb, LR)
            return new, loss

        def epoch(params: tuple[Tensor, ...], xs: Tensor, ts: Tensor):
            return scan(combine, params, (xs, ts))

        fn = (
            epoch
            if backend is None
            else torch.compile(epoch, backend=backend, mode=mode, dynamic=False, fullgraph=True)
        )

        def run_epoch(params, xe, te):
            n = len(xe)
            new, losses = fn(tuple(params), xe.view(n, 1, -1), te.view(n, 1, -1))
            torch._foreach_copy_(params, list(new))
            return losses.sum()

        return run_epoch

    return build


def _traced_minidl_step() -> Callable:
    """minidl's own step (its layers, loss and SGD, as the Trainer calls them), traced into one aten graph by
    ``make_fx`` on a throwaway copy: the generic way a ``Trainer(compile=True)`` could capture any model.
    Each Parameter is rebound to a fresh copy of the carried weights (and a fresh grad), so the in-place
    updates hit intermediates, never the graph's inputs: the graph is a pure (weights, x, t) -> (weights, loss)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from benchmarks.cases import SEED_HIDDEN, minidl_model
    from minidl.nn import MSELoss
    from minidl.optim import SGD

    model = minidl_model(2, SEED_HIDDEN, 1)
    loss_fn, optimizer = MSELoss(), SGD(model.parameters(), lr=LR)
    parameters = list(model.parameters())

    def step(weights: list[Tensor], x: Tensor, t: Tensor):
        for p, w in zip(parameters, weights, strict=True):
            p.data, p.grad = w.clone(), torch.zeros_like(w)
        value = loss_fn(model(x), t)
        optimizer.zero_grad()
        model.backward_parameters(loss_fn.backward())
        optimizer.step()
        return [p.data for p in parameters], value

    graphs: dict[torch.dtype, Callable] = {}

    def traced(weights, xb, tb):
        if xb.dtype not in graphs:
            model.to(dtype=xb.dtype)
            with torch.inference_mode(False):  # the optimizer leaves inference mode for its first step
                graphs[xb.dtype] = make_fx(step)([w.clone() for w in weights], xb.clone(), tb.clone())
        return graphs[xb.dtype](list(weights), xb, tb)

    return traced


def _minidl_scan(mode: str | None = None, **options) -> Callable:
    def build():
        from torch._higher_order_ops.scan import scan

        _inductor_options(options)
        traced = _traced_minidl_step()

        def combine(carry, batch):
            new, loss = traced(carry, *batch)
            return tuple(new), loss

        def epoch(params: tuple[Tensor, ...], xs: Tensor, ts: Tensor):
            return scan(combine, params, (xs, ts))

        compiled = torch.compile(epoch, backend="inductor", mode=mode, dynamic=False, fullgraph=True)
        seen: set[torch.dtype] = set()

        def run_epoch(params, xe, te):
            n = len(xe)
            xs, ts = xe.view(n, 1, -1), te.view(n, 1, -1)
            if xe.dtype not in seen:  # the trace (make_fx) happens outside the compiled region
                seen.add(xe.dtype)
                traced(params, xs[0], ts[0])
            new, losses = compiled(tuple(params), xs, ts)
            torch._foreach_copy_(params, list(new))
            return losses.sum()

        return run_epoch

    return build


def _script_epoch() -> Callable:
    global SCRIPTED_GRADS
    SCRIPTED_GRADS = torch.jit.script(seed_grads)
    scripted = torch.jit.script(script_epoch)

    def run_epoch(params, xe, te):
        n = len(xe)
        return scripted(params, xe.view(n, 1, -1), te.view(n, 1, -1), LR)

    return run_epoch


def _trace_step() -> Callable:
    traced: dict[torch.dtype, Callable] = {}

    def step(params, xb, tb, lr):
        if xb.dtype not in traced:  # traced on the first call (lr baked in), on copies: tracing runs the step
            example = [p.clone() for p in params]
            traced[xb.dtype] = torch.jit.trace(lambda *a: step_inplace(list(a[:8]), a[8], a[9], lr), (*example, xb, tb))
        return traced[xb.dtype](*params, xb, tb)

    return _python_loop(step)


VARIANTS: dict[str, tuple[str, Callable[[], Callable]]] = {
    "eager-step": ("the explicit step, eager (no compilation)", lambda: _python_loop(step_inplace)),
    "compile-inductor": ("torch.compile(step), inductor, mode default", _compiled_step("inductor")),
    "compile-inductor-reduce-overhead": (
        'torch.compile(step), inductor, mode "reduce-overhead"',
        _compiled_step("inductor", "reduce-overhead"),
    ),
    "compile-inductor-max-autotune": (
        'torch.compile(step), inductor, mode "max-autotune-no-cudagraphs"',
        _compiled_step("inductor", "max-autotune-no-cudagraphs"),
    ),
    "compile-inductor-cpp-wrapper": (
        "torch.compile(step), inductor, cpp_wrapper=True (C++ instead of Python glue)",
        _compiled_step("inductor", cpp_wrapper=True),
    ),
    "compile-aot_eager": ("torch.compile(step), backend aot_eager", _compiled_step("aot_eager")),
    "compile-eager": ("torch.compile(step), backend eager (dynamo capture only)", _compiled_step("eager")),
    "unroll10-inductor": ("torch.compile of 10 steps unrolled into one graph, inductor", _unrolled(10, "inductor")),
    "unroll10-inductor-cpp-wrapper": (
        "torch.compile of 10 steps unrolled into one graph, inductor, cpp_wrapper=True",
        _unrolled(10, "inductor", cpp_wrapper=True),
    ),
    "scan-eager": ("epoch = torch._higher_order_ops.scan, not compiled", _scan(None)),
    "scan-inductor": ("epoch = torch._higher_order_ops.scan, torch.compile inductor", _scan("inductor")),
    "scan-inductor-cpp-wrapper": (
        "epoch = torch._higher_order_ops.scan, torch.compile inductor, cpp_wrapper=True",
        _scan("inductor", cpp_wrapper=True),
    ),
    "scan-inductor-cpp-wrapper-max-autotune": (
        'epoch = torch._higher_order_ops.scan, inductor, cpp_wrapper=True, mode "max-autotune-no-cudagraphs"',
        _scan("inductor", "max-autotune-no-cudagraphs", cpp_wrapper=True),
    ),
    "minidl-traced-scan-cpp-wrapper": (
        "minidl's own step traced by make_fx, epoch = scan, inductor, cpp_wrapper=True",
        _minidl_scan(cpp_wrapper=True),
    ),
    "scan-aot_eager": ("epoch = torch._higher_order_ops.scan, torch.compile aot_eager", _scan("aot_eager")),
    "script-epoch": ("epoch = torch.jit.script of the loop (TorchScript)", _script_epoch),
    "trace-step": ("torch.jit.trace of the step, Python loop", _trace_step),
}
CACHED = (
    "compile-inductor",
    "scan-inductor",
    "scan-inductor-cpp-wrapper",
    "minidl-traced-scan-cpp-wrapper",
)  # rerun with the cache the first (cold) process left


# -- one measurement ----------------------------------------------------------------------------------------


def _data(dtype: torch.dtype):
    from benchmarks.cases import disk_data

    x, y, x_test, y_test = (t.to(dtype) if t.is_floating_point() else t for t in disk_data())
    return x, y, x_test, y_test


def _initial(dtype: torch.dtype) -> list[Tensor]:
    from benchmarks.cases import SEED_HIDDEN, minidl_model

    model = minidl_model(2, SEED_HIDDEN, 1)
    return [v.detach().clone().to(dtype) for v in model.state_dict().values()]


def _minidl(params: list[Tensor]):
    """minidl's model, loss and optimizer holding a copy of ``params``; a run_epoch over them."""
    from benchmarks.cases import SEED_HIDDEN, minidl_model
    from minidl.nn import MSELoss
    from minidl.optim import SGD

    model = minidl_model(2, SEED_HIDDEN, 1).to(dtype=params[0].dtype)
    model.load_state_dict(dict(zip(model.state_dict(), params, strict=True)))
    loss_fn, optimizer = MSELoss(), SGD(model.parameters(), lr=LR)

    def run_epoch(_, xe, te):
        total = torch.zeros((), dtype=xe.dtype)
        with torch.inference_mode():
            for xb, tb in zip(xe.split(1), te.split(1), strict=True):
                total += loss_fn(model(xb), tb)
                optimizer.zero_grad()
                model.backward_parameters(loss_fn.backward())
                optimizer.step()
        return total

    return model, run_epoch


def _epochs(x: Tensor, y: Tensor, count: int):
    """The epochs' shuffled (x, targets), in minidl's DataLoader order (seed 0, as the Trainer)."""
    from minidl.data import DataLoader

    loader = DataLoader(x, y.to(x.dtype).unsqueeze(1), len(x), shuffle=True, seed=SEED)
    return [next(iter(loader)) for _ in range(count)]


def _rel(a: list[Tensor], b: list[Tensor]) -> float:
    return max(((p - q).abs().max() / q.abs().max()).item() for p, q in zip(a, b, strict=True))


def _accuracy(params: list[Tensor], x: Tensor, y: Tensor) -> float:
    h = x
    for i in range(0, 6, 2):
        h = torch.addmm(params[i + 1], h, params[i].t())
        h = h.tanh() if i == 2 else h.relu()
    out = torch.addmm(params[7], h, params[6].t())
    return ((out.squeeze(1) > 0.5).long() == y).double().mean().item()


def _jax_epoch():
    """JAX's whole-epoch ``lax.scan`` of the same experiment (benchmarks/jax_cases.py), or None without JAX:
    ``run(xe, te)`` trains its own copy of the initial weights one epoch further and waits for the result."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return None
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"  # 1 thread, as torch here
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    import jax

    from benchmarks import jax_cases
    from benchmarks.cases import SEED_HIDDEN, minidl_model
    from minidl.nn import parse_hidden

    case = {"activations": [a for _, a in parse_hidden(SEED_HIDDEN)], "loss": "mse", "optimizer": "sgd"}
    case.update(lr=LR, batch_size=1, threshold=0.5)
    run_epoch, init, _ = jax_cases.make_epoch("scan", case, 1000)
    params = jax_cases.params_from_state_dict(minidl_model(2, SEED_HIDDEN, 1).state_dict())
    carry = [(params, init(params))]

    def run(xe: Tensor, te: Tensor) -> None:
        carry[0], total = run_epoch(carry[0], xe.numpy(), te.numpy())
        jax.block_until_ready((carry[0], total))

    return run


def measure_one(name: str, epochs: int, dtypes: list[str], pair_jax: bool = False) -> dict:
    torch.set_num_threads(1)
    result: dict = {"variant": name, "describe": VARIANTS[name][0], "torch": torch.__version__}
    build = VARIANTS[name][1]
    start = time.perf_counter()
    run_epoch = build()
    result["build_s"] = time.perf_counter() - start
    for dtype_name in dtypes:  # equality after one epoch, against the explicit eager step and minidl's layers
        dtype = getattr(torch, dtype_name)
        x, y, _, _ = _data(dtype)
        (xe, te), *_ = _epochs(x, y, 1)
        params = _initial(dtype)
        start = time.perf_counter()
        with torch.inference_mode():
            run_epoch(params, xe, te)
        if dtype_name == dtypes[0]:
            result["first_epoch_s"] = time.perf_counter() - start  # capture + compilation + one epoch
        eager = _initial(dtype)
        with torch.inference_mode():
            _python_loop(step_inplace)(eager, xe, te)
        model, minidl_epoch = _minidl(_initial(dtype))
        minidl_epoch(None, xe, te)
        ours = [v.detach() for v in model.state_dict().values()]
        result[f"rel_vs_eager_step_{dtype_name}"] = _rel(params, eager)
        result[f"rel_vs_minidl_{dtype_name}"] = _rel(params, ours)
        result[f"eager_step_vs_minidl_{dtype_name}"] = _rel(eager, ours)
    # timing: alternate epoch by epoch with minidl's eager step, each on its own weights
    x, y, x_test, y_test = _data(torch.float32)
    batches = _epochs(x, y, epochs)
    params = _initial(torch.float32)
    model, minidl_epoch = _minidl(_initial(torch.float32))
    minidl_epoch(None, *batches[0])  # warm-up on a throwaway copy, as every framework in benchmarks/
    model, minidl_epoch = _minidl(_initial(torch.float32))
    jax_epoch = _jax_epoch() if pair_jax else None
    if jax_epoch is not None:
        jax_epoch(*batches[0])  # compiles on its own first epoch; its weights then run one epoch ahead
    ours, theirs, jax_times = [], [], []
    for xe, te in batches:
        start = time.perf_counter()
        with torch.inference_mode():
            run_epoch(params, xe, te)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        minidl_epoch(None, xe, te)
        theirs.append(time.perf_counter() - start)
        if jax_epoch is not None:  # the third of each triple: JAX's lax.scan epoch, same data and order
            start = time.perf_counter()
            jax_epoch(xe, te)
            jax_times.append(time.perf_counter() - start)
    if jax_times:
        result.update(
            jax_scan_epoch_ms=statistics.median(jax_times) * 1e3,
            ratio_vs_jax_scan=statistics.median(a / b for a, b in zip(ours, jax_times, strict=True)),
        )
    result.update(
        epochs=epochs,
        epoch_ms=statistics.median(ours) * 1e3,
        minidl_epoch_ms=statistics.median(theirs) * 1e3,
        speedup_vs_minidl=statistics.median(b / a for a, b in zip(ours, theirs, strict=True)),
        total_s=sum(ours),
        minidl_total_s=sum(theirs),
        test_accuracy=_accuracy(params, x_test, y_test),
        minidl_test_accuracy=_accuracy([v.detach() for v in model.state_dict().values()], x_test, y_test),
    )
    return result


# -- the driver ---------------------------------------------------------------------------------------------


def run_variant(name: str, epochs: int, dtypes: str, cache: str, timeout: float, pair_jax: bool = False) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    command = [sys.executable, "-m", "benchmarks.compile_study", "--one", name, "--epochs", str(epochs)]
    command += ["--dtypes", dtypes] + (["--pair-jax"] if pair_jax else [])
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"variant": name, "describe": VARIANTS[name][0], "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"variant": name, "describe": VARIANTS[name][0], "error": " / ".join(tail)[-600:]}
    result = json.loads(lines[-1].removeprefix("RESULT "))
    result["process_s"] = time.perf_counter() - start
    result["stderr_lines"] = len(done.stderr.splitlines())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="measure ways of compiling minidl's seed-experiment step")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names (default: all)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--dtypes", default="float32,float64", help="equality checks after one epoch")
    parser.add_argument("--timeout", type=float, default=420, help="seconds per measurement process")
    parser.add_argument("--one", default=None, help="run one variant in this process and print RESULT {json}")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "compile_study"))
    parser.add_argument("--append", action="store_true", help="keep the other variants' rows of the --out file")
    parser.add_argument("--pair-jax", action="store_true", help="alternate each epoch with JAX's lax.scan too")
    args = parser.parse_args()
    dtypes = [d for d in args.dtypes.split(",") if d]
    if args.one:
        try:
            result = measure_one(args.one, args.epochs, dtypes, args.pair_jax)
        except Exception as error:  # a variant that fails is a result: say how
            traceback.print_exc()
            result = {"variant": args.one, "describe": VARIANTS[args.one][0], "error": _short(error)}
        print("RESULT " + json.dumps(result), flush=True)
        return
    names = [n for n in args.variants.split(",") if n]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            cache = os.path.join(folder, name)
            result = run_variant(name, args.epochs, args.dtypes, cache, args.timeout, args.pair_jax)
            results.append(result)
            print(_line(result), flush=True)
            if name in CACHED and "error" not in result:  # the same compilation again, from the disk cache
                again = run_variant(name, args.epochs, args.dtypes.split(",")[0], cache, args.timeout, args.pair_jax)
                again["variant"] = f"{name} (cached)"
                results.append(again)
                print(_line(again), flush=True)
    out = Path(args.out)
    if args.append and out.with_suffix(".json").exists():
        measured = {r["variant"] for r in results}
        kept = json.loads(out.with_suffix(".json").read_text())["results"]
        results = [r for r in kept if r["variant"] not in measured] + results
    data = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "torch": torch.__version__, "results": results}
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    out.with_suffix(".md").write_text(report(data))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().splitlines()
    return " ".join(text[:3])[:600]


def _line(r: dict) -> str:
    if "error" in r:
        return f"{r['variant']:40s} FAILED: {r['error'][:200]}"
    return (
        f"{r['variant']:40s} first epoch {r['first_epoch_s']:7.2f} s, {r['epoch_ms']:7.2f} ms/epoch "
        f"(minidl {r['minidl_epoch_ms']:.1f}; x{r['speedup_vs_minidl']:.2f}), "
        f"rel f32 {r.get('rel_vs_minidl_float32', float('nan')):.1e} "
        f"f64 {r.get('rel_vs_minidl_float64', float('nan')):.1e}"
    )


def report(data: dict) -> str:
    lines = [
        "# Compiled-path study: the seed experiment's step, compiled several ways",
        "",
        f"`python -m benchmarks.compile_study` ({data['date']}, torch {data['torch']}, 1 thread). "
        "Noisy shared machine: the per-epoch times alternate epoch by epoch with minidl's eager step in the "
        "same process; read the ratio, not the absolute numbers. First epoch = capture + compilation + one "
        'epoch, in a fresh process with an empty inductor cache ("cached": a second process reusing it). '
        "Equality: the largest normwise relative difference max|a−b|/max|b| over the 8 weight tensors after "
        "one epoch against minidl's eager layers (targets: 1e-5 in float32, 1e-10 in float64). With "
        "`--pair-jax`, JAX's whole-epoch `lax.scan` is the third of each alternating triple. Rows kept by "
        "`--append` come from earlier runs; the date is the last run's.",
        "",
        "| variant | works | first epoch s | ms/epoch | minidl eager ms/epoch | speed-up vs minidl "
        "| 50 epochs incl. compile s (minidl eager) | rel. diff f32 | rel. diff f64 | test acc (minidl) "
        "| ms/epoch ÷ JAX scan's (paired) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        if "error" in r:
            lines.append(f"| {r['variant']}: {r['describe']} | **no**: {r['error']} | | | | | | | | | |")
            continue
        f64 = r.get("rel_vs_minidl_float64")
        jax = f"{r['ratio_vs_jax_scan']:.2f} (JAX {r['jax_scan_epoch_ms']:.2f} ms)" if "ratio_vs_jax_scan" in r else ""
        # 50 epochs: the first (with compilation) + 49 at the median; minidl's eager: 50 at its median
        total = r["first_epoch_s"] + 49 * r["epoch_ms"] / 1e3
        theirs = 50 * r["minidl_epoch_ms"] / 1e3
        lines.append(
            f"| {r['variant']}: {r['describe']} | yes | {r['first_epoch_s']:.2f} | {r['epoch_ms']:.2f} "
            f"| {r['minidl_epoch_ms']:.1f} | {r['speedup_vs_minidl']:.2f}× | {total:.2f} ({theirs:.2f}) "
            f"| {r['rel_vs_minidl_float32']:.1e} | {'' if f64 is None else f'{f64:.1e}'} "
            f"| {r['test_accuracy']:.3f} ({r['minidl_test_accuracy']:.3f}) | {jax} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
