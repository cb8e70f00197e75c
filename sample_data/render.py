"""Lay simulated records out as an export file: the columns and value codes of an import profile.

The profile (``schemas/profiles/*.toml``) decides everything about the layout: which source column
holds which contract field, wide (one row per record, T0/T1/T2 columns) or long (one row per
measurement), and how values are coded (``[values.*]`` tables, read backwards here). Code fields
without such a table are written as the Swedish label (or code), which the importer accepts.
Cells stay typed (``str``, ``date``, ``float`` or ``None``) until a writer formats them, so a
CSV gets the file's date format and decimal separator and an XLSX gets real date and number cells.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import xlsxwriter

from isu.schemas import Profile, code_list

from .model import EXPORT_DATE
from .simulate import Record

__all__ = ["FileSpec", "Row", "render", "header", "code_text", "to_csv_bytes", "write_xlsx", "format_number", "RAW_SKIP"]

Cell = str | date | float | None

#: Contract fields a raw export leaves out: the person id carries birth year and sex, the
#: category follows from the intervention code, and there is no pseudonym before import.
RAW_SKIP = ("client", "birth_year", "category")
#: Code fields written as the code itself rather than a label (as case systems print them).
AS_CODE = ("municipality", "legal_basis", "intervention_code", "instrument")
_CODE_LISTS = {"need_area": "need_areas", "legal_basis": "legal_bases", "provider": "providers",
               "end_reason": "end_reasons", "sex": "sexes", "goal_attainment": "goal_attainment",
               "timepoint": "timepoints"}


@dataclass(frozen=True)
class FileSpec:
    """One export file: whose, which profile, and the file-level conventions of its case system."""

    file: str
    municipality: str
    pool: str
    profile: Profile
    format: str  # "csv" or "xlsx"
    encoding: str | None  # Python codec, "utf-8-sig" for UTF-8 with BOM
    delimiter: str | None
    date_format: str  # for CSV cells and for planted bad date text
    key_format: str  # str.format over year, episode, part, code
    id_forms: dict[str, float]
    lower_labels: bool = False
    newline: str = "\r\n"
    faults: tuple[str, ...] = ()


@dataclass
class Row:
    """One data row, with what the fault planter needs to know about it."""

    cells: dict[str, Cell]
    record: Record
    t0_values: list[tuple[str, str]] = field(default_factory=list)  # (column, instrument)
    eligible: bool = False  # the record's only row, T0 only, not a mover: safe to spoil
    fault: dict | None = None


def code_text(spec: FileSpec, fld: str, code: str | None) -> str | None:
    """How the file writes ``code`` of field ``fld``: the profile's source value, a label, or the code."""
    if code is None:
        return None
    inverse = {v: k for k, v in spec.profile.values.get(fld, {}).items()}
    if code in inverse:
        return inverse[code]
    if fld in AS_CODE or fld not in _CODE_LISTS:
        return code
    text = code_list(_CODE_LISTS[fld]).label(code, "sv")
    return text.lower() if spec.lower_labels else text


def _record_cells(spec: FileSpec, r: Record, rng: np.random.Generator) -> dict[str, Cell]:
    forms = list(spec.id_forms)
    p = np.array([spec.id_forms[f] for f in forms])
    values = {
        "municipality": r.municipality,
        "record_key": spec.key_format.format(year=r.started_on.year, episode=r.episode, part=r.part, code=r.municipality),
        "person_id": r.person.format(forms[int(rng.choice(len(forms), p=p / p.sum()))]),
        "sex": code_text(spec, "sex", r.person.sex),
        "started_on": r.started_on,
        "ended_on": r.ended_on,
    }
    for fld in ("need_area", "intervention_code", "legal_basis", "provider", "end_reason", "goal_attainment"):
        values[fld] = code_text(spec, fld, getattr(r, fld))
    return {col: values[fld] for fld, col in spec.profile.columns.items() if fld not in RAW_SKIP}


