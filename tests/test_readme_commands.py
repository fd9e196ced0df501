"""The README's commands run as printed.

Every fenced block of README.md is classified by its language: ``bash``/``sh`` lines and ``console`` lines
after a ``$`` prompt are commands; ``python`` blocks are executed; ``toml`` and ``text`` are not run, but a
``$`` prompt inside a ``text`` block must be listed in SHOWN_ONLY. A fence without a known language, or a
command that is neither runnable here (``minidl ...``, ``source .venv/bin/activate``) nor listed below with
its reason, fails the test: a new README command gets a test the moment it is written.

The runnable commands run in order in a fresh folder where ``.venv`` is this test run's virtual environment
(the one the README's commands create): ``source .venv/bin/activate`` in bash, which must then find this
venv's ``minidl``; each ``minidl ...`` through the console script's entry point in this process (argv split
as bash splits it), which saves a Python start and a torch import per command. The files a reader brings
(``iris.csv``) are written first. The two setup commands (make the venv, pip install, then train or test)
are not run: creating a venv and installing torch takes minutes, and one of them runs this very test suite.
Instead the test command must be exactly the line ``.ci/run`` calls, and the other must install the same way.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"

LANGUAGES = {"bash", "sh", "console", "python", "toml", "text"}
RUNNABLE = ("minidl ", "source .venv/bin/activate")

TEST_COMMAND = (
    "python3.11 -m venv .venv && .venv/bin/pip install -q --no-compile -c constraints.txt -e '.[dev]' "
    "&& .venv/bin/python -m pytest -q"
)
SEED_COMMAND = "python3.11 -m venv .venv && .venv/bin/pip install -q -c constraints.txt -e . && .venv/bin/minidl train"
NOT_RUN = {
    TEST_COMMAND: "the test command: it creates a venv, installs torch and runs this suite; checked against .ci/run",
    SEED_COMMAND: "the seed command: it creates a venv and installs torch (minutes), then trains 50 epochs of "
    "batch 1; checked to install as .ci/run does, and `minidl train --epochs 5` below runs the same experiment",
}
SHOWN_ONLY = {
    "$ minidl train": "example output of the seed experiment (50 epochs of batch 1: too long for a unit test); "
    "the README's `minidl train --epochs 5 --name first` runs the same code",
}


def write_iris(folder: Path) -> None:
    """scikit-learn's iris with the column names the README uses and the species by name."""
    from sklearn.datasets import load_iris

    bunch = load_iris()
    with open(folder / "iris.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for row, target in zip(bunch.data.tolist(), bunch.target.tolist(), strict=True):
            writer.writerow([*row, bunch.target_names[target]])


READER_FILES = {"iris.csv": write_iris}  # files the README's commands read, which a reader has of their own


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```[ \t]*$", text, flags=re.S | re.M)


def shell_commands(language: str, body: str) -> list[str]:
    """The commands of a shell block: bash/sh lines (joining continuations), console lines after ``$ ``."""
    lines = body.replace("\\\n", " ").splitlines()
    if language == "console":
        return [line[2:].strip() for line in lines if line.startswith("$ ")]
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def classify(command: str) -> str:
    if command in NOT_RUN:
        return "not run"
    if command.startswith(RUNNABLE):
        return "run"
    raise AssertionError(
        f"README command not covered by tests/test_readme_commands.py: {command!r}; make it runnable here "
        "(minidl ...) or list it in NOT_RUN with the reason"
    )


def readme_commands() -> list[str]:
    commands = []
    for language, body in fenced_blocks(README.read_text(encoding="utf-8")):
        if language in ("bash", "sh", "console"):
            commands += shell_commands(language, body)
    return commands


def test_every_block_has_a_known_language_and_every_command_a_class():
    text = README.read_text(encoding="utf-8")
    blocks = fenced_blocks(text)
    assert len(blocks) >= 4
    for language, body in blocks:
        assert language in LANGUAGES, f"README block without a known language ({language!r}): {body[:80]!r}"
        if language == "text":
            for line in body.splitlines():
                if line.startswith("$ "):
                    assert line in SHOWN_ONLY, f"a command shown in a text block, not run nor listed: {line!r}"
    commands = readme_commands()
    classes = [classify(command) for command in commands]  # raises on a command nobody classified
    assert classes.count("run") >= 5
    assert set(NOT_RUN) <= set(commands), "a command listed in NOT_RUN is no longer in the README"
    assert all(line in text for line in SHOWN_ONLY)
    assert all(name in text for name in READER_FILES)


def test_the_setup_commands_are_what_ci_runs():
    ci_lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    assert TEST_COMMAND in ci_lines  # .ci/run calls the README's test command verbatim
    commands = readme_commands()
    assert commands[:2] == [SEED_COMMAND, TEST_COMMAND]  # the two commands come first, in this order
    # the seed command makes the venv and installs as CI does, only without the dev extra and with the
    # bytecode compiled at install (the tests compile what they import once, tests/conftest.py)
    install = TEST_COMMAND.rsplit(" && ", 1)[0].replace("-e '.[dev]'", "-e .").replace(" --no-compile", "")
    assert f"{install} && .venv/bin/minidl train" == SEED_COMMAND


def run_minidl(command: str) -> tuple[int, str, str]:
    """``minidl ARGS`` in this process: the console script's :func:`minidl.cli.main.main` (its entry point,
    ``console``, only adds SIGINT ignored after it, which this process must not get).

    In-process saves a Python start and a torch import (about 2 s of CPU) per command; the words are split
    as bash splits them (quotes, a trailing comment), and a command that needs a shell is refused here.
    """
    from minidl.cli.main import main

    assert not re.search(r"[|&;<>$`]", command.split(" #")[0]), f"needs a shell, run it with bash: {command}"
    argv = shlex.split(command, comments=True)
    assert argv[0] == "minidl"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv[1:])
        except SystemExit as stop:  # argparse: a malformed command line
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def test_the_readme_commands_run_as_printed(tmp_path, monkeypatch):
    venv = Path(sys.prefix)
    assert (venv / "bin" / "minidl").exists(), f"run the tests from the venv that has minidl: {venv}"
    (tmp_path / ".venv").symlink_to(venv)
    for name, write in READER_FILES.items():
        write(tmp_path)
        assert (tmp_path / name).exists()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")

    outputs = {}
    for command in readme_commands():
        if classify(command) != "run":
            continue
        if command.startswith("minidl "):
            code, out, err = run_minidl(command)
        else:  # source .venv/bin/activate: in bash, and then `minidl` must be this venv's
            done = subprocess.run(
                ["bash", "-c", f"{command}\ncommand -v minidl"], capture_output=True, text=True,
                stdin=subprocess.DEVNULL, timeout=60,
            )  # fmt: skip
            code, out, err = done.returncode, done.stdout, done.stderr
            assert Path(out.strip()).resolve() == (venv / "bin" / "minidl").resolve(), out
        assert code == 0, f"README command failed ({code}): {command}\n{err[-2000:]}"
        assert "Traceback" not in err and "error" not in err, err
        outputs[command] = out

    # what the README says they do
    def test_lines(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith("test:")]

    trained = {c: out for c, out in outputs.items() if c.startswith("minidl train")}
    assert trained, "the README trains nothing"
    for command, out in trained.items():
        folder = re.search(r"^run folder: (\S+)$", out, flags=re.M)
        assert folder and (tmp_path / folder[1] / "model.safetensors").exists(), command
        for evaluate, again in outputs.items():  # `minidl evaluate RUN` prints the training's test: lines
            if evaluate.split("#")[0].split() == ["minidl", "evaluate", folder[1]]:
                assert test_lines(again) == test_lines(out)
    for command in outputs:
        if command.startswith("minidl predict"):
            written = re.search(r"--output (\S+)", command)[1]
            with open(tmp_path / written, newline="") as handle:
                rows = list(csv.reader(handle))
            assert rows[0][-1] == "prediction" and len(rows) > 1


