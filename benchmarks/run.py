"""minidl against torch.nn + autograd + torch.optim (and JAX in cases 1-2); writes benchmarks/results.{md,json}.

Run from the repository root (either form)::

    .venv/bin/python -m benchmarks.run              # every case, full size (a few minutes)
    .venv/bin/python benchmarks/run.py --cases 1,2  # some cases; the other rows of results.md are kept
    .venv/bin/python -m benchmarks.run --quick      # smoke run, written to benchmarks/results-quick.*

Method. Every measurement runs in a fresh Python process (benchmarks/cases.py), so its peak resident set
size (``ru_maxrss``) belongs to that measurement only: tracemalloc would not see torch's C++ allocations.
The frameworks alternate (A B A B …); each time is the median over the repetitions, each speed-up the median of the
ratios within a repetition (adjacent runs, so that load which drifts over minutes cancels). Both frameworks
start from minidl's initial weights (saved once here, loaded by each process), see the same data tensors
and the same batches in the same order. Small cases run with ``torch.set_num_threads(1)``; the
compute-bound case 3 keeps torch's default thread count. Timings exclude process start, imports and data
generation. Cases 1 and 2 also run JAX (a per-sample ``jax.jit`` step and a whole-epoch ``lax.scan``,
benchmarks/jax_cases.py) when it is installed (``pip install -e '.[bench]'``; otherwise those columns say
so and the rest runs as before), and "minidl compiled" (``Trainer(compile=True)``, minidl.train.compiled;
a cold inductor compilation of 10-40 s per measurement, reported apart).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as `python benchmarks/run.py`
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.report import write_report  # noqa: E402

# part -> what it measures; a case is one or more parts (case 4 = batch sizes 1 and 1024)
PARTS = {
    "1": dict(
        case=1,
        title="seed MLP 2-25-25-25-1, MSE, SGD lr 0.01, batch 1, 50 epochs (50,000 steps)",
        metric="seconds",
        unit="s",
        reps=3,
        threads=1,
        frameworks=("minidl", "minidl-loop", "minidl-compiled", "torch", "jax-jit", "jax-scan"),
        arch=(2, "25:relu,25:tanh,25:relu", 1),
    ),
    "2": dict(
        case=2,
        title="seed MLP, BCE-with-logits, Adam lr 0.01, batch 32, 50 epochs (1,600 steps)",
        metric="seconds",
        unit="s",
        reps=5,
        threads=1,
        frameworks=("minidl", "minidl-loop", "minidl-compiled", "torch", "jax-jit", "jax-scan"),
        arch=(2, "25:relu,25:tanh,25:relu", 1),
    ),
    "3": dict(
        case=3,
        title="MLP 784-1024-1024-10 float32, cross-entropy, SGD, batch 512: time per step",
        metric="step_ms",
        unit="ms/step",
        reps=5,
        threads=0,
        frameworks=("minidl", "torch"),
        arch=(784, "1024:relu,1024:relu", 10),
    ),
    "4a": dict(
        case=4,
        title="seed MLP inference, batch 1 (eval mode; torch under no_grad)",
        metric="samples_per_s",
        unit="samples/s",
        reps=7,
        threads=1,
        frameworks=("minidl", "torch"),
        arch=(2, "25:relu,25:tanh,25:relu", 1),
    ),
    "4b": dict(
        case=4,
        title="seed MLP inference, batch 1024 (eval mode; torch under no_grad)",
        metric="samples_per_s",
        unit="samples/s",
        reps=7,
        threads=1,
        frameworks=("minidl", "torch"),
        arch=(2, "25:relu,25:tanh,25:relu", 1),
    ),
}
HIGHER_IS_BETTER = {"samples_per_s"}
# columns that may be skipped (JAX not installed; a step Trainer(compile=True) cannot capture); the case still runs
OPTIONAL = {"minidl-compiled", "jax-jit", "jax-scan"}


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_default_threads": torch.get_num_threads(),
    }


def save_weights(arch: tuple[int, str, int], folder: str) -> str:
    """minidl's initial weights for this architecture (seed 0), saved once for both frameworks."""
    from benchmarks.cases import minidl_model

    path = os.path.join(folder, f"weights-{arch[0]}-{arch[1].replace(':', '_').replace(',', '-')}.pt")
    if not os.path.exists(path):
        torch.save(dict(minidl_model(*arch).state_dict()), path)
    return path