def header(spec: FileSpec) -> list[str]:
    prof = spec.profile
    cols = [c for f, c in prof.columns.items() if f not in RAW_SKIP]
    if prof.shape == "long":
        return cols + [prof.long[f] for f in ("timepoint", "instrument", "measured_on", "value") if f in prof.long]
    for g in prof.groups:
        cols += [g.instrument_column] if g.instrument_column else []
        cols += [c for tp in g.timepoints.values() for c in (tp.get("value"), tp.get("date")) if c]
    return list(dict.fromkeys(cols))


def _wide(spec: FileSpec, r: Record, base: dict[str, Cell]) -> list[Row]:
    row = Row(dict(base), r)
    for g in spec.profile.groups:
        instruments = sorted({m.instrument for m in r.measurements})
        ins = g.instrument or instruments[0]
        if g.instrument_column:
            if len(instruments) != 1:
                raise ValueError(f"profile {spec.profile.name}: one instrument per row, record has {instruments}")
            row.cells[g.instrument_column] = ins
        by_tp = {m.timepoint: m for m in r.measurements if m.instrument == ins}
        for tp, cols in g.timepoints.items():
            m = by_tp.get(tp)
            row.cells[cols["value"]] = m.value if m else None
            if cols.get("date"):
                row.cells[cols["date"]] = m.measured_on if m else row.cells.get(cols["date"])
            if m and tp == "T0":
                row.t0_values.append((cols["value"], ins))
    return [row]


def _long(spec: FileSpec, r: Record, base: dict[str, Cell]) -> list[Row]:
    col = spec.profile.long
    rows = []
    for m in r.measurements:
        cells = dict(base)
        cells[col["timepoint"]] = code_text(spec, "timepoint", m.timepoint)
        cells[col["instrument"]] = m.instrument
        if "measured_on" in col:
            cells[col["measured_on"]] = m.measured_on
        cells[col["value"]] = m.value
        rows.append(Row(cells, r, [(col["value"], m.instrument)] if m.timepoint == "T0" else []))
    return rows


def render(spec: FileSpec, records: list[Record], rng: np.random.Generator) -> list[Row]:
    """All data rows of the file, in record order."""
    out = []
    for r in records:
        rows = (_long if spec.profile.shape == "long" else _wide)(spec, r, _record_cells(spec, r, rng))
        if len(rows) == 1 and r.timepoints == {"T0"} and not r.mover:
            rows[0].eligible = True
        out += rows
    return out


def format_number(v: float, decimal: str) -> str:
    """Up to three decimals, trailing zeros dropped, with the file's decimal separator."""
    text = f"{v:.3f}".rstrip("0").rstrip(".")
    return text.replace(".", decimal)


def to_csv_bytes(spec: FileSpec, rows: list[Row]) -> bytes:
    cols = header(spec)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=spec.delimiter, lineterminator=spec.newline)
    w.writerow(cols)

    def fmt(c: Cell) -> str:
        if c is None:
            return ""
        if isinstance(c, date):
            return c.strftime(spec.date_format)
        if isinstance(c, float):
            return format_number(c, spec.profile.decimal)
        return c

    w.writerows([fmt(row.cells.get(c)) for c in cols] for row in rows)
    return buf.getvalue().encode(spec.encoding)


def write_xlsx(spec: FileSpec, rows: list[Row], path) -> None:
    """Real date and number cells; the workbook's timestamp is fixed so the bytes are reproducible."""
    cols = header(spec)
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": datetime.combine(EXPORT_DATE, datetime.min.time()), "title": "Uppföljning"})
    ws = wb.add_worksheet("Uppföljning")
    bold, day = wb.add_format({"bold": True}), wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, cols, bold)
    ws.set_column(0, len(cols) - 1, 14)
    for i, row in enumerate(rows, 1):
        for j, c in enumerate(cols):
            v = row.cells.get(c)
            if isinstance(v, date):
                ws.write_datetime(i, j, datetime.combine(v, datetime.min.time()), day)
            elif isinstance(v, float):
                ws.write_number(i, j, v)
            elif v is not None:
                ws.write_string(i, j, v)
    wb.close()
