"""Turn the benchmark data (results.json) into benchmarks/results.md, with the acceptance checks of issue 6."""

from __future__ import annotations

NAMES = {
    "minidl": "minidl",
    "minidl-trainer": "minidl (Trainer, as `minidl train`)",
    "minidl-step": "minidl (Trainer's step)",
    "minidl-loop": "minidl (user loop)",
    "torch": "torch.nn + autograd + torch.optim",
    "minidl-compiled": "minidl compiled (`Trainer(compile=True)`: epoch = compiled `scan` of the traced step)",
    "jax-jit": "JAX, per-sample `jax.jit` step",
    "jax-scan": "JAX, whole epoch as one `lax.scan`",
}
# the side-by-side table of cases 1 and 2: column -> framework key
COLUMNS = {
    "minidl eager": "minidl",
    "minidl compiled": "minidl-compiled",
    "torch.nn": "torch",
    "JAX jit": "jax-jit",
    "JAX scan": "jax-scan",
}
MINIDL_ROW = {1: "minidl-trainer", 2: "minidl-trainer", 3: "minidl-step"}  # what "minidl" ran, by case


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def _target(part: str, data: dict) -> str:
    """Issue 6's acceptance line for this part, with whether the run meets it."""
    s = data["summary"]
    ours, theirs = s["minidl"], s["torch"]
    speedup = ours["speedup_vs_torch"]
    if part == "1":
        gap = abs(ours["test_accuracy"] - theirs["test_accuracy"]) * 100
        ok = speedup >= 3 and gap <= 0.5
        verdict = "met" if ok else "NOT met"
        return f"≥ 3× (aim 5×), accuracy within 0.5 points: {speedup:.2f}×, {gap:.1f} points — {verdict}"
    if part == "2":
        return f"≥ 2×: {speedup:.2f}× — {'met' if speedup >= 2 else 'NOT met'}"
    if part == "3":
        ratio = data["paired"]["ratio_minidl_over_torch"] if "paired" in data else 1 / speedup
        mem = ours["peak_rss_mib"] <= theirs["peak_rss_mib"]
        ok = ratio <= 1.0 and mem
        return (
            f"time minidl/torch ≤ 1.0 and peak RSS ≤ torch's: {ratio:.2f}, {ours['peak_rss_mib']:.0f} vs "
            f"{theirs['peak_rss_mib']:.0f} MiB — {'met' if ok else 'NOT met'}"
        )
    if part == "4a":
        return f"throughput ≥ torch.nn's: {speedup:.2f}× — {'met' if speedup >= 1 else 'NOT met'}"
    return f"throughput within 5% of torch.nn's: {speedup:.2f}× — {'met' if speedup >= 0.95 else 'NOT met'}"


