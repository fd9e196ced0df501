"""The tutorials run: every ```python block of a page is executed, in order, in one namespace.

A page whose code stops working fails here, so the documentation cannot rot. Each page has a check of
what its code should have produced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def run_page(name: str) -> dict:
    path = DOCS / name
    namespace: dict = {"__name__": f"docs.{path.stem}"}
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    assert blocks, f"{name} has no python blocks"
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"{path.name} (python block {number})", "exec"), namespace)
    return namespace


def check_custom_layer(ns: dict) -> None:
    assert ns["checked"] is True  # gradcheck of the correct Swish
    assert ns["message"].startswith("gradcheck BrokenSwish(): input 0 disagrees at index (0, 0)")
    assert ns["result"].accuracy > 0.95  # Swish learned the disk (0.972 when written)
    assert list(ns["model"].state_dict()) == [
        "0.weight", "0.bias", "1.beta", "2.weight", "2.bias", "3.beta", "4.weight", "4.bias",
    ]  # fmt: skip
    assert all(ns["model"][i].beta.data.item() != 1.0 for i in (1, 3))  # β was trained
    assert torch.is_grad_enabled()


def _rounded(line: str) -> str:
    """Decimals to 6 significant digits: central differences may differ in the last digits across CPUs."""
    return re.sub(r"-?\d+\.\d+", lambda m: f"{float(m[0]):.6g}", line)


PAGES: list[tuple[str, Callable[[dict], None]]] = [("custom-layer.md", check_custom_layer)]


@pytest.mark.parametrize(("name", "check"), PAGES, ids=[name for name, _ in PAGES])
def test_tutorial_code_runs_and_gives_what_the_page_says(name, check, capsys):
    check(run_page(name))
    printed = capsys.readouterr().out
    text = (DOCS / name).read_text(encoding="utf-8")
    shown_lines = {_rounded(line) for line in text.splitlines()}
    for line in printed.splitlines():  # the output the page shows is what the code prints
        if line.startswith(("gradcheck BrokenSwish", "['0.weight'")):
            assert _rounded(line) in shown_lines, f"{name} shows stale output; the code now prints: {line}"
        elif found := re.match(r"test accuracy (\S+),", line):  # training may round differently on other CPUs
            shown = re.search(r"^test accuracy (\S+),", text, flags=re.M)
            assert shown and abs(float(found[1]) - float(shown[1])) <= 0.01, line


def test_python_blocks_are_found():
    text = "intro\n```python\na = 1\n```\n```text\nnot code\n```\n```python\nb = a + 1\n```\n"
    assert python_blocks(text) == ["a = 1\n", "b = a + 1\n"]
