"""Plant bad rows, each wrong for exactly one reason, and note where they are.

Real exports carry typos and system quirks; the importer must reject exactly those rows and say
why. Each fault kind below spoils one otherwise valid row in one way. Faults go only on rows that
are their record's only row (a T0-only record), so that a rejected row is a rejected record in
both shapes and no other measurement of the record is dragged along. ``duplicate_key`` adds a
second, later row with the same key (record key in wide files, record key + time point +
instrument in long files); the importer rejects every occurrence, as it cannot tell which is right.
Each fault maps to the importer's error type (``isu.catalogue``): ``error_type``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from isu.schemas import code_list

from .person_ids import corrupt_check_digit
from .render import FileSpec, Row, code_text

__all__ = ["KINDS", "ERROR_TYPES", "error_type", "plant", "UNKNOWN_NEED_AREAS", "UNKNOWN_INTERVENTION_CODES"]

#: Every kind of planted fault, in the order files receive them.
KINDS = (
    "invalid_person_id", "unknown_need_area", "date_order", "out_of_range",
    "invalid_date", "unknown_intervention_code", "duplicate_key", "missing_value",
)
#: The importer's error type (``isu.catalogue``) for each fault kind; see ``error_type`` for the exceptions.
ERROR_TYPES = {
    "invalid_person_id": "invalid_person_id", "unknown_need_area": "not_in_code_list", "date_order": "date_order",
    "out_of_range": "out_of_range", "invalid_date": "bad_date", "unknown_intervention_code": "unknown_intervention_code",
    "duplicate_key": "duplicate_key", "missing_value": "missing_value",
}
UNKNOWN_NEED_AREAS = ("Fritid", "Ekonomi", "Övrigt")
UNKNOWN_INTERVENTION_CODES = ("KBT", "HVB9", "STOD2", "FAM-X")
_IMPOSSIBLE_DAYS = ((2, 30), (4, 31), (13, 1), (6, 31), (2, 29))  # (2, 29) only in non-leap years


def error_type(kind: str, field: str | None = None, shape: str = "wide") -> str:
    """The error type an importer reports for fault ``kind`` on contract ``field`` in a ``shape`` file."""
    if kind == "duplicate_key" and shape == "long":
        return "duplicate_measurement"
    if kind == "missing_value" and field == "person_id":
        return "missing_identity"
    return ERROR_TYPES[kind]


def _impossible_date(year: int, rng: np.random.Generator, fmt: str) -> str:
    choices = [md for md in _IMPOSSIBLE_DAYS if md != (2, 29) or year % 4]
    m, d = choices[int(rng.integers(len(choices)))]
    return fmt.replace("%Y", f"{year:04d}").replace("%m", f"{m:02d}").replace("%d", f"{d:02d}")


def _out_of_range(instrument: str, rng: np.random.Generator) -> float:
    row = code_list("instruments").row(instrument)
    lo, hi = float(row["min"]), float(row["max"])
    step = (hi - lo) / 4 if hi - lo <= 1 else float(rng.integers(1, 3))
    return round(hi + step if rng.random() < 0.75 else lo - step, 3)


def _other_valid(instrument: str, value: float) -> float:
    row = code_list("instruments").row(instrument)
    lo, hi = float(row["min"]), float(row["max"])
    step = 1.0 if hi - lo > 1 else 0.1
    return round(value + step if value + step <= hi else value - step, 3)


def _spoil(kind: str, row: Row, spec: FileSpec, rng: np.random.Generator) -> str:
    """Apply fault ``kind`` to ``row`` in place; return the contract field (or column) it concerns."""
    col, cells = spec.profile.columns, row.cells
    if kind == "invalid_person_id":
        cells[col["person_id"]] = corrupt_check_digit(cells[col["person_id"]], int(rng.integers(1, 10)))
        return "person_id"
    if kind == "unknown_need_area":
        cells[col["need_area"]] = UNKNOWN_NEED_AREAS[int(rng.integers(len(UNKNOWN_NEED_AREAS)))]
        return "need_area"
    if kind == "date_order":
        cells[col["ended_on"]] = cells[col["started_on"]] - timedelta(days=int(rng.integers(3, 120)))
        if "end_reason" in col and cells.get(col["end_reason"]) is None:
            cells[col["end_reason"]] = code_text(spec, "end_reason", "client_ended")
        return "ended_on"
    if kind == "out_of_range":
        column, instrument = row.t0_values[int(rng.integers(len(row.t0_values)))]
        cells[column] = _out_of_range(instrument, rng)
        return column
    if kind == "invalid_date":
        fld = "ended_on" if cells.get(col["ended_on"]) is not None and rng.random() < 0.5 else "started_on"
        fmt = spec.date_format if spec.format == "csv" else "%Y-%m-%d"
        cells[col[fld]] = _impossible_date(cells[col[fld]].year, rng, fmt)
        return fld
    if kind == "unknown_intervention_code":
        cells[col["intervention_code"]] = UNKNOWN_INTERVENTION_CODES[int(rng.integers(len(UNKNOWN_INTERVENTION_CODES)))]
        return "intervention_code"
    if kind == "missing_value":
        fld = ("need_area", "started_on", "person_id")[int(rng.integers(3))]
        cells[col[fld]] = None
        return fld
    raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")


def plant(spec: FileSpec, rows: list[Row], rng: np.random.Generator) -> list[Row]:
    """The rows with ``spec.faults`` planted (one row each, two for a duplicate); spoilt rows carry
    ``fault``: kind, error type, column, and for a duplicate the other occurrence."""
    eligible = [i for i, r in enumerate(rows) if r.eligible]
    if len(eligible) < len(spec.faults):
        raise ValueError(f"{spec.file}: only {len(eligible)} rows can take a fault, {len(spec.faults)} wanted")
    targets = sorted(rng.choice(eligible, size=len(spec.faults), replace=False).tolist())
    kinds = [spec.faults[int(k)] for k in rng.permutation(len(spec.faults))]
    inserts: list[tuple[int, Row]] = []
    prof = spec.profile
    for i, kind in zip(targets, kinds):
        row = rows[i]
        if kind == "duplicate_key":
            column, instrument = row.t0_values[0]
            copy = replace(row, cells=dict(row.cells), eligible=False)
            copy.cells[column] = _other_valid(instrument, row.cells[column])
            where = prof.long["timepoint"] if prof.shape == "long" else prof.columns["record_key"]
            fault = {"kind": kind, "type": error_type(kind, None, prof.shape), "column": where}
            row.fault, copy.fault = dict(fault, duplicate_of=copy), dict(fault, duplicate_of=row)
            inserts.append((int(rng.integers(i + 1, len(rows) + 1)), copy))
        else:
            fld = _spoil(kind, row, spec, rng)
            row.fault = {"kind": kind, "type": error_type(kind, fld, prof.shape), "column": prof.columns.get(fld, fld)}
    out = list(rows)
    for pos, copy in sorted(inserts, key=lambda t: -t[0]):
        out.insert(pos, copy)
    return out
