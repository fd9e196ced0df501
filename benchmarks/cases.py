"""One benchmark measurement in a fresh process: ``python -m benchmarks.cases CASE FRAMEWORK WEIGHTS``.

``benchmarks/run.py`` starts one such process per case, framework and repetition, so that the peak
resident memory read at the end (``ru_maxrss``) belongs to that one measurement alone. The process prints
one line ``RESULT {json}``. Both frameworks load the same initial weights (minidl's state_dict, saved by
run.py to WEIGHTS), use the same data tensors and the same batches (minidl's seeded DataLoader, which
slices views out of one shuffled copy per epoch), and the same number of threads.

Frameworks: ``minidl`` (cases 1-2: ``minidl.train.Trainer.fit`` under ``torch.no_grad()``, exactly as
``minidl train`` runs it; case 3: the Trainer's step, ``Trainer.train_step``, which is what ``fit`` runs
per batch; case 4: ``model(x)``), ``minidl-loop`` (the loop a user writes: ``model(x)``, loss,
``zero_grad``, ``model.backward(loss.backward())``, ``step``) and ``torch`` (torch.nn + torch.autograd +
torch.optim, written idiomatically); cases 1-2 also ``jax-jit`` and ``jax-scan`` (benchmarks/jax_cases.py:
a per-sample ``jax.jit`` step, and a whole epoch as one ``lax.scan``), which report ``skipped`` when JAX is
not installed (``pip install -e '.[bench]'``); and ``minidl-compiled`` (``Trainer(compile=True)``,
minidl.train.compiled: the whole epoch as one compiled ``scan`` of minidl's traced step).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable

import torch

SEED = 0
SEED_HIDDEN = "25:relu,25:tanh,25:relu"
TEST_SEED = SEED + 1_000_003  # as src/minidl/cli/train.py: the test set never repeats training points
BIG_HIDDEN = "1024:relu,1024:relu"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- models: the same architecture in both frameworks ---------------------------------------------------


def minidl_model(in_features: int, hidden: str, out_features: int):
    import minidl.nn as mnn

    torch.manual_seed(SEED)
    return mnn.mlp(in_features, hidden, out_features)


def torch_model(in_features: int, hidden: str, out_features: int) -> torch.nn.Module:
    import minidl.nn as mnn

    nn = torch.nn
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    layers: list[nn.Module] = []
    width = in_features
    for size, act in mnn.parse_hidden(hidden):
        layers += [nn.Linear(width, size), acts[act]()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, out_features))


def load_weights(model, path: str) -> None:
    model.load_state_dict(torch.load(path, weights_only=True))


# -- cases 1 and 2: full training runs on the disk data ---------------------------------------------------


def disk_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Training and test points, standardised with the training split's statistics (as ``minidl train``)."""
    from minidl.data import Standardizer, disk

    x_train, y_train = disk(1000, seed=SEED)
    x_test, y_test = disk(1000, seed=TEST_SEED)
    scaler = Standardizer().fit(x_train)
    return scaler(x_train), y_train, scaler(x_test), y_test


TRAIN_CASES = {
    # case: (loss, optimizer, batch size, threshold on the single output for class 1)
    1: ("mse", "sgd", 1, 0.5),
    2: ("bce_logits", "adam", 32, 0.0),
}


class Unavailable(Exception):
    """A minidl class the case needs does not exist yet (another helper is writing it)."""


def require(module: str, name: str):
    """``module.name``, imported lazily; Unavailable if it is not there."""
    import importlib

    found = getattr(importlib.import_module(module), name, None)
    if found is None:
        raise Unavailable(f"{module}.{name}")
    return found


def minidl_parts(case: int, model):
    loss, _, _, _ = TRAIN_CASES[case]
    if loss == "mse":
        return require("minidl.nn", "MSELoss")(), require("minidl.optim", "SGD")(model.parameters(), lr=0.01)
    loss_fn = require("minidl.nn", "BCEWithLogitsLoss")()
    return loss_fn, require("minidl.optim", "Adam")(model.parameters(), lr=0.01)


