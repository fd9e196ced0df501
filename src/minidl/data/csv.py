"""CSV files: numeric feature columns and one target column, read with the standard library's csv module.

Every problem is a ``DataError`` that names the file and, where there is one, the line and the column:
``data.csv, line 7, column 'x2': 'abc' is not a number``.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minidl.errors import DataError

MAX_AUTO_CLASSES = 20  # an integer-valued target with at most this many values is taken as class labels
MAX_CLASSES = 100  # --task classification on a numeric target with more values than this is refused
TASKS = ("auto", "classification", "regression")
DELIMITERS = ",;\t|"  # what the sniffer may choose from
SNIFF_BYTES = 64 * 1024  # the prefix of the file the sniffer reads


class DataWarning(UserWarning):
    """Something in a data file that is probably a mistake, but not certainly."""


Label = int | float | str


@dataclass
class Table:
    """The text of a CSV file: column names, rows of cells, and each row's line number in the file."""

    path: Path
    columns: list[str]
    rows: list[list[str]]
    lines: list[int]
    has_header: bool
    delimiter: str = ","

    def where(self, row: int, column: int | None = None) -> str:
        place = f"{self.path}, line {self.lines[row]}"
        return place if column is None else f"{place}, column {self.columns[column]!r}"

    def index(self, spec: str | int | None) -> int:
        """The column named ``spec`` (header) or at index ``spec`` (no header); the last one if None."""
        if spec is None:
            return len(self.columns) - 1
        if self.has_header and str(spec) in self.columns:
            return self.columns.index(str(spec))
        if not self.has_header:
            try:
                i = int(spec)
            except ValueError:
                raise DataError(
                    f"{self.path}: without a header the target is a column index (0 to {len(self.columns) - 1}), "
                    f"got {spec!r}"
                ) from None
            if -len(self.columns) <= i < len(self.columns):
                return i % len(self.columns)
            raise DataError(f"{self.path}: target column index {i} is out of range; the file has {len(self.columns)}")
        raise DataError(
            f"{self.path}: no column named {spec!r}; the columns are {', '.join(self.columns)}" + self._hint(spec)
        )

    def _hint(self, spec: str | int) -> str:
        """A close column name, or the reminder that column indices need ``--no-header``."""
        text = str(spec)
        folded = [c for c in self.columns if c.casefold() == text.casefold()]
        close = folded or difflib.get_close_matches(text, self.columns, n=1, cutoff=0.75)
        if close:
            return f" (did you mean {close[0]!r}?)"
        with contextlib.suppress(ValueError):
            int(text)
            return " (a column index is read only in a file without a header: pass --no-header)"
        return ""

    def numbers(self, column: int) -> list[float]:
        """The column as finite floats, or an error naming the first bad cell."""
        out = []
        for r, row in enumerate(self.rows):
            out.append(self.number(r, column, row[column]))
        return out

    def number(self, row: int, column: int, text: str) -> float:
        text = text.strip()
        if not text:
            raise DataError(f"{self.where(row, column)}: empty cell")
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"{self.where(row, column)}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{self.where(row, column)}: non-finite value {text!r}")
        return value


def read_table(
    path: str | Path, *, header: bool = True, delimiter: str | None = None, index_col: bool = False
) -> Table:
    """Read a CSV file into a ``Table``; blank lines are skipped, every row must have the same width.

    ``delimiter=None`` detects it (``csv.Sniffer`` on the first 64 KiB, choosing among ``, ; tab |``;
    a comma when unsure). ``index_col`` drops the first column (a pandas index); an unnamed first column
    that is kept gets a ``DataWarning``.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise DataError(f"{path}: not a regular file (a pipe or a device is never read: it could wait forever)")
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CSV file") from None
    rows, lines = [], []
    with handle:
        try:
            if delimiter is None:
                delimiter = sniff_delimiter(handle.read(SNIFF_BYTES))
                handle.seek(0)
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not a readable CSV file ({error})") from None
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(reader.line_num)
        except (csv.Error, UnicodeDecodeError) as error:
            raise DataError(f"{path}, line {reader.line_num}: not a readable CSV file ({error})") from None
    if not rows:
        raise DataError(f"{path}: the file is empty")
    if header:
        columns = [name.strip() for name in rows[0]]
        duplicates = sorted({name for name in columns if columns.count(name) > 1})
        if duplicates:
            raise DataError(f"{path}, line {lines[0]}: duplicate column name(s) {', '.join(map(repr, duplicates))}")
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise DataError(f"{path}: no data rows after the header")
    else:
        columns = [str(i) for i in range(len(rows[0]))]
    for row, line in zip(rows, lines, strict=True):
        if len(row) != len(columns):
            raise DataError(
                f"{path}, line {line}: expected {len(columns)} columns, got {len(row)} "
                f"(columns separated by {delimiter!r}; pass --delimiter if the file uses another)"
            )
    if index_col:
        if len(columns) < 2:
            raise DataError(f"{path}: --index-col drops the first column, but the file has only one")
        columns, rows = columns[1:], [row[1:] for row in rows]
        if not header:
            columns = [str(i) for i in range(len(columns))]
    return Table(path, columns, rows, lines, header, delimiter)


def unnamed(name: str) -> bool:
    """An empty column name, or pandas' ``Unnamed: 0``: the index ``DataFrame.to_csv`` writes."""
    return name == "" or name.startswith("Unnamed: ")


