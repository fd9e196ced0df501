"""The line minidl holds: only torch tensor operations inside src/minidl, read from the source's AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import minidl.nn as mnn
from minidl.optim import SGD

SRC = Path(__file__).resolve().parents[1] / "src" / "minidl"
FORBIDDEN = ("torch.nn", "torch.autograd", "torch.optim", "torch.func", "torch.nn.functional")
SOURCES = sorted(SRC.rglob("*.py"))


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def violations(source: str) -> list[str]:
    found = []
    aliases = {}  # local name -> dotted module it stands for
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden(alias.name):
                    found.append(f"line {node.lineno}: import {alias.name}")
                aliases[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if _forbidden(node.module) or _forbidden(full):
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute):
            name = _dotted(node)
            if name:
                head, _, rest = name.partition(".")
                resolved = f"{aliases.get(head, head)}.{rest}" if rest else aliases.get(head, head)
                if _forbidden(resolved):
                    found.append(f"line {node.lineno}: {name}")
                if node.attr == "requires_grad_" or (node.attr == "requires_grad" and _is_store(node)):
                    found.append(f"line {node.lineno}: sets requires_grad")
        elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
            found.append(f"line {node.lineno}: requires_grad= keyword")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("__import__",):
            found.append(f"line {node.lineno}: dynamic import")
    return found


def _is_store(node: ast.Attribute) -> bool:
    return isinstance(node.ctx, ast.Store)


def test_sources_were_found():
    assert len(SOURCES) > 10


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(SRC)) for p in SOURCES])
def test_no_autograd_nn_optim_or_func(path):
    assert violations(path.read_text()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import torch.nn as nn",
        "from torch import nn",
        "from torch.nn import functional as F",
        "import torch\nx = torch.nn.functional.relu(y)",
        "import torch as t\nt.autograd.grad(a, b)",
        "from torch import optim",
        "import torch\ntorch.func.grad(f)",
        "x.requires_grad_()",
        "x.requires_grad = True",
        "torch.zeros(3, requires_grad=True)",
    ],
)
def test_the_checker_catches_each_way_in(snippet):
    assert violations(snippet), snippet


def test_training_works_with_autograd_globally_disabled():
    torch.manual_seed(0)
    model = mnn.Sequential(mnn.Linear(2, 8), mnn.Tanh(), mnn.Linear(8, 1))
    opt = SGD(model.parameters(), lr=0.1)
    loss = mnn.MSELoss()
    x = torch.rand(64, 2)
    y = (x.sum(1, keepdim=True) > 1).float()
    previous = torch.is_grad_enabled()
    torch.set_grad_enabled(False)
    try:
        first = None
        for _ in range(100):
            value = loss(model(x), y)
            first = value.item() if first is None else first
            opt.zero_grad()
            model.backward(loss.backward())
            opt.step()
        assert value.item() < 0.5 * first
        assert all(not p.data.requires_grad for p in model.parameters())
    finally:
        torch.set_grad_enabled(previous)
