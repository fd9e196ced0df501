"""An uploaded CSV of own data: two feature columns and a target, read with the CLI's CSV checks."""

from __future__ import annotations

from pathlib import Path

from minidl.data.csv import load_csv
from minidl.errors import MinidlError
from minidl.playground.setup import MAX_POINTS, SetupError

MAX_UPLOAD = 256 * 1024  # bytes
UPLOAD_FILE = "upload.csv"  # the server's own name for it, inside the session's folder


def read_upload(raw: bytes, folder: Path) -> tuple[list[tuple[float, float, float]], list[str], bool]:
    """Points ``(x1, x2, target)``, the class names (empty for regression) and whether it is regression.

    The first row is a header unless every cell of it is a number. Errors name the line and column, as
    ``minidl train --dataset file.csv`` does (``minidl.data.csv``).
    """
    if len(raw) > MAX_UPLOAD:
        raise SetupError(f"upload: the file is {len(raw)} bytes; at most {MAX_UPLOAD}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SetupError("upload: the file is not UTF-8 text") from None
    first = text.lstrip().split("\n", 1)[0].split(",")
    header = not all(_is_number(cell) for cell in first)
    path = folder / UPLOAD_FILE
    path.write_text(text, encoding="utf-8")
    try:
        csv = load_csv(path, None, header=header, task="auto")
    except MinidlError as error:
        raise SetupError(f"upload: {str(error).replace(str(path), 'the file')}") from None
    finally:
        path.unlink(missing_ok=True)
    if csv.x.shape[1] != 2:
        raise SetupError(f"upload: expected 2 feature columns and a target column, got {csv.x.shape[1] + 1} columns")
    if len(csv.x) > MAX_POINTS:
        raise SetupError(f"upload: at most {MAX_POINTS} rows, got {len(csv.x)}")
    regression = csv.kind == "regression"
    if not regression and len(csv.classes) > 6:
        raise SetupError(f"upload: at most 6 classes, got {len(csv.classes)}")
    targets = csv.y.tolist()
    points = [(float(a), float(b), float(t)) for (a, b), t in zip(csv.x.tolist(), targets, strict=True)]
    return points, [str(c) for c in csv.classes], regression


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
