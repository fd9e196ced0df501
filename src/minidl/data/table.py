"""A CSV file's text as a ``Table``: column names, rows of cells and their line numbers (the standard
library's csv module; the delimiter detected when not given). ``minidl.data.csv`` gives the cells meaning.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import difflib
import math
from dataclasses import dataclass
from pathlib import Path

from minidl.errors import DataError
from minidl.limits import short_repr

DELIMITERS = ",;\t|"  # what the sniffer may choose from
SNIFF_BYTES = 64 * 1024  # the prefix of the file the sniffer reads

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
    rows, lines, delimiter = _rows(path, delimiter)
    if header:
        columns, rows, lines = _header(path, rows, lines)
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


def _rows(path: Path, delimiter: str | None) -> tuple[list[list[str]], list[int], str]:
    """The non-blank rows of the file, their line numbers, and the delimiter (detected when None)."""
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
    return rows, lines, delimiter


def _header(path: Path, rows: list[list[str]], lines: list[int]) -> tuple[list[str], list[list[str]], list[int]]:
    """The column names of the first row (unique), and the data rows after it."""
    columns = [name.strip() for name in rows[0]]
    counts = collections.Counter(columns)  # one pass: list.count per column was quadratic in the width
    duplicates = sorted(name for name, n in counts.items() if n > 1)
    if duplicates:
        shown = ", ".join(short_repr(name) for name in duplicates[:5])
        more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        raise DataError(f"{path}, line {lines[0]}: duplicate column name(s) {shown}{more}")
    if len(rows) == 1:
        raise DataError(f"{path}: no data rows after the header")
    return columns, rows[1:], lines[1:]


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
