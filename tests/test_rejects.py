"""The rejects file: a person opens it in a spreadsheet, a script reads it back unchanged."""

from __future__ import annotations

import csv
import subprocess
import sys

import fastexcel
import pytest

from isu.rejects import Reject, write_file

AWKWARD = [
    Reject(2, "", None, "malformed_row", "row 2: the line has too many fields"),
    Reject(3, 'Kö"n', "", "not_in_code_list", "a;semicolon, a \"quote\"\nand a line break"),
    Reject(4, "Livsområde", "Bo\rende", "not_in_code_list", "carriage return inside a value"),
    Reject(1_000_000, "Personnummer", "******-****", "invalid_person_id", "åäö ÅÄÖ é"),
]


def test_csv_round_trips_every_value(tmp_path):
    path = write_file(AWKWARD, tmp_path / "out" / "x.rejects.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfrow;column;value;error_type;message\r\n")  # BOM and semicolons: Swedish Excel
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert [(int(r["row"]), r["column"], r["value"], r["error_type"], r["message"]) for r in rows] == [
        (r.row, r.column, r.value or "", r.type, r.message) for r in AWKWARD]


FORMULAS = [Reject(2, "=Kolumn", '=HYPERLINK("http://x","klicka")', "not_in_code_list", "m"),
            Reject(3, "Avslutsorsak", "+cmd|calc", "t", "@SUM(A1)"), Reject(4, "c", "-1", "t", "m"), Reject(5, "c", "\tx", "t", "m")]


def test_cells_a_spreadsheet_would_run_as_formulas_stay_text(tmp_path):
    """A value from the export such as =HYPERLINK(...) would run in Excel: in the CSV it starts with
    ' (Excel then shows the rest as text); the XLSX holds text cells."""
    path = write_file(FORMULAS, tmp_path / "f.csv")
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert [(r["column"], r["value"], r["message"]) for r in rows] == [
        ("'=Kolumn", "'=HYPERLINK(\"http://x\",\"klicka\")", "m"), ("Avslutsorsak", "'+cmd|calc", "'@SUM(A1)"),
        ("c", "'-1", "m"), ("c", "'\tx", "m")]
    frame = fastexcel.read_excel(write_file(FORMULAS, tmp_path / "f.xlsx")).load_sheet("rejects").to_polars()
    assert frame["value"].to_list() == [r.value for r in FORMULAS] and frame["column"].to_list() == [r.column for r in FORMULAS]


def test_xlsx_by_suffix(tmp_path):
    path = write_file(AWKWARD, tmp_path / "x.rejects.xlsx")
    frame = fastexcel.read_excel(path).load_sheet("rejects").to_polars()
    assert frame.columns == ["row", "column", "value", "error_type", "message"]
    assert frame["row"].to_list() == [r.row for r in AWKWARD] and frame["message"].to_list() == [r.message for r in AWKWARD]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_no_rejects_still_gives_a_file_with_the_header(tmp_path, suffix):
    path = write_file([], tmp_path / f"none{suffix}")
    assert path.is_file() and path.stat().st_size > 0


def test_a_csv_rejects_file_needs_no_polars(tmp_path):
    """Importing polars took 0.2 s of every import that had a reject."""
    code = ("import sys; from pathlib import Path; from isu.rejects import Reject, write_file; "
            f"write_file([Reject(2, 'c', 'v', 't', 'm')], Path({str(tmp_path / 'r.csv')!r})); "
            "assert 'polars' not in sys.modules, 'polars was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