def measure(part: str, framework: str, weights: str, threads: int, quick: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.cases", part, framework, weights, "--threads", str(threads)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def run_part(part: str, weights: str, quick: bool, reps: int | None) -> dict:
    spec = PARTS[part]
    reps = reps or (1 if quick else spec["reps"])
    runs: dict[str, list[dict]] = {fw: [] for fw in spec["frameworks"]}
    skipped: dict[str, str] = {}
    for rep in range(reps):
        for framework in spec["frameworks"]:  # alternate: A B A B …
            if framework in skipped:
                continue
            result = measure(part, framework, weights, spec["threads"], quick)
            if "skipped" in result:
                print(f"  case {part} {framework}: skipped ({result['skipped']})", flush=True)
                if framework not in OPTIONAL:
                    return {**_public(spec), "skipped": result["skipped"], "date": _now(), "quick": quick}
                skipped[framework] = result["skipped"]
                del runs[framework]
                continue
            runs[framework].append(result)
            print(
                f"  case {part} rep {rep + 1}/{reps} {framework:12s} {result[spec['metric']]:12.4g} {spec['unit']}",
                flush=True,
            )
    summary = {fw: _summarise(rs, spec["metric"]) for fw, rs in runs.items()}
    higher = spec["metric"] in HIGHER_IS_BETTER
    theirs = summary["torch"]
    for s in summary.values():
        # paired: the ratio within each repetition (adjacent runs), then the median, which cancels load that
        # drifts slower than one A B pair; the ratio of the medians is kept too
        pairs = [a / b if higher else b / a for a, b in zip(s["all"], theirs["all"], strict=True)]
        s["speedup_vs_torch"] = statistics.median(pairs)
        s["speedup_of_medians"] = s["median"] / theirs["median"] if higher else theirs["median"] / s["median"]
    result = {**_public(spec), "reps": reps, "quick": quick, "date": _now(), "summary": summary, "runs": runs}
    if skipped:
        result["skipped_frameworks"] = skipped
    if part == "3":  # both in one process, alternating step by step: robust to load bursts on a shared machine
        paired = measure(part, "paired", weights, spec["threads"], quick)
        result["paired"] = paired
        print(f"  case 3 paired in one process: minidl/torch = {paired['ratio_minidl_over_torch']:.3f}", flush=True)
    return result


def _summarise(results: list[dict], metric: str) -> dict:
    out = {
        "median": statistics.median(r[metric] for r in results),
        "all": [r[metric] for r in results],
        "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in results),
        "setup_rss_mib": statistics.median(r["setup_rss_mib"] for r in results),
        "threads": results[0]["threads"],
    }
    if "test_accuracy" in results[0]:
        out["test_accuracy"] = statistics.median(r["test_accuracy"] for r in results)
        out["steps"] = results[0]["steps"]
        if "epochs" in results[0]:
            out["epochs"] = results[0]["epochs"]
    if "warmup_seconds" in results[0]:  # JAX: compilation + one epoch, before the clock starts
        out["warmup_seconds"] = statistics.median(r["warmup_seconds"] for r in results)
    return out


def _public(spec: dict) -> dict:
    return {k: spec[k] for k in ("case", "title", "metric", "unit")}


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(description="minidl vs torch.nn benchmarks (writes results.md and .json)")
    parser.add_argument("--cases", default="1,2,3,4", help="comma-separated case numbers (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 epochs, few steps, one repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per framework (default per case)")
    parser.add_argument("--out", default=None, help="output prefix (default benchmarks/results[-quick])")
    args = parser.parse_args()
    cases = {int(c) for c in args.cases.split(",") if c.strip()}
    unknown = cases - {spec["case"] for spec in PARTS.values()}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; choose from 1, 2, 3, 4")
    prefix = Path(args.out or ROOT / "benchmarks" / ("results-quick" if args.quick else "results"))
    json_path = prefix.with_suffix(".json")
    previous = json.loads(json_path.read_text()) if json_path.exists() else {}
    parts = dict(previous.get("parts", {}))
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}", flush=True)
    command = "python -m benchmarks.run" + (" --quick" if args.quick else "")
    with tempfile.TemporaryDirectory() as folder:
        for part, spec in PARTS.items():
            if spec["case"] in cases:
                print(f"case {part}: {spec['title']}", flush=True)
                parts[part] = run_part(part, save_weights(spec["arch"], folder), args.quick, args.reps)
                parts[part]["machine"] = info
                write(
                    prefix, {"machine": info, "command": command, "parts": {p: parts[p] for p in PARTS if p in parts}}
                )
    print(f"wrote {prefix.with_suffix('.md')} and {json_path}")


def write(prefix: Path, data: dict) -> None:
    """Written after every case, so an interrupted run keeps what it measured."""
    prefix.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    prefix.with_suffix(".md").write_text(write_report(data))


if __name__ == "__main__":
    main()