def sniff_delimiter(sample: str) -> str:
    """The delimiter ``csv.Sniffer`` finds in ``sample`` among ``, ; tab |``; where it finds none (ragged
    rows), the candidate most frequent in the first line; a comma if none is there."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = next((line for line in sample.splitlines() if line.strip()), "")
        counts = [(first.count(d), -i, d) for i, d in enumerate(DELIMITERS)]  # ties: the earlier candidate
        best = max(counts)
        return best[2] if best[0] > 0 else ","


@dataclass
class CsvData:
    """Features, targets and what they mean: ``kind`` is binary, multiclass or regression, and
    ``classes[i]`` is the file's label for class index ``i`` (empty for regression)."""

    x: torch.Tensor
    y: torch.Tensor
    kind: str
    feature_names: list[str]
    target_name: str
    classes: list[Label] = field(default_factory=list)


def load_csv(
    path: str | Path,
    target: str | int | None = None,
    *,
    header: bool = True,
    task: str = "auto",
    dtype: torch.dtype = torch.float32,
    delimiter: str | None = None,
    index_col: bool = False,
) -> CsvData:
    """Load features and a target column (default: the last column).

    ``task="auto"`` takes an integer-valued target with at most 20 distinct values, or any non-numeric
    target, as class labels (mapped to 0..k-1 in sorted order) and anything else as a regression target.
    ``task="classification"`` on a numeric target with more than 100 values, or more than 20 and more
    than half the rows, is refused: that is a regression target. ``delimiter`` and ``index_col``: see ``read_table``.
    """
    if task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    table = read_table(path, header=header, delimiter=delimiter, index_col=index_col)
    if len(table.columns) < 2:
        raise DataError(
            f"{table.path}: needs at least one feature column and a target column (read one column, separated by "
            f"{table.delimiter!r}; pass --delimiter if the file uses another)"
        )
    t = table.index(target)
    if header and not index_col and t != 0 and unnamed(table.columns[0]):
        warnings.warn(
            f"{table.path}: the first column has no name (a pandas index?); it is read as a feature. "
            "Pass --index-col to skip it",
            DataWarning,
            stacklevel=2,
        )
    features = [c for c in range(len(table.columns)) if c != t]
    x = features_tensor(table, features, dtype)
    y, kind, classes = _targets(table, t, task, dtype)
    return CsvData(x, y, kind, [table.columns[c] for c in features], table.columns[t], classes)


def features_tensor(table: Table, columns: list[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    values = [[table.number(r, c, row[c]) for c in columns] for r, row in enumerate(table.rows)]
    x = torch.tensor(values, dtype=torch.float64).reshape(len(values), len(columns)).to(dtype)
    check_fits(table, x, columns)
    return x


def check_fits(table: Table, x: torch.Tensor, columns: list[int]) -> None:
    """A finite number too large for ``x``'s dtype (1e39 in float32) would become inf: name its cell."""
    bad = (~torch.isfinite(x)).nonzero()
    if len(bad):
        r, c = (int(i) for i in bad[0]) if x.dim() == 2 else (int(bad[0]), 0)
        cell = table.rows[r][columns[c]].strip()
        raise DataError(
            f"{table.where(r, columns[c])}: {cell!r} is too large for {str(x.dtype).removeprefix('torch.')}"
        )


def _targets(table: Table, t: int, task: str, dtype: torch.dtype) -> tuple[torch.Tensor, str, list[Label]]:
    cells = [row[t].strip() for row in table.rows]
    try:
        values: list[float] | None = table.numbers(t)
    except DataError:
        if task == "regression":
            table.numbers(t)  # raise the error naming the first bad cell
        values = None
    if values is None:  # text labels
        for r, cell in enumerate(cells):
            if not cell:
                raise DataError(f"{table.where(r, t)}: empty cell")
        labels: list[Label] = cells
    else:
        integral = all(v == int(v) for v in values)
        distinct = len(set(values))
        if task == "regression" or (task == "auto" and not (integral and distinct <= MAX_AUTO_CLASSES)):
            y = torch.tensor(values, dtype=torch.float64).to(dtype)
            check_fits(table, y, [t])
            return y, "regression", []
        labels = [int(v) if v == int(v) else v for v in values]
        if task == "classification":
            _check_class_count(table, t, len(set(labels)))
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{table.path}: target column {table.columns[t]!r} has a single class ({classes[0]!r})")
    index = {label: i for i, label in enumerate(classes)}
    y = torch.tensor([index[label] for label in labels], dtype=torch.long)
    return y, "binary" if len(classes) == 2 else "multiclass", classes


def _check_class_count(table: Table, t: int, count: int) -> None:
    """A numeric target taken as classes must have few values: a continuous one makes a huge, useless model."""
    if count > MAX_CLASSES or (count > MAX_AUTO_CLASSES and count > len(table.rows) / 2):
        raise DataError(
            f"{table.path}: target column {table.columns[t]!r} has {count} distinct values in {len(table.rows)} "
            f"rows, too many for classification (at most {MAX_CLASSES}, and more than {MAX_AUTO_CLASSES} only if "
            "each class has two rows on average); "
            "it looks continuous: use --task regression"
        )
