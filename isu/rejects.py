"""Rejected rows: explained, masked, counted, stored in ``rejects`` and written to a file a person can open.

Each reject is (row, column, masked value, error type, message). The row is the row number as a
spreadsheet shows it (header = row 1). Values are masked wherever they could carry a person id:
the id column always, and any digit run shaped like a personnummer in any column.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb

from isu.schemas import Profile

from .catalogue import message
from .contract import measurement_fields, record_fields
from .pseudonym import mask_ids

__all__ = ["Pending", "Reject", "collect", "count_by_type", "default_path", "mask_ids", "pending", "preview", "store", "write_file"]



@dataclass(frozen=True)
class Reject:
    row: int
    column: str
    value: str | None
    type: str
    message: str


def _field_of(profile: Profile, column: str) -> str | None:
    """The contract field a source column feeds (for pydantic's explanation)."""
    for f, c in profile.columns.items():
        if c == column:
            return f
    for f, c in profile.long.items():
        if c == column:
            return f
    for g in profile.groups:
        if g.instrument_column == column:
            return "instrument"
        for spec in g.timepoints.values():
            if spec.get("value") == column:
                return "value"
            if spec.get("date") == column:
                return "measured_on"
    return None


def _detail(profile: Profile, type_: str, column: str, value: str | None, municipality: str | None = None) -> str:
    if type_ == "municipality_mismatch":
        return municipality or ""
    if type_ == "bad_date":  # Excel shows a date cell formatted as General as its serial number (45352 is 2024-03-01)
        return "; it looks like an Excel date number: format the column as a date in Excel" if _SERIAL.fullmatch(value or "") else ""
    if type_ == "conflicting_record":  # the value as read (a code, a date), not the cell's text: said so
        return f" (this row reads as {value!r})" if value is not None else ""
    if type_ == "invalid_person_id" and value == "*" * 9:  # masked: nine digits and nothing else
        return (_explain(None, type_, value) + "; nine digits: Excel drops the leading zero of an id born 2000-2009 "
                "that is stored as a number, so format the column as text in Excel and export again")
    if type_ == "out_of_range" and column == profile.columns.get("person_id"):
        return "the birth year it gives is outside the contract's range"
    return _explain(_field_of(profile, column), type_, value)


@lru_cache(maxsize=65536)
def _explain(field: str | None, type_: str, value: str | None) -> str:
    """Pydantic's explanation of one failing value (cached: rejects repeat themselves)."""
    spec = record_fields().get(field) or measurement_fields().get(field) if field else None
    if type_ == "invalid_person_id":
        return "check digit or date of birth is wrong, or not 10/12 digits"
    if spec is None or value is None or type_ not in ("not_in_code_list", "out_of_range", "bad_format"):
        return ""
    candidate: object = value
    if spec.kind == "int":
        candidate = int(value) if value.lstrip("-").isdigit() else value
    elif spec.kind == "float":
        try:
            candidate = float(value.replace(",", "."))
        except ValueError:
            pass
    if type_ == "out_of_range" and field == "value":
        return "outside the instrument's range"
    return spec.explain(candidate) if spec.kind != "date" else spec.explain(value)


def _line_of(ordinal: int, malformed_lines: list[int]) -> int:
    """Spreadsheet row of the ``ordinal``-th parsed data row, counting malformed rows between."""
    row = ordinal + 1
    for line in malformed_lines:
        if line <= row:
            row += 1
    return row


#: An Excel date serial number of the years 1927-2064 (10,000-59,999), as a General cell shows it.
_SERIAL = re.compile(r"[1-5]\d{4}(?:[.,]\d+)?")
#: Characters of a value shown in a reject (the rest is said to be there).
MAX_VALUE = 200
#: A failed check as staged: (ordinal of the parsed row, column, error type, masked value).
Pending = tuple[int, str, str, str | None]


def pending(run) -> list[Pending]:
    """Every failed check of the rejected rows of ``_isu_stage`` (``run``: ``isu.stage.Stage.run``),
    values masked at once (the stage holds raw values; what leaves it is masked)."""
    rows = run("SELECT _row, err.column, err.type, err.value FROM "
               "(SELECT _row, unnest(_rejects) AS err FROM _isu_stage WHERE NOT _ok)")
    return [(int(o), c, t, mask_ids(v)) for o, c, t, v in rows]


def collect(found: list[Pending], malformed: list[tuple[int, str]], profile: Profile,
            municipality: str | None = None, *, blank: list[int] = (), header_row: int = 1) -> list[Reject]:
    """The failed checks explained, plus the malformed lines, sorted by row. Row numbers need every
    malformed line of the file, and its empty lines (``blank``: rows too, to a spreadsheet), so
    this runs after the whole scan. ``header_row``: the header's row (a sheet's may have blank rows above it)."""
    lines = sorted([line for line, _ in malformed] + list(blank))
    out = [Reject(line, "", None, "malformed_row", message("malformed_row", row=line, column=None, value=None, detail=kind.lower()))
           for line, kind in malformed]
    for ordinal, column, type_, value in sorted(found, key=lambda f: f[0]):
        row = (_line_of(ordinal, lines) if lines else ordinal + 1) + header_row - 1
        if value is not None and len(value) > MAX_VALUE:  # a 100,000-character cell would make a file nobody opens
            value = value[:MAX_VALUE] + f"… ({len(value):,} characters)"
        detail = _detail(profile, type_, column, value, municipality)
        if type_ == "conflicting_record":
            value = None  # the value column shows cells as written; this one is only known as read
        out.append(Reject(row, column, value, type_, message(type_, row=row, column=column, value=value, detail=detail)))
    return sorted(out, key=lambda r: (r.row, r.column))


def count_by_type(rejects: list[Reject]) -> dict[str, int]:
    return dict(sorted(Counter(r.type for r in rejects).items()))


#: Rejects shown in a check's summary when no rejects file is written.
PREVIEW = 10


def preview(rejects: list[Reject], n: int = PREVIEW) -> list[dict]:
    """The first ``n`` rejects as the rejects file has them (values already masked)."""
    return [{"row": r.row, "column": r.column, "value": r.value, "error_type": r.type, "message": r.message} for r in rejects[:n]]


def default_path(folder: Path, export: Path, sha256: str) -> Path:
    """``folder/EXPORT.rejects.csv``. A file the toolkit names itself never carries a person id, so
    that the path it prints (masked, as all output is) is the file's real path: an export named after
    a person (``19870127-4832.csv``) gets ``xxxxxxxx-xxxx.<first 8 hex digits of its SHA-256>.rejects.csv``
    ('x', not the mask's '*', which Windows does not allow in a file name; the hash keeps two such
    exports apart, and ``isu status`` shows it beside the import)."""
    stem = export.stem
    masked = mask_ids(stem)
    if masked != stem:
        stem = f"{masked.replace('*', 'x')}.{sha256[:8]}"
    return folder / f"{stem}.rejects.csv"


def store(con: duckdb.DuckDBPyConnection, import_id: int, rejects: list[Reject]) -> None:
    """Bulk insert through Arrow (``executemany`` would take minutes for a million rejects)."""
    if not rejects:
        return
    import pyarrow as pa

    table = pa.table({
        "import_id": pa.array([import_id] * len(rejects), pa.int32()),
        "row_number": pa.array([r.row for r in rejects], pa.int64()),
        "column_name": [r.column for r in rejects],
        "value_masked": [r.value for r in rejects],
        "error_type": [r.type for r in rejects],
        "message": [r.message for r in rejects],
    })
    con.register("_isu_rejects", table)
    try:
        con.execute("INSERT INTO rejects SELECT * FROM _isu_rejects")
    finally:
        con.unregister("_isu_rejects")


def write_file(rejects: list[Reject], path: Path) -> Path:
    """CSV (UTF-8 with BOM, semicolon: opens in Swedish Excel) or XLSX by the path's suffix.

    CSV through the standard library: importing polars for it took 0.2 s of every import
    that had a reject."""
    header = ("row", "column", "value", "error_type", "message")
    path.parent.mkdir(exist_ok=True)  # its own folder only: a missing tree is refused before the import (a typo)
    if path.suffix.lower() == ".xlsx":
        import polars as pl

        columns = list(zip(*[(r.row, r.column, r.value, r.type, r.message) for r in rejects])) or [()] * 5
        frame = pl.DataFrame(dict(zip(header, map(list, columns))),
                             schema={"row": pl.Int64, "column": pl.String, "value": pl.String, "error_type": pl.String, "message": pl.String})
        frame.write_excel(path, worksheet="rejects", autofit=True)
        return path
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";", lineterminator="\r\n")  # Excel's line ends; a field holding \r is quoted
        out.writerow(header)
        out.writerows((r.row, _as_text(r.column), _as_text(r.value), r.type, _as_text(r.message)) for r in rejects)
    return path


#: What makes a spreadsheet read a CSV cell as a formula (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text(cell: str | None) -> str | None:
    """A cell of the export as text when the rejects file is opened in Excel: a value such as
    ``=HYPERLINK(...)`` from the export would otherwise run as a formula there. A leading ``'``
    makes Excel show the rest as it is."""
    return "'" + cell if cell and cell.startswith(_FORMULA_START) else cell
