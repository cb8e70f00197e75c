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
from pathlib import Path

import duckdb

from isu.schemas import Profile

from .catalogue import message
from .contract import measurement_fields, record_fields
from .pseudonym import mask

__all__ = ["Reject", "collect", "count_by_type", "store", "write_file", "mask_ids"]

_ID = re.compile(r"(?<!\d)(\d{6}|\d{8})[-+]?\d{4}(?!\d)")


@dataclass(frozen=True)
class Reject:
    row: int
    column: str
    value: str | None
    type: str
    message: str


def mask_ids(value: str | None) -> str | None:
    return None if value is None else _ID.sub(lambda m: mask(m.group(0)), value)


def _field_of(profile: Profile, column: str) -> str | None:
    """The contract field a source column feeds (for pydantic's explanation)."""
    for f, c in profile.columns.items():
        if c == column:
            return f
    for f, c in profile.long.items():
        if c == column:
            return f
    for g in profile.groups:
        for spec in g.timepoints.values():
            if spec.get("value") == column:
                return "value"
            if spec.get("date") == column:
                return "measured_on"
    return None


def _detail(profile: Profile, type_: str, column: str, value: str | None) -> str:
    field = _field_of(profile, column)
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


def collect(con: duckdb.DuckDBPyConnection, malformed: list[tuple[int, str]], profile: Profile) -> list[Reject]:
    lines = sorted(line for line, _ in malformed)
    out = [Reject(line, "", None, "malformed_row", message("malformed_row", row=line, column=None, value=None, detail=kind.lower()))
           for line, kind in malformed]
    rows = con.execute("SELECT _row, _errors FROM _stage WHERE len(_errors) > 0 ORDER BY _row").fetchall()
    for ordinal, errors in rows:
        row = _line_of(ordinal, lines)
        for e in errors:
            value = mask_ids(e["value"])
            detail = _detail(profile, e["type"], e["column"], value)
            out.append(Reject(row, e["column"], value, e["type"], message(e["type"], row=row, column=e["column"], value=value, detail=detail)))
    return sorted(out, key=lambda r: (r.row, r.column))


def count_by_type(rejects: list[Reject]) -> dict[str, int]:
    return dict(sorted(Counter(r.type for r in rejects).items()))


def store(con: duckdb.DuckDBPyConnection, import_id: int, rejects: list[Reject]) -> None:
    if rejects:
        con.executemany("INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
                        [(import_id, r.row, r.column, r.value, r.type, r.message) for r in rejects])


def write_file(rejects: list[Reject], path: Path) -> Path:
    """CSV (UTF-8 with BOM, semicolon: opens in Swedish Excel) or XLSX by the path's suffix."""
    header = ["row", "column", "value", "error_type", "message"]
    data = [[r.row, r.column, r.value, r.type, r.message] for r in rejects]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        import xlsxwriter

        wb = xlsxwriter.Workbook(str(path))
        ws = wb.add_worksheet("rejects")
        ws.write_row(0, 0, header)
        for i, row in enumerate(data, start=1):
            ws.write_row(i, 0, row)
        wb.close()
    else:
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f, delimiter=";")
            w.writerow(header)
            w.writerows(data)
    return path
