"""Every tensor operation of one eager training step of benchmark case 1, and its cost (torch.profiler).

    .venv/bin/python -m benchmarks.profile_step            # markdown table on stdout
    .venv/bin/python -m benchmarks.profile_step --steps 2000

The step is the Trainer's (``Trainer._train_step``, written out here so that the phases can be labelled):
under ``torch.inference_mode()``, ``loss_fn(model(x), t)``, ``optimizer.zero_grad()``,
``model.backward_parameters(loss_fn.backward())``, ``optimizer.step()``, on the seed MLP with MSE, SGD lr
0.01 and batch 1, one thread. The profiler's per-op self CPU time includes its own recording overhead (a
few µs per op), so the table's sum exceeds the unprofiled step time printed above it; read the counts as
exact and the times as relative.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile, record_function

PHASES = ("forward", "loss", "zero_grad", "backward", "step")


def build():
    from benchmarks.cases import SEED_HIDDEN, disk_data, minidl_model
    from minidl.nn import MSELoss
    from minidl.optim import SGD

    model = minidl_model(2, SEED_HIDDEN, 1)
    loss_fn, optimizer = MSELoss(), SGD(model.parameters(), lr=0.01)
    x, y, _, _ = disk_data()
    return model, loss_fn, optimizer, list(zip(x.split(1), y.to(x.dtype).unsqueeze(1).split(1), strict=True))


def timed_phases(model, loss_fn, optimizer, xb, tb) -> list[float]:
    """The same step with a clock read between the phases (no profiler): seconds per phase."""
    t0 = time.perf_counter()
    out = model(xb)
    t1 = time.perf_counter()
    value = loss_fn(out, tb)
    t2 = time.perf_counter()
    optimizer.zero_grad()
    t3 = time.perf_counter()
    model.backward_parameters(loss_fn.backward())
    t4 = time.perf_counter()
    optimizer.step()
    t5 = time.perf_counter()
    del value
    return [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]


def step(model, loss_fn, optimizer, xb, tb, label: bool):
    if not label:
        value = loss_fn(model(xb), tb)
        optimizer.zero_grad()
        model.backward_parameters(loss_fn.backward())
        optimizer.step()
        return value
    with record_function("forward"):
        out = model(xb)
    with record_function("loss"):
        value = loss_fn(out, tb)
    with record_function("zero_grad"):
        optimizer.zero_grad()
    with record_function("backward"):
        model.backward_parameters(loss_fn.backward())
    with record_function("step"):
        optimizer.step()
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description="profile one eager step of benchmark case 1")
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, loss_fn, optimizer, batches = build()
    with torch.inference_mode():
        for xb, tb in batches[:200]:  # warm-up
            step(model, loss_fn, optimizer, xb, tb, label=False)
        times = []
        for i in range(args.steps):  # unprofiled: the real cost of a step
            xb, tb = batches[i % len(batches)]
            start = time.perf_counter()
            step(model, loss_fn, optimizer, xb, tb, label=False)
            times.append(time.perf_counter() - start)
        phases = [timed_phases(model, loss_fn, optimizer, *batches[i % len(batches)]) for i in range(args.steps)]
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for i in range(args.steps):
                xb, tb = batches[i % len(batches)]
                step(model, loss_fn, optimizer, xb, tb, label=True)
    # each aten op attributed to its phase: walk the events, the phase = the enclosing record_function
    events = prof.events()
    phase_ranges = [(e.name, e.time_range.start, e.time_range.end) for e in events if e.name in PHASES]
    phase_ranges.sort(key=lambda r: r[1])
    starts = [r[1] for r in phase_ranges]
    import bisect

    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.name in PHASES or not e.name.startswith("aten::"):
            continue
        if e.cpu_parent is not None and e.cpu_parent.name.startswith("aten::"):
            continue  # a nested call of another op (addmm -> mm): counted in its parent's time
        i = bisect.bisect_right(starts, e.time_range.start) - 1
        phase = phase_ranges[i][0] if i >= 0 and e.time_range.end <= phase_ranges[i][2] else "?"
        rows[(phase, e.name)].append(e.cpu_time_total)
    n = args.steps
    print(
        f"Unprofiled step: median {statistics.median(times) * 1e6:.1f} µs "
        f"(torch {torch.__version__}, 1 thread, {n} steps)\n"
    )
    print("| phase | op | calls/step | µs/call (median, incl. profiler) | µs/step (median × calls) |")
    print("|---|---|---|---|---|")
    total_ops = 0
    for phase in (*PHASES, "?"):
        for (p, name), durations in sorted(rows.items(), key=lambda kv: -sum(kv[1])):
            if p != phase:
                continue
            calls = len(durations) / n
            total_ops += calls
            print(
                f"| {phase} | `{name.removeprefix('aten::')}` | {calls:g} | {statistics.median(durations):.1f} "
                f"| {statistics.median(durations) * calls:.1f} |"
            )
    print(f"\nTop-level aten ops per step: {total_ops:g}")
    medians = [statistics.median(column) * 1e6 for column in zip(*phases, strict=True)]
    print("Phases, unprofiled (median µs): " + ", ".join(f"{p} {m:.1f}" for p, m in zip(PHASES, medians, strict=True)))


if __name__ == "__main__":
    main()