def test_the_readme_python_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = [body for language, body in fenced_blocks(README.read_text(encoding="utf-8")) if language == "python"]
    assert blocks
    namespace: dict = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md (python block {number})", "exec"), namespace)
    printed = capsys.readouterr().out
    shown = re.search(r"accuracy (\d\.\d+)\s*$", blocks[-1], flags=re.M)  # the comment on what it prints
    measured = re.search(r"^accuracy\s+(\S+)$", printed, flags=re.M)
    assert shown and measured, printed
    assert abs(float(measured[1]) - float(shown[1])) <= 0.01  # training may round differently on other CPUs


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("page", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(page):
    path = README if page == "README.md" else ROOT / "docs" / page
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.exists(), f"{page}: broken link {target}"
        if anchor and linked.suffix == ".md":
            linked_text = re.sub(r"^```.*?^```", "", linked.read_text(encoding="utf-8"), flags=re.S | re.M)
            headings = re.findall(r"^#+ (.+)$", linked_text, flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"{page}: no heading for #{anchor} in {linked.name}"


def test_the_python_api_page_runs():
    """docs/python-api.md's example (moved there from the README): one step by hand, no autograd."""
    import torch

    from tests.test_docs import run_page

    ns = run_page("python-api.md")
    assert ns["value"].dim() == 0 and torch.isfinite(ns["value"])
    assert ns["optimizer"].state  # the step ran: SGD with momentum keeps a buffer per parameter
    assert all(p.grad is not None for p in ns["model"].parameters())
