"""The error catalogue: every reason a row can be rejected, with a stable type and a message template.

After frictionless: errors are collected into a report, not raised one at a time. ``type`` is
stable (scripts and the ``rejects`` table rely on it); ``title`` names it for people; the message
template is filled with the row, column and (masked) value, and a detail from pydantic or
python-stdnum where they explain more.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ErrorType", "CATALOGUE", "message"]


@dataclass(frozen=True)
class ErrorType:
    type: str
    title: str
    template: str


CATALOGUE: dict[str, ErrorType] = {
    e.type: e
    for e in (
        ErrorType("malformed_row", "Malformed row", "row {row}: not a row of the header's columns: {detail}"),
        ErrorType("missing_value", "Missing value", "row {row}, column {column}: a value is required"),
        ErrorType("not_in_code_list", "Unknown code", "row {row}, column {column}: {value!r} is not a known code ({detail})"),
        ErrorType("bad_date", "Not a date", "row {row}, column {column}: {value!r} is not a date (use 2024-03-01 or 20240301){detail}"),
        ErrorType("bad_number", "Not a number", "row {row}, column {column}: {value!r} is not a number"),
        ErrorType("bad_integer", "Not a whole number", "row {row}, column {column}: {value!r} is not a whole number"),
        ErrorType("out_of_range", "Out of range", "row {row}, column {column}: {value!r} is out of range ({detail})"),
        ErrorType("bad_format", "Wrong format", "row {row}, column {column}: {value!r} has the wrong format ({detail})"),
        ErrorType("date_order", "Dates in wrong order", "row {row}, column {column}: {value!r} is before the start date"),
        ErrorType("invalid_person_id", "Invalid person id", "row {row}, column {column}: {value!r} is not a valid personnummer or samordningsnummer ({detail})"),
        ErrorType("id_in_key", "Person id in key", "row {row}, column {column}: the key {value!r} looks like a person id; export the case system's own key instead"),
        ErrorType("missing_identity", "No client identity", "row {row}, column {column}: empty; every row needs a person id or a pseudonym"),
        ErrorType("unknown_intervention_code", "Unknown intervention code", "row {row}, column {column}: {value!r} has no intervention category; add it to intervention_mapping.csv or the profile's [categories]"),
        ErrorType("municipality_mismatch", "Other municipality", "row {row}, column {column}: {value!r} differs from --municipality {detail}"),
        ErrorType("duplicate_key", "Duplicate record key", "row {row}, column {column}: record key {value!r} occurs on more than one row of this file"),
        ErrorType("duplicate_measurement", "Duplicate measurement", "row {row}: the same record, time point and instrument occur on more than one row"),
        ErrorType("conflicting_record", "Conflicting record rows", "row {row}, column {column}: the rows of one record (same record key) disagree here{detail}; give the record the same value on each of its rows"),
        ErrorType("incomplete_record", "Record with a rejected row", "row {row}, column {column}: another row of this record (same record key) was rejected, so none of its rows is stored from this file (a record stored earlier is kept as it was); fix that row and import again"),
    )
}


def message(type_: str, *, row: int, column: str | None, value: str | None, detail: str = "") -> str:
    text = CATALOGUE[type_].template.format(row=row, column=column, value=value, detail=detail)
    return text.replace(" ()", "") if not detail else text  # a template's "({detail})" with nothing to say
