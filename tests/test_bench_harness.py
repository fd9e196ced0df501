"""Smoke tests of the benchmark harness (benchmarks/): the JAX columns and their skipping. No timing asserts."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEED_ARCH = (2, "25:relu,25:tanh,25:relu", 1)


def test_the_harness_does_not_import_jax():
    code = "import sys, benchmarks.run, benchmarks.cases, benchmarks.report; print('jax' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_jax_case_says_skipped_without_jax(tmp_path, monkeypatch):
    from benchmarks import cases, run

    weights = run.save_weights(SEED_ARCH, str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a))
    result = cases.train_case(1, "jax-scan", weights, epochs=1)
    assert result == {"skipped": "JAX is not installed (pip install -e '.[bench]')"}


def _fake(seconds: float) -> dict:
    return {
        "seconds": seconds,
        "steps": 100,
        "epochs": 2,
        "test_accuracy": 0.95,
        "peak_rss_mib": 1,
        "setup_rss_mib": 1,
        "threads": 1,
    }


def test_a_skipped_jax_column_keeps_the_case_and_shows_in_the_report(monkeypatch):
    from benchmarks import report, run

    calls = []

    def measure(part, framework, weights, threads, quick):
        calls.append(framework)
        if framework.startswith("jax"):
            return {"skipped": "JAX is not installed"}
        return _fake({"minidl": 1.0, "minidl-loop": 1.5, "minidl-compiled": 0.5, "torch": 4.0}[framework])

    monkeypatch.setattr(run, "measure", measure)
    part = run.run_part("1", "unused", quick=True, reps=2)
    # each JAX framework is asked once, then left out of the later repetitions
    first = ["minidl", "minidl-loop", "minidl-compiled", "torch"]
    assert calls == [*first, "jax-jit", "jax-scan", *first]
    assert set(part["summary"]) == {"minidl", "minidl-loop", "minidl-compiled", "torch"}
    assert part["summary"]["minidl"]["speedup_vs_torch"] == 4.0
    assert part["skipped_frameworks"] == {"jax-jit": "JAX is not installed", "jax-scan": "JAX is not installed"}
    machine = {"cpu": "x", "cores": 2, "platform": "p", "torch": "t", "python": "3.11", "torch_default_threads": 2}
    text = report.write_report({"machine": machine, "command": "c", "parts": {"1": part}})
    side = text.split("## Cases 1 and 2 side by side")[1].split("## Against")[0]
    header, _, row = (line for line in side.splitlines() if line.startswith("|"))
    assert header == "| case | minidl eager | minidl compiled | torch.nn | JAX jit | JAX scan |"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "1"
    assert cells[1] == "**1** s, 500.0 ms/epoch (4.00×), acc 0.950"
    assert cells[2] == "**0.5** s, 250.0 ms/epoch (8.00×), acc 0.950"
    assert cells[3] == "**4** s, 2,000 ms/epoch (1.00×), acc 0.950"
    assert cells[4] == cells[5] == "skipped: JAX is not installed"
    targets = text.split("## Against")[1]
    assert "- Issue 15, case 1: eager ≥ 5× torch.nn: 4.00× — NOT met" in targets
    # compiled 0.5 s (no warm-up in the fake) against eager 1 s: 2× < 3×; no JAX scan column, no JAX line
    assert "= 2.00× — NOT met" in targets
    assert "JAX scan" not in targets


def test_a_required_framework_skipped_skips_the_case(monkeypatch):
    from benchmarks import run

    monkeypatch.setattr(run, "measure", lambda *a: {"skipped": "not yet available: minidl.optim.Adam"})
    part = run.run_part("2", "unused", quick=True, reps=1)
    assert part["skipped"] == "not yet available: minidl.optim.Adam"
    assert "summary" not in part


def test_jax_jit_and_scan_train_the_same_model(tmp_path, monkeypatch):
    """The per-sample jit step and the scanned epoch are the same arithmetic in the same batch order."""
    pytest.importorskip("jax")
    from benchmarks import cases, run

    monkeypatch.setenv("XLA_FLAGS", "")  # jax_case may add thread flags; restored after the test
    weights = run.save_weights(SEED_ARCH, str(tmp_path))
    jit = cases.train_case(2, "jax-jit", weights, epochs=2)
    scan = cases.train_case(2, "jax-scan", weights, epochs=2)
    assert jit["steps"] == scan["steps"] == 64
    assert jit["final_loss"] == pytest.approx(scan["final_loss"], rel=1e-5)
    assert jit["test_accuracy"] == pytest.approx(scan["test_accuracy"], abs=0.005)
    assert jit["test_accuracy"] > 0.8  # two epochs of Adam on the disk data already separate it


@pytest.mark.parametrize("variant", ["eager-step", "script-epoch"])
def test_compile_study_step_is_minidls_step(variant):
    """The study's hand-written step trains the same weights as minidl's own layers (float64: to rounding)."""
    import torch

    from benchmarks import compile_study

    threads = torch.get_num_threads()
    try:
        result = compile_study.measure_one(variant, epochs=1, dtypes=["float64"])
    finally:
        torch.set_num_threads(threads)  # measure_one runs single-threaded, as the benchmarks
    assert result["rel_vs_minidl_float64"] < 1e-12
    assert result["rel_vs_eager_step_float64"] < 1e-12
    assert result["test_accuracy"] == result["minidl_test_accuracy"]


def test_compile_study_report_shows_a_failed_variant():
    from benchmarks import compile_study

    data = {"date": "d", "torch": "t", "results": [{"variant": "v", "describe": "what", "error": "Unsupported: x"}]}
    assert "| v: what | **no**: Unsupported: x |" in compile_study.report(data)


def test_compiled_prototype_traces_minidls_step_and_refuses_adam(tmp_path):
    """The "minidl compiled" column's capture: minidl's own step traced by make_fx is that step (run eagerly
    here, without inductor: fast), and an optimizer with state is refused rather than frozen into the graph."""
    import torch

    from benchmarks import cases, compiled_proto, run

    weights = run.save_weights(SEED_ARCH, str(tmp_path))
    x, y, _, _ = cases.disk_data()
    t = y.to(x.dtype).unsqueeze(1)
    traced = compiled_proto.trace_step(*cases._minidl_setup(1, weights), x[:1], t[:1])
    model, loss_fn, optimizer = cases._minidl_setup(1, weights)
    carry = [p.data.clone() for p in model.parameters()]
    for i in range(50):
        carry, traced_loss = traced(carry, x[i : i + 1], t[i : i + 1])
        loss = cases._minidl_step(model, loss_fn, optimizer, x[i : i + 1], t[i : i + 1])
        assert traced_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for ours, theirs in zip(carry, (p.data for p in model.parameters()), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)
    with pytest.raises(compiled_proto.NotCapturable, match="Adam"):
        compiled_proto.trace_step(*cases._minidl_setup(2, weights), x[:32], t[:32])


@pytest.mark.parametrize("case", ["1", "2", "3", "4a", "4b"])
def test_paired_step_cases_train_or_infer(case):
    """Each case's step, built from this tree, runs on its batches; a training step moves the weights."""
    import torch

    import minidl.nn as nn
    import minidl.optim as optim
    import minidl.train as train
    from benchmarks import paired_step

    step = paired_step.case_step(case, nn, optim, train)
    (xb, tb), *_ = paired_step.case_batches(case)
    before = [p.data.clone() for p in step.__self__.model.parameters()] if hasattr(step, "__self__") else None
    with torch.no_grad():
        out = step(xb, tb)
    if before is None:  # inference: the model's output for the batch
        assert out.shape == (xb.shape[0], 1)
    else:
        after = [p.data for p in step.__self__.model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_paired_step_compares_a_tree_with_itself(capsys):
    import minidl.nn
    from benchmarks import paired_step

    ours = sys.modules["minidl.nn"]
    src = str(ROOT / "src")
    paired_step.main(["--before", src, "--after", src, "--blocks", "2", "--case", "4a"])
    assert sys.modules["minidl.nn"] is ours is minidl.nn  # put back: later tests' classes stay the same objects
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "case 4a" in line and "after/before median" in line
