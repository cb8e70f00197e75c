"""XLSX exports: a sheet read once, by fastexcel, into an Arrow table of strings.

fastexcel parses a whole sheet for any part of it (its header row too), so a sheet is parsed once
and what the importer needs is taken from those cells: the header (the sheet's first row with a
value: rows above it are blank, and rejects count rows as the sheet shows them), the rows below it,
and the Excel error cells (``#N/A``, ``#DIV/0!``), which fastexcel reads as empty. Those of the
columns a profile reads get their text back (``Sheet.shown``), so that a check rejects them as the
cell shows them instead of taking them for blanks.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyarrow as pa

from .errors import InputError
from .headers import header_problem, name_empty
from .pseudonym import mask_ids
from .trim import trim_columns

__all__ = ["Sheet", "is_workbook", "read_sheet"]


@dataclass(frozen=True)
class Sheet:
    names: tuple[str, ...]  # every sheet of the workbook
    name: str  # this sheet's
    header: tuple[str, ...]
    header_row: int  # the header's row as the sheet shows it (from 1)
    problem: str | None  # why the header cannot be read by (``isu.headers.header_problem``), if it cannot
    cells: pa.RecordBatch = field(compare=False, repr=False)  # the whole sheet from its row 1
    filled: tuple[int, ...] = ()  # the first rows with a value (from 0): where a header may be
    errors: tuple[tuple[int, int, str], ...] = ()  # Excel error cells of ``cells``: (row, column, the text shown)
    hidden: frozenset[str] = frozenset()  # the workbook's hidden sheets (Excel shows them only when asked to)

    @property
    def others(self) -> tuple[str, ...]:
        """The workbook's other sheets, those Excel shows first: where the export may be instead."""
        rest = [n for n in self.names if n != self.name]
        return tuple(n for n in rest if n not in self.hidden) + tuple(n for n in rest if n in self.hidden)

    @cached_property
    def rows(self) -> pa.Table:
        """The rows below the header, as strings, named by the header (made when asked for: the
        header search looks at several rows of a sheet)."""
        if not self.header:
            return pa.table({})
        return _trimmed(pa.Table.from_batches([self.cells.slice(self.header_row)]).rename_columns(list(self.header)))

    def shown(self, columns: set[str]) -> pa.Table:
        """``rows`` with the error cells of ``columns`` (those a profile reads) as they show: a
        column no one reads may hold a helper formula filled down past the data (``#N/A`` in empty
        rows), and such rows stay empty rows."""
        read = {i for i, name in enumerate(self.header) if name in columns}
        below = [(r - self.header_row, c, text) for r, c, text in self.errors if r >= self.header_row and c in read]
        return _with_texts(self.rows, below) if below else self.rows

    def at_row(self, row: int) -> Sheet:
        """The same sheet with its header on ``row`` (from 1): a title or notes above the table."""
        return _at(self.names, self.name, self.cells, row - 1, self.filled, self.errors, self.hidden)

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
    """The sheet called ``sheet`` (letter case aside; default: the first that Excel shows, as a
    hidden sheet often holds the lists behind a form's drop-downs, or an old copy)."""
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
    hidden = _hidden_sheets(path) & set(names)
    shown_first = [n for n in names if n not in hidden] or names
    sheet = _sheet_named(path, sheet, names) if sheet is not None else shown_first[0]
    try:
        with _quiet_stderr():  # skip_rows=0: from the sheet's first row, not from its first cell with a value
            cells, errors = reader.load_sheet(sheet, header_row=None, dtypes="string", skip_rows=0).to_arrow_with_errors()
    except Exception as e:
        raise _unreadable(path, e) from None
    shown = tuple((e.position[0], e.position[1], _error_text(e.detail)) for e in (errors.errors if errors is not None else ()))
    filled = _filled(cells)
    return _at(tuple(names), sheet, cells, filled[0] if filled else None, filled, tuple(e for e in shown if e[2]), hidden)


#: Rows with a value, from the top, in which a header is looked for (a title and notes above it).
HEADER_SEARCH = 10


def _at(names: tuple[str, ...], sheet: str, cells: pa.RecordBatch, top: int | None, filled: tuple[int, ...],
        errors: tuple[tuple[int, int, str], ...], hidden: frozenset[str] = frozenset()) -> Sheet:
    """The sheet read with its header on row ``top`` (from 0; None: the sheet has no value at all)."""
    if top is None:  # an empty sheet (or one of blanks): no header, no rows
        return Sheet(names, sheet, (), 1, None, cells, filled, errors, frozenset(hidden))
    first = cells.slice(top, 1).to_pylist()[0]
    texts = {c: text for r, c, text in errors if r == top}  # an error in a header cell names its column
    stripped = [(texts.get(i) or v or "").strip() for i, v in enumerate(first.values())]
    return Sheet(names, sheet, name_empty(stripped), top + 1, header_problem(stripped), cells, filled, errors, frozenset(hidden))


def _trimmed(rows: pa.Table) -> pa.Table:
    """Cells without the whitespace around them, line breaks and tabs too: a cell ends in a line break
    after Alt+Enter, which no one sees (``isu.trim``, as a CSV's cells)."""
    return trim_columns(rows)


def _filled(cells: pa.RecordBatch) -> tuple[int, ...]:
    """The first ``HEADER_SEARCH`` rows (from 0) with a value in any cell."""
    import numpy as np
    import pyarrow.compute as pc

    head = cells.slice(0, 10_000)  # where a header is: a sheet may have a million formatted rows below
    any_value = np.zeros(head.num_rows, bool)
    for c in head.columns:
        any_value |= pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(c), ""), False).to_numpy(zero_copy_only=False)
    return tuple(int(i) for i in np.flatnonzero(any_value)[:HEADER_SEARCH])


def _error_text(detail: str) -> str | None:
    """The text an error cell shows, from fastexcel's account of it ("... got 'Error(NA)'")."""
    kind = _ERROR.search(detail)
    return None if kind is None else _ERROR_TEXT.get(kind.group(1), "#" + kind.group(1).upper())


def _with_texts(rows: pa.Table, cells: list[tuple[int, int, str]]) -> pa.Table:
    """``rows`` with the given (row, column index, text) cells set."""
    columns = {c: rows.column(c).to_pylist() for c in {c for _, c, _ in cells}}
    for r, c, text in cells:
        columns[c][r] = text
    return pa.table([pa.array(columns[i], pa.string()) if i in columns else col for i, col in enumerate(rows.columns)],
                    names=rows.column_names)


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null: fastexcel's Rust core writes "'chartsheet' not a valid
    worksheet" there for a chart sheet, which the sheet search (``isu.profile_choice.choose_source``)
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


def _hidden_sheets(path: Path) -> frozenset[str]:
    """Names of the sheets the workbook hides (``state="hidden"`` or ``"veryHidden"`` in
    xl/workbook.xml; fastexcel tells it only of a sheet already parsed whole). Unreadable: none."""
    import zipfile
    from xml.etree import ElementTree

    try:
        with zipfile.ZipFile(path) as z:
            root = ElementTree.fromstring(z.read("xl/workbook.xml"))
    except (KeyError, OSError, zipfile.BadZipFile, ElementTree.ParseError):
        return frozenset()
    return frozenset(e.get("name", "") for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "sheet"
                     and e.get("state", "visible") != "visible")


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