def torch_parts(case: int, model: torch.nn.Module):
    loss, _, _, _ = TRAIN_CASES[case]
    if loss == "mse":
        return torch.nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.01)
    return torch.nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01)


def accuracy(output: torch.Tensor, labels: torch.Tensor, threshold: float) -> float:
    return ((output.squeeze(1) > threshold).long() == labels).double().mean().item()


JAX_FRAMEWORKS = {"jax-jit": "jit", "jax-scan": "scan"}


def jax_case(case: int, framework: str, weights: str, epochs: int) -> dict:
    """The JAX columns: same weights, data and batch order; ``skipped`` when JAX is not installed."""
    import importlib.util

    if importlib.util.find_spec("jax") is None:
        return {"skipped": "JAX is not installed (pip install -e '.[bench]')"}
    import os

    import minidl.nn as mnn

    if torch.get_num_threads() == 1:  # XLA's own thread pool, as torch.set_num_threads(1) for the others
        flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flags}".strip()
    from benchmarks import jax_cases
    from minidl.data import DataLoader

    loss, optimizer, batch_size, threshold = TRAIN_CASES[case]
    x, y, x_test, y_test = disk_data()
    targets = y.to(x.dtype).unsqueeze(1)

    def permutations():
        # minidl's DataLoader with the Trainer's seed; one batch of everything = that epoch's shuffled order
        loader = DataLoader(x, targets, len(x), shuffle=True, seed=SEED)
        while True:
            yield next(iter(loader))

    spec = {
        "activations": [act for _, act in mnn.parse_hidden(SEED_HIDDEN)],
        "loss": loss,
        "optimizer": optimizer,
        "lr": 0.01,
        "batch_size": batch_size,
        "threshold": threshold,
    }
    state = torch.load(weights, weights_only=True)
    result = jax_cases.train(JAX_FRAMEWORKS[framework], spec, state, (x, y, x_test, y_test), epochs, permutations)
    result.update(steps=epochs * -(-len(x) // batch_size), epochs=epochs, setup_rss_mib=peak_rss_mib())
    return result


def compiled_case(case: int, weights: str, epochs: int) -> dict:
    """The "minidl compiled" column: ``minidl.train.Trainer(..., compile=True).fit``, as ``minidl train --compile``.

    The same work per epoch as the minidl column (the Trainer: shuffled batches, summed loss, train accuracy
    after each epoch, under ``torch.no_grad()``). Capture and compilation (cold: an empty inductor cache,
    unless ``TORCHINDUCTOR_CACHE_DIR`` is given) happen in a warm-up ``fit`` of one epoch on a throwaway copy
    of the weights before the clock starts, reported as ``warmup_seconds``, as the JAX columns; the timed
    Trainer finds the compiled epoch in the process's cache. Where the step cannot be captured (Adam's
    state, case 2) the column is skipped with the Trainer's reason.
    """
    import atexit
    import os
    import shutil
    import tempfile

    from minidl.train import Trainer

    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # a cold compilation, as a user's first run
        cache = tempfile.mkdtemp(prefix="minidl-bench-inductor-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    _, _, batch_size, threshold = TRAIN_CASES[case]
    x, y, x_test, y_test = disk_data()
    start = time.perf_counter()
    warm = Trainer(*_minidl_setup(case, weights), compile=True)
    with torch.no_grad():  # as `minidl train`, and as the timed run: the same guards, no recompilation
        warm.fit(x, y, epochs=1, batch_size=batch_size, seed=SEED)
    warmup = time.perf_counter() - start
    if warm._compiled.failed:
        return {"skipped": f"not capturable: {warm._compiled.reason}"}
    model, loss_fn, optimizer = _minidl_setup(case, weights)
    trainer = Trainer(model, loss_fn, optimizer, compile=True)
    setup_rss = peak_rss_mib()
    start = time.perf_counter()
    with torch.no_grad():
        history = trainer.fit(x, y, epochs=epochs, batch_size=batch_size, seed=SEED)
    seconds = time.perf_counter() - start
    assert trainer._compiled.epochs_run == epochs, "an epoch of the timed run did not run compiled"
    model.eval()
    with torch.no_grad():
        test_accuracy = accuracy(model(x_test), y_test, threshold)
    return {
        "seconds": seconds,
        "warmup_seconds": warmup,
        "epoch_ms": seconds / epochs * 1e3,
        "steps": epochs * -(-len(x) // batch_size),
        "epochs": epochs,
        "test_accuracy": test_accuracy,
        "final_loss": history[-1].loss,
        "setup_rss_mib": setup_rss,
    }


def train_case(case: int, framework: str, weights: str, epochs: int) -> dict:
    from minidl.data import DataLoader

    if framework in JAX_FRAMEWORKS:
        return jax_case(case, framework, weights, epochs)
    if framework == "minidl-compiled":
        return compiled_case(case, weights, epochs)
    _, _, batch_size, threshold = TRAIN_CASES[case]
    x, y, x_test, y_test = disk_data()
    targets = y.to(x.dtype).unsqueeze(1)  # what the Trainer feeds both losses: a column of 0/1
    build = _torch_setup if framework == "torch" else _minidl_setup
    warm = build(case, weights)  # a throwaway copy takes the first-call costs (thread pools, kernel choice)
    step = _torch_step if framework == "torch" else _minidl_step
    with torch.no_grad() if framework == "minidl" else torch.enable_grad():
        for xb, tb in zip(x.split(batch_size)[:20], targets.split(batch_size)[:20], strict=True):
            step(*warm, xb, tb)
        if framework == "minidl":
            from minidl.train import Trainer

            Trainer(*warm).fit(x[:64], y[:64], epochs=1, batch_size=batch_size, seed=SEED)
    model, loss_fn, optimizer = build(case, weights)
    setup_rss = peak_rss_mib()
    start = time.perf_counter()
    if framework == "minidl":
        from minidl.train import Trainer

        with torch.no_grad():  # as `minidl train` runs it
            Trainer(model, loss_fn, optimizer).fit(x, y, epochs=epochs, batch_size=batch_size, seed=SEED)
    else:
        # the same work as Trainer.fit: shuffled batches, summed loss, train accuracy after each epoch
        loader = DataLoader(x, targets, batch_size, shuffle=True, seed=SEED)
        for _ in range(epochs):
            model.train()
            total = torch.zeros(())
            for xb, tb in loader:
                total.add_(step(model, loss_fn, optimizer, xb, tb), alpha=len(xb))
            with torch.no_grad():
                model.eval()
                accuracy(model(x), y, threshold)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        test_accuracy = accuracy(model(x_test), y_test, threshold)
    return {
        "seconds": seconds,
        "steps": epochs * -(-len(x) // batch_size),
        "epochs": epochs,
        "test_accuracy": test_accuracy,
        "setup_rss_mib": setup_rss,
    }


def _torch_setup(case: int, weights: str):
    model = torch_model(2, SEED_HIDDEN, 1)
    load_weights(model, weights)
    return (model, *torch_parts(case, model))


def _minidl_setup(case: int, weights: str):
    model = minidl_model(2, SEED_HIDDEN, 1)
    load_weights(model, weights)
    return (model, *minidl_parts(case, model))


def _torch_step(model, loss_fn, optimizer, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
    loss = loss_fn(model(xb), tb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def _minidl_step(model, loss_fn, optimizer, xb: torch.Tensor, tb: torch.Tensor) -> torch.Tensor:
    value = loss_fn(model(xb), tb)
    optimizer.zero_grad()
    model.backward(loss_fn.backward())
    optimizer.step()
    return value


# -- case 3: compute-bound MLP, time per training step --------------------------------------------------


def _big_setup(framework: str, weights: str):
    if framework == "torch":
        model = torch_model(784, BIG_HIDDEN, 10)
        load_weights(model, weights)
        return model, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01), _torch_step
    from minidl.train import Trainer

    loss_fn = require("minidl.nn", "CrossEntropyLoss")()
    model = minidl_model(784, BIG_HIDDEN, 10)
    load_weights(model, weights)
    optimizer = require("minidl.optim", "SGD")(model.parameters(), lr=0.01)
    trainer = Trainer(model, loss_fn, optimizer)  # its step: inference mode, no gradient for the data
    return model, loss_fn, optimizer, lambda model, loss_fn, optimizer, xb, yb: trainer.train_step(xb, yb)[0]


def big_case(framework: str, weights: str, steps: int, warmup: int) -> dict:
    """Median time per step and peak RSS; ``framework="paired"`` runs both in this one process instead,
    alternating step by step, so that load bursts on a shared machine hit both alike (no memory figure)."""
    gen = torch.Generator().manual_seed(SEED)
    batches = [(torch.randn(512, 784, generator=gen), torch.randint(0, 10, (512,), generator=gen)) for _ in range(4)]
    names = ["minidl", "torch"] if framework == "paired" else [framework]
    setups = {name: _big_setup(name, weights) for name in names}
    setup_rss = peak_rss_mib()
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + steps):
        xb, yb = batches[i % len(batches)]
        for name, (model, loss_fn, optimizer, step) in setups.items():
            start = time.perf_counter()
            step(model, loss_fn, optimizer, xb, yb)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    if framework != "paired":
        return {"step_ms": statistics.median(times[framework]) * 1e3, "steps": steps, "setup_rss_mib": setup_rss}
    ratios = [a / b for a, b in zip(times["minidl"], times["torch"], strict=True)]
    return {
        "step_ms": {name: statistics.median(ts) * 1e3 for name, ts in times.items()},
        "ratio_minidl_over_torch": statistics.median(ratios),
        "steps": steps,
        "setup_rss_mib": setup_rss,
    }


# -- case 4: inference throughput of the seed model -----------------------------------------------------


def inference_case(framework: str, weights: str, batch_size: int, samples: int) -> dict:
    gen = torch.Generator().manual_seed(SEED)
    x = torch.randn(max(batch_size, 1024), 2, generator=gen)
    batches = list(x.split(batch_size))
    if framework == "torch":
        model = torch_model(2, SEED_HIDDEN, 1)
        forward: Callable = model
        context = torch.no_grad
    else:
        model = minidl_model(2, SEED_HIDDEN, 1)
        forward, context = model, _nullcontext  # minidl keeps <= 8 eval-mode records per module: no no_grad
    load_weights(model, weights)
    model.eval()
    iterations = max(samples // batch_size, 1)
    with context():
        for i in range(min(iterations, 200)):  # warm-up
            forward(batches[i % len(batches)])
        start = time.perf_counter()
        for i in range(iterations):
            forward(batches[i % len(batches)])
        seconds = time.perf_counter() - start
    return {
        "samples_per_s": iterations * batch_size / seconds,
        "seconds": seconds,
        "batch_size": batch_size,
        "setup_rss_mib": peak_rss_mib(),
    }


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description="run one benchmark measurement (used by benchmarks/run.py)")
    parser.add_argument("case", choices=["1", "2", "3", "4a", "4b"])
    frameworks = ["minidl", "minidl-loop", "minidl-compiled", "torch", "paired", *JAX_FRAMEWORKS]
    parser.add_argument("framework", choices=frameworks)
    parser.add_argument("weights", help="path of the initial state_dict (torch.save of minidl's)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps the default")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        if args.case in ("1", "2"):
            result = train_case(int(args.case), args.framework, args.weights, epochs=5 if args.quick else 50)
        elif args.case == "3":
            result = big_case(
                args.framework, args.weights, steps=5 if args.quick else 30, warmup=2 if args.quick else 5
            )
        else:
            batch = 1 if args.case == "4a" else 1024
            samples = (2_000 if args.quick else 20_000) if batch == 1 else (100 if args.quick else 1000) * 1024
            result = inference_case(args.framework, args.weights, batch, samples)
    except Unavailable as missing:  # a loss or optimizer another helper has not landed yet
        result = {"skipped": f"not yet available: {missing}"}
    result.update(threads=torch.get_num_threads(), peak_rss_mib=peak_rss_mib())
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
