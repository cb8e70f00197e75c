"""XLSX exports: a sheet read once, by fastexcel, into an Arrow table of strings.

fastexcel parses a whole sheet for any part of it (its header row too), so a sheet is parsed once
and what the importer needs is taken from those cells: the header (the sheet's first row with a
value: rows above it are blank, and rejects count rows as the sheet shows them), the rows below it,
and the Excel error cells (``#N/A``, ``#DIV/0!``), which fastexcel reads as empty. Those get their
text back, so that a check rejects them as the cell shows them instead of taking them for blanks.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from .errors import InputError
from .headers import header_problem, name_empty
from .pseudonym import mask_ids

__all__ = ["Sheet", "is_workbook", "read_sheet"]


@dataclass(frozen=True)
class Sheet:
    names: tuple[str, ...]  # every sheet of the workbook
    name: str  # this sheet's
    header: tuple[str, ...]
    rows: pa.Table  # the rows below the header, as strings, named by the header
    header_row: int  # the header's row as the sheet shows it (from 1)
    problem: str | None  # why the header cannot be read by (``isu.headers.header_problem``), if it cannot
    cells: pa.RecordBatch = field(compare=False, repr=False)  # the whole sheet from its row 1
    filled: tuple[int, ...] = ()  # the first rows with a value (from 0): where a header may be

    def at_row(self, row: int) -> Sheet:
        """The same sheet with its header on ``row`` (from 1): a title or notes above the table."""
        return _at(self.names, self.name, self.cells, row - 1, self.filled)

    def header_rows(self) -> list[int]:
        """Rows (from 1) that may hold the header below the one taken, a title above it, say."""
        return [i + 1 for i in self.filled if i + 1 > self.header_row]


#: calamine's names of Excel's error values → the text a cell shows.
_ERROR_TEXT = {"Div0": "#DIV/0!", "NA": "#N/A", "Name": "#NAME?", "Null": "#NULL!", "Num": "#NUM!", "Ref": "#REF!",
               "Value": "#VALUE!", "GettingData": "#GETTING_DATA"}
_ERROR = re.compile(r"Error\((\w+)\)")


def is_workbook(path: Path) -> bool:
    """Whether a zip archive is an Excel workbook."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return "xl/workbook.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def read_sheet(path: Path, sheet: str | None) -> Sheet:
    """The sheet called ``sheet`` (letter case aside; default: the first)."""
    try:
        import fastexcel
    except ImportError:  # pragma: no cover - declared dependency
        from .errors import MissingExtra

        raise MissingExtra("reading XLSX needs fastexcel: pip install fastexcel") from None
    try:
        reader = fastexcel.read_excel(str(path))
        names = list(reader.sheet_names)
    except Exception as e:  # fastexcel raises its own types for broken workbooks
        raise _unreadable(path, e) from None
    if not names:
        raise InputError(f"{path}: the workbook has no sheets")
    sheet = _sheet_named(path, sheet, names) if sheet is not None else names[0]
    try:
        with _quiet_stderr():  # skip_rows=0: from the sheet's first row, not from its first cell with a value
            cells, errors = reader.load_sheet(sheet, header_row=None, dtypes="string", skip_rows=0).to_arrow_with_errors()
    except Exception as e:
        raise _unreadable(path, e) from None
    if errors is not None and errors.errors:
        cells = _with_error_texts(cells, errors.errors)
    filled = _filled(cells)
    return _at(tuple(names), sheet, cells, filled[0] if filled else 0, filled)


#: Rows with a value, from the top, in which a header is looked for (a title and notes above it).
HEADER_SEARCH = 10


def _at(names: tuple[str, ...], sheet: str, cells: pa.RecordBatch, top: int, filled: tuple[int, ...]) -> Sheet:
    """The sheet read with its header on row ``top`` (from 0)."""
    first = cells.slice(top, 1).to_pylist()
    stripped = [(c or "").strip() for c in (first[0].values() if first else [])]
    header = name_empty(stripped)
    rows = _trimmed(pa.Table.from_batches([cells.slice(top + 1)]).rename_columns(list(header)))
    return Sheet(names, sheet, header, rows, top + 1, header_problem(stripped), cells, filled)


def _trimmed(rows: pa.Table) -> pa.Table:
    """Cells without the whitespace around them, line breaks and tabs too: a cell ends in a line break
    after Alt+Enter, which no one sees (the import's own trim, for CSV too, takes spaces only)."""
    import pyarrow.compute as pc  # here: loading it costs every import 0.04 s

    return pa.table([pc.utf8_trim_whitespace(c) for c in rows.columns], names=rows.column_names)


def _filled(cells: pa.RecordBatch) -> tuple[int, ...]:
    """The first ``HEADER_SEARCH`` rows (from 0) with a value in any cell."""
    import numpy as np
    import pyarrow.compute as pc

    head = cells.slice(0, 10_000)  # where a header is: a sheet may have a million formatted rows below
    any_value = np.zeros(head.num_rows, bool)
    for c in head.columns:
        any_value |= pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(c), ""), False).to_numpy(zero_copy_only=False)
    return tuple(int(i) for i in np.flatnonzero(any_value)[:HEADER_SEARCH])


def _with_error_texts(cells: pa.RecordBatch, errors) -> pa.RecordBatch:
    """Each Excel error cell (read as empty) with the text the cell shows."""
    columns = [c.to_pylist() if any(e.position[1] == i for e in errors) else c for i, c in enumerate(cells.columns)]
    for e in errors:
        kind = _ERROR.search(e.detail)
        if kind is not None:
            row, col = e.position
            columns[col][row] = _ERROR_TEXT.get(kind.group(1), "#" + kind.group(1).upper())
    arrays = [pa.array(c, pa.string()) if isinstance(c, list) else c for c in columns]
    return pa.RecordBatch.from_arrays(arrays, names=cells.schema.names)


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null: fastexcel's Rust core writes "'chartsheet' not a valid
    worksheet" there for a chart sheet, which the sheet search (``isu.importer.choose_source``)
    looks at like any other; a person would take the line for an error."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _sheet_named(path: Path, sheet: str, names: list[str]) -> str:
    """The workbook's sheet called ``sheet``, letter case aside (as Excel names them)."""
    if sheet in names:
        return sheet
    same = [n for n in names if n.casefold() == sheet.casefold()]
    if len(same) == 1:
        return same[0]
    raise InputError(mask_ids(f"{path}: the workbook has no sheet {sheet!r} (it has {', '.join(map(repr, names))})"))


def _unreadable(path: Path, e: Exception) -> InputError:
    return InputError(f"{path}: cannot read the workbook ({type(e).__name__}: {str(e).splitlines()[0][:200]})")
