"""The package's shape: imports go downward only (layers below never import layers above), with no cycle.

Read from the AST of every module under src/minidl: module-level imports and imports inside functions
(a lazy import is still a dependency); imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
# lower layers first; a module may import its own layer and the ones below
LAYERS = [
    ("minidl.errors", "minidl.checks", "minidl.device", "minidl.limits"),
    ("minidl.nn",),
    ("minidl.optim", "minidl.data", "minidl.gradcheck"),
    ("minidl.persist",),
    ("minidl.train",),
    ("minidl.distributed",),
    ("minidl.experiment",),
    ("minidl.plot",),
]  # anything else (cli, playground, __main__) is above all of them
# the loop must never reach the layers that assemble or drive it
LOOP_MUST_NOT_IMPORT = ("minidl.cli", "minidl.experiment", "minidl.distributed", "minidl.playground")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def graph(type_only: bool = False) -> dict[str, set[str]]:
    """Each module's imports of other minidl modules; ``type_only``: those under ``if TYPE_CHECKING:`` too."""
    modules = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        hidden = (
            set()
            if type_only
            else {id(n) for node in ast.walk(tree) if _type_checking(node) for n in ast.walk(node) if n is not node}
        )
        found = set()
        for node in ast.walk(tree):
            if id(node) in hidden or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            else:
                assert node.level == 0, f"{name}: relative import (minidl imports by full name)"
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return len(LAYERS)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


EDGES = graph()


def test_the_graph_is_read():
    assert "minidl.train.trainer" in EDGES and "minidl.train.callbacks" in EDGES["minidl.train.trainer"]
    assert "minidl.train.trainer" not in EDGES["minidl.train.divergence"]  # TYPE_CHECKING only


@pytest.mark.parametrize("type_only", [False, True], ids=["runtime", "with-type-checking-imports"])
def test_no_import_cycle(type_only):
    # the package facades (minidl/__init__.py and each package's __init__) re-export; their own modules
    # import each other by full name, so only modules that are not facades are checked. A type-only import
    # that closes a circle is a design cycle too: annotate with a Protocol of what is used instead
    edges = {m: {d for d in ds if not _facade(d)} for m, ds in graph(type_only).items() if not _facade(m)}
    assert cycles(edges) == []


def _facade(module: str) -> bool:
    return (SRC / module.replace(".", "/") / "__init__.py").exists()


@pytest.mark.parametrize("module", sorted(m for m in EDGES if m != "minidl"))
def test_imports_go_downward(module):
    upward = sorted(d for d in EDGES[module] if layer(d) > layer(module) and d != "minidl")
    assert upward == [], f"{module} (layer {layer(module)}) imports a layer above it: {upward}"


def test_the_loop_never_imports_the_layers_that_drive_it():
    loop = [m for m in EDGES if m == "minidl.train" or m.startswith("minidl.train.")]
    bad = {m: sorted(d for d in EDGES[m] if d.startswith(LOOP_MUST_NOT_IMPORT)) for m in loop}
    assert {m: d for m, d in bad.items() if d} == {}


def test_a_cycle_and_an_upward_import_are_caught():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer("minidl.train.trainer") < layer("minidl.experiment.config") < layer("minidl.cli.train")


# -- sizes: a file is one concept (about 250 lines at most), a function one step (about 50) --------------
MAX_FILE_LINES, MAX_FUNCTION_LINES = 250, 50
# functions over the limit today, in files other sessions own; each entry must still be over it (so that a
# split one leaves the list) and no other function may join it
TOO_LONG_TODAY: set[str] = set()
LONG_FILES_TODAY: set[str] = set()  # the same rule for files


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    files, functions = {}, {}
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        files[module_name(path)] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{module_name(path)}.{node.name}"] = node.end_lineno - node.lineno + 1
    return files, functions


def test_no_file_is_longer_than_a_concept():
    files, _ = sizes()
    too_long = {m for m, n in files.items() if n > MAX_FILE_LINES}
    assert too_long - LONG_FILES_TODAY == set()
    assert LONG_FILES_TODAY - too_long == set()


def test_no_function_is_longer_than_a_step():
    _, functions = sizes()
    too_long = {name for name, n in functions.items() if n > MAX_FUNCTION_LINES}
    assert too_long - TOO_LONG_TODAY == set()  # a new long function
    assert TOO_LONG_TODAY - too_long == set()  # split already: take it off the list


def test_fit_reads_in_a_minute():
    _, functions = sizes()
    assert functions["minidl.train.trainer.fit"] <= 40


def test_the_architecture_pages_code_runs():
    from tests.test_docs import run_page

    ns = run_page("architecture.md")
    history, stop = ns["history"], ns["stop"]
    assert history[-1].accuracy >= 0.95 and len(history) < 100 and ns["trainer"].stop_training is True
    assert all(r.accuracy < 0.95 for r in history[:-1])  # it stopped at the first accurate epoch
    assert stop.steps == 50 * len(history)  # 500 points in batches of 10, every step counted
    assert (ns["loop"].global_step, len(ns["stepper"].history), ns["loop"].finished) == (150, 3, True)