def write_report(data: dict) -> str:
    m = data["machine"]
    lines = [
        "# minidl vs torch.nn: benchmark results",
        "",
        f"Regenerate with `.venv/bin/python -m benchmarks.run` from the repository root "
        f"(`--cases 1,2` for some cases, `--quick` for a smoke run). This file: `{data['command']}`.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} logical cores, {m['platform']}",
        f"- torch {m['torch']}, Python {m['python']}; torch's default thread count here: {m['torch_default_threads']}",
        "- Threads: `torch.set_num_threads(1)` for cases 1, 2 and 4 (small networks); case 3 keeps the default.",
        "- Method: each measurement is a fresh process (peak RSS = `ru_maxrss` of that process, which includes "
        "torch itself: about the same base for both frameworks, see the setup column); the frameworks "
        "alternate A B A B and each cell is the median over the repetitions. Same initial weights (minidl's "
        "state_dict loaded into both), same data tensors, same shuffled batches (minidl's DataLoader). "
        "Speed-up = torch.nn time / minidl time (> 1: minidl is faster; for throughput minidl / torch.nn), "
        "the median of the ratios within each repetition (A and B run back to back); in brackets the ratio "
        "of the medians. On a busy machine the two differ: trust neither beyond ±15 %.",
        "",
        "| case | framework | threads | reps | median | runs | speed-up vs torch.nn | test accuracy "
        "| peak RSS MiB (setup → peak) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for part, p in data["parts"].items():
        label = f"{part}: {p['title']}"
        if "skipped" in p:
            lines.append(f"| {label} | — | | | {p['skipped']} | | | | |")
            continue
        for fw, s in p["summary"].items():
            acc = f"{s['test_accuracy']:.3f}" if "test_accuracy" in s else ""
            runs = ", ".join(_fmt(v) for v in s["all"])
            name = MINIDL_ROW.get(p["case"], fw) if fw == "minidl" else fw
            lines.append(
                f"| {label} | {NAMES[name]} | {s['threads']} | {p['reps']} | **{_fmt(s['median'])}** {p['unit']} "
                f"| {runs} | {s['speedup_vs_torch']:.2f}× ({s.get('speedup_of_medians', s['speedup_vs_torch']):.2f}×) "
                f"| {acc} "
                f"| {s['setup_rss_mib']:.0f} → {s['peak_rss_mib']:.0f} |"
            )
            label = ""
        if "paired" in p:
            ms = p["paired"]["step_ms"]
            lines.append(
                f"|  | both in one process, alternating step by step ({p['paired']['steps']} steps each) | "
                f"{p['paired']['threads']} | 1 | minidl **{ms['minidl']:.1f}**, torch.nn **{ms['torch']:.1f}** ms/step "
                f"| | minidl/torch.nn time {p['paired']['ratio_minidl_over_torch']:.2f} (median of step pairs) | | |"
            )
        for fw, why in p.get("skipped_frameworks", {}).items():
            lines.append(f"| {label} | {NAMES[fw]} | | | skipped: {why} | | | | |")
            label = ""
        quick = " (quick run: not an acceptance measurement)" if p.get("quick") else ""
        notes.append(f"- Case {part} ({p['date']}){quick}: {_target(part, p)}")
    lines += _side_by_side(data["parts"])
    if "1" in data["parts"] and "summary" in data["parts"]["1"]:
        notes += _issue15(data["parts"]["1"])
    lines += ["", "## Against the acceptance targets of issues 6 and 15", "", *notes, ""]
    return "\n".join(lines)


def _cell(p: dict, fw: str) -> str:
    if fw in p.get("skipped_frameworks", {}):
        return f"skipped: {p['skipped_frameworks'][fw]}"
    s = p["summary"].get(fw)
    if s is None:
        return "n/a (not measured)"
    per_epoch = f", {_fmt(s['median'] / s['epochs'] * 1e3)} ms/epoch" if "epochs" in s else ""
    warm = f", warm-up {_fmt(s['warmup_seconds'])} s" if "warmup_seconds" in s else ""
    return (
        f"**{_fmt(s['median'])}** {p['unit']}{per_epoch} ({s['speedup_vs_torch']:.2f}×){warm}, "
        f"acc {s['test_accuracy']:.3f}"
    )


def _side_by_side(parts: dict) -> list[str]:
    """Cases 1 and 2 with one column per framework: median time (speed-up vs torch.nn), test accuracy."""
    rows = [p for part, p in parts.items() if part in ("1", "2") and "summary" in p]
    if not rows:
        return []
    lines = [
        "",
        "## Cases 1 and 2 side by side",
        "",
        "Median training time (in brackets: speed-up vs torch.nn, the median of the paired ratios), test "
        "accuracy. The warm-up of minidl compiled and JAX (compilation + one epoch on a throwaway copy) runs "
        "before the clock starts, like every framework's warm-up, and is shown apart: add it for the time "
        "including compilation.",
        "",
        "| case | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for p in rows:
        lines.append(f"| {p['case']} | " + " | ".join(_cell(p, fw) for fw in COLUMNS.values()) + " |")
    return lines


def _issue15(p: dict) -> list[str]:
    """Issue 15's targets on case 1, from the columns this run has."""
    s = p["summary"]
    eager = s["minidl"]
    verdict = "met" if eager["speedup_vs_torch"] >= 5 else "NOT met"
    notes = [f"- Issue 15, case 1: eager ≥ 5× torch.nn: {eager['speedup_vs_torch']:.2f}× — {verdict}"]
    compiled = s.get("minidl-compiled")
    if compiled is None:
        return notes
    total = compiled["median"] + compiled.get("warmup_seconds", 0.0)
    ratio = eager["median"] / total
    verdict = "met" if ratio >= 3 else "NOT met"
    notes.append(
        f"- Issue 15, case 1: compiled incl. compilation (its warm-up) ≥ 3× eager: {eager['median']:.3g} s / "
        f"({compiled['median']:.3g} + {compiled.get('warmup_seconds', 0.0):.3g} s warm-up) = {ratio:.2f}× — {verdict}"
    )
    scan = s.get("jax-scan")
    if scan is not None:
        ratio = compiled["median"] / scan["median"]
        verdict = "met" if ratio <= 5 else "NOT met"
        notes.append(f"- Issue 15, case 1: compiled per epoch within 5× of JAX scan: {ratio:.2f}× — {verdict}")
    return notes
