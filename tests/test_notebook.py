"""examples/quickstart.ipynb runs: every cell executes in a Jupyter kernel (this venv's Python) without error.

The notebook is committed without outputs; this test executes a copy in memory with nbclient, as
`jupyter nbconvert --execute` would, and fails on the first cell that raises (its traceback in the message).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbclient  # the dev extra (with ipykernel): a missing one fails here, it never skips
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def _kernelspec(root: Path) -> Path:
    """A kernelspec for this interpreter, so the kernel is this venv's Python whatever else is installed."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"}))
    return root


def test_the_notebook_is_committed_clean():
    raw = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [cell for cell in raw["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code), "clear the outputs"
    assert set(raw["metadata"]) <= {"kernelspec", "language_info"}, raw["metadata"]
    assert all(not cell.get("metadata") for cell in raw["cells"])


def test_the_quickstart_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))  # searched before any other
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))  # the connection file: not in $HOME
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # nor IPython's profile and history
    monkeypatch.setenv("MPLBACKEND", "Agg")  # no window, whatever the notebook does
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # one torch thread, as in-process (tests/conftest.py)
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # the kernel's debugger warns about frozen modules
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.executable)"))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell and its traceback, on any error

    def text(cell) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    assert text(nb.cells[0]).strip() == sys.executable  # the kernel is this venv's interpreter
    errors = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    images = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 2  # the decision surface and the training curves, inline
    printed = "\n".join(text(cell) for cell in nb.cells if cell.cell_type == "code")
    assert "Epoch 10/10" in printed  # Trainer.fit(verbose=2): a line per epoch
    assert "gradcheck BrokenScaleShift(): input 0 disagrees" in printed  # the broken layer is caught
    difference = re.search(r"^largest difference: (\S+)$", printed, flags=re.M)
    assert difference and float(difference[1]) <= 1e-6  # torch.nn predicts what minidl does
