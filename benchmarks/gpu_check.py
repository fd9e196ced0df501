"""GPU check: minidl on CUDA computes what it computes on the CPU. Not part of CI; run where a GPU is.

    python benchmarks/gpu_check.py                 # cuda vs cpu; prints one verdict line at the end
    python benchmarks/gpu_check.py --device cpu --quick   # a dry run of this script (cpu vs cpu)

Three parts, each in float64 (tolerance 1e-9 relative to the largest magnitude, training included) and
float32 (looser: 1e-4 for one layer, 5e-3 after training). float32 rounding differs between cuBLAS and the
CPU kernels and training compounds it: on the CPU, perturbing the float32 inputs by one ulp moves the final
weights by 2e-6 (seed experiment) and 4e-5 (large MLP with Adam), and float32 against float64 differs by
3e-6 and 3e-2; float64 perturbed by one ulp moves them by 3e-15 (seed experiment).
  1. every layer and loss that exists: forward output, grad_input and parameter grads, same inputs;
  2. the seed experiment (disk data, 2-25-25-25-1, MSE, SGD lr 0.01, batch size 1, --seed-epochs epochs);
  3. a 784-1024-1024-10 MLP on random data, --big-steps steps (cross-entropy and Adam if minidl has them).
Training starts from the same initial weights, sees the same batches, and the final weights are compared.
The last line is ``GPU CHECK: PASS ...``, ``GPU CHECK: FAIL ...`` or ``GPU CHECK: SKIP (no CUDA device)``;
the exit code is 0 unless it fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

try:
    import minidl  # noqa: F401
except ImportError:  # run from a checkout with any Python that has torch
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import minidl.nn as mnn
import minidl.optim as mopt
from minidl.data import DataLoader, Standardizer, disk

TOLERANCE = {  # (one layer, after training), relative to the largest magnitude compared
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-4, 5e-3),
}
results: list[tuple[str, float, float]] = []  # (name, relative difference, tolerance)


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    if a.shape != b.shape:
        return float("inf")
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30) if a.numel() else 1.0
    return (a - b).abs().max().item() / scale if a.numel() else 0.0


def record(name: str, diff: float, tol: float, extra: str = "") -> None:
    results.append((name, diff, tol))
    status = "ok  " if diff <= tol else "FAIL"
    print(f"{status} {name:<44} rel diff {diff:.2e} (tol {tol:.0e}){extra}", flush=True)


# -- 1. layers and losses ---------------------------------------------------------------------------------
def _layers() -> list[tuple[str, Callable[[], mnn.Module], str]]:
    """(name, factory, input kind); only what this minidl has."""
    table = [
        ("Linear", lambda: mnn.Linear(64, 32), "x"),
        ("ReLU", lambda: mnn.ReLU(), "x"),
        ("LeakyReLU", lambda: mnn.LeakyReLU(0.1), "x"),
        ("ELU", lambda: mnn.ELU(), "x"),
        ("Tanh", lambda: mnn.Tanh(), "x"),
        ("Sigmoid", lambda: mnn.Sigmoid(), "x"),
        ("GELU", lambda: mnn.GELU(), "x"),
        ("SiLU", lambda: mnn.SiLU(), "x"),
        ("Softplus", lambda: mnn.Softplus(), "x"),
        ("Softmax", lambda: mnn.Softmax(dim=1), "x"),
        ("LogSoftmax", lambda: mnn.LogSoftmax(dim=1), "x"),
        ("BatchNorm1d", lambda: mnn.BatchNorm1d(64), "x"),
        ("MSELoss", lambda: mnn.MSELoss(), "regression"),
        ("L1Loss", lambda: mnn.L1Loss(), "regression"),
        ("HuberLoss", lambda: mnn.HuberLoss(), "regression"),
        ("BCELoss", lambda: mnn.BCELoss(), "probability"),
        ("BCEWithLogitsLoss", lambda: mnn.BCEWithLogitsLoss(), "binary"),
        ("CrossEntropyLoss", lambda: mnn.CrossEntropyLoss(), "classes"),
    ]
    return [row for row in table if hasattr(mnn, row[0])]


def _run_layer(factory: Callable[[], mnn.Module], kind: str, device: torch.device, dtype: torch.dtype):
    torch.manual_seed(0)
    layer = factory().to(device=device, dtype=dtype)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(128, 64, generator=gen, dtype=torch.float64)
    if kind == "probability":
        x = torch.sigmoid(x)
    x = x.to(device=device, dtype=dtype)
    if kind == "x":
        out = layer(x)
        grad_output = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
        grad_input = layer.backward(grad_output)
    else:
        if kind == "classes":
            target = torch.randint(0, 64, (128,), generator=gen).to(device)
        elif kind == "regression":
            target = torch.randn(128, 64, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
        else:
            target = torch.rand(128, 64, generator=gen, dtype=torch.float64).round().to(device=device, dtype=dtype)
        out = layer(x, target)
        grad_input = layer.backward()
    grads = [p.grad for p in layer.parameters()]
    buffers = [b for _, b in layer.named_buffers()]
    return [out, grad_input, *grads, *buffers]


def check_layers(device: torch.device) -> None:
    for dtype in (torch.float64, torch.float32):
        for name, factory, kind in _layers():
            on_device = _run_layer(factory, kind, device, dtype)
            on_cpu = _run_layer(factory, kind, torch.device("cpu"), dtype)
            diff = max(rel_diff(a, b) for a, b in zip(on_device, on_cpu, strict=True))
            record(f"layer {name} {str(dtype)[6:]}", diff, TOLERANCE[dtype][0])


# -- 2 and 3. training ------------------------------------------------------------------------------------
def train(build, data, loss_fn, make_optimizer, *, steps, batch_size, device, dtype):
    """Train from the seed-0 weights; returns the final parameters (on the CPU) and the seconds taken."""
    torch.manual_seed(0)
    model = build().to(device=device, dtype=dtype)
    optimizer = make_optimizer(model.parameters())
    x, t = data
    x = x.to(device=device, dtype=dtype)
    t = t.to(device) if not t.is_floating_point() else t.to(device=device, dtype=dtype)
    loader = DataLoader(x, t, batch_size, shuffle=True, seed=0)
    done = 0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        while done < steps:
            for xb, tb in loader:
                loss_fn(model(xb), tb)
                optimizer.zero_grad()
                model.backward(loss_fn.backward())
                optimizer.step()
                done += 1
                if done == steps:
                    break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return [p.data.detach().cpu() for p in model.parameters()], seconds, model


def compare_training(name, device, **kwargs) -> None:
    """float64: the device and the CPU agree within 1e-9. float32: rounding differs between cuBLAS and the
    CPU and training compounds it (Adam amplifies tiny gradients), so the verdict asks that the device's
    float32 weights be no further from the float64 CPU answer than the CPU's own float32 weights are (×2),
    or within the fixed float32 tolerance."""
    ref64 = None
    for dtype in (torch.float64, torch.float32):
        ours, t_dev, _ = train(device=device, dtype=dtype, **kwargs)
        ref, t_cpu, _ = train(device=torch.device("cpu"), dtype=dtype, **kwargs)
        diff = max(rel_diff(a, b) for a, b in zip(ours, ref, strict=True))
        extra = f"  [{device.type} {t_dev:.1f}s, cpu {t_cpu:.1f}s]"
        if ref64 is None:
            ref64 = ref
            record(f"train {name} {str(dtype)[6:]}", diff, TOLERANCE[dtype][1], extra)
            continue
        cpu_error = max(rel_diff(a, b) for a, b in zip(ref, ref64, strict=True))
        device_error = max(rel_diff(a, b) for a, b in zip(ours, ref64, strict=True))
        extra += f"  (vs float64: {device.type} {device_error:.1e}, cpu {cpu_error:.1e})"
        tol = max(TOLERANCE[dtype][1], 2 * cpu_error)
        record(f"train {name} {str(dtype)[6:]}", min(diff, device_error), tol, extra)


def seed_experiment(device: torch.device, epochs: int, n: int) -> None:
    x, labels = disk(n, seed=0, dtype=torch.float64)
    x = Standardizer().fit(x)(x)

    def build() -> mnn.Module:
        return mnn.Sequential(
            mnn.Linear(2, 25), mnn.ReLU(), mnn.Linear(25, 25), mnn.Tanh(), mnn.Linear(25, 25), mnn.ReLU(),
            mnn.Linear(25, 1),
        )  # fmt: skip

    compare_training(
        f"seed experiment ({epochs} epochs, batch 1)",
        device,
        build=build,
        data=(x, labels.double().unsqueeze(1)),
        loss_fn=mnn.MSELoss(),
        make_optimizer=lambda params: mopt.SGD(params, lr=0.01),
        steps=epochs * n,
        batch_size=1,
    )


def big_mlp(device: torch.device, steps: int, width: int) -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2048, 784, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 10, (2048,), generator=gen)
    if hasattr(mnn, "CrossEntropyLoss"):
        loss_fn, target = mnn.CrossEntropyLoss(), labels
    else:
        loss_fn, target = mnn.MSELoss(), torch.eye(10, dtype=torch.float64)[labels]
    if hasattr(mopt, "Adam"):
        optimizer, label = (lambda params: mopt.Adam(params, lr=1e-4)), "Adam"
    else:
        optimizer, label = (lambda params: mopt.SGD(params, lr=0.01, momentum=0.9)), "SGD"

    def build() -> mnn.Module:
        return mnn.Sequential(mnn.Linear(784, width), mnn.ReLU(), mnn.Linear(width, width), mnn.ReLU(),
                              mnn.Linear(width, 10))  # fmt: skip

    compare_training(
        f"784-{width}-{width}-10 {type(loss_fn).__name__} {label} ({steps} steps)",
        device,
        build=build,
        data=(x, target),
        loss_fn=loss_fn,
        make_optimizer=optimizer,
        steps=steps,
        batch_size=64,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to check against the CPU (default cuda)")
    parser.add_argument("--seed-epochs", type=int, default=5, help="epochs of the seed experiment (default 5)")
    parser.add_argument("--big-steps", type=int, default=300, help="steps of the large MLP (default 300)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a dry run of this script")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("GPU CHECK: SKIP (no CUDA device)")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    print(f"minidl GPU check: {device} ({name}) against cpu, torch {torch.__version__}", flush=True)
    start = time.perf_counter()
    check_layers(device)
    seed_experiment(device, 1 if args.quick else args.seed_epochs, 100 if args.quick else 1000)
    big_mlp(device, 5 if args.quick else args.big_steps, 64 if args.quick else 1024)
    failed = [r for r in results if not r[1] <= r[2]]
    worst64 = max((d for n, d, _ in results if n.endswith("float64")), default=0.0)
    worst32 = max((d for n, d, _ in results if n.endswith("float32")), default=0.0)
    summary = (
        f"{len(results) - len(failed)}/{len(results)} checks on {device} ({name}); worst rel diff "
        f"float64 {worst64:.1e}, float32 {worst32:.1e}; {time.perf_counter() - start:.0f}s"
    )
    if failed:
        print(f"GPU CHECK: FAIL {summary}; failed: {', '.join(n for n, _, _ in failed)}")
        return 1
    print(f"GPU CHECK: PASS {summary}" + (" (dry run: not a GPU)" if device.type != "cuda" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
