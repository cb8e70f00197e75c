"""Code-list aliases: a zero-padded numeric code is also known without its leading zeros, because
Excel drops them (``126`` for Danderyd, 0126) in a number cell and in a CSV saved from one.

The rule lives in ``CodeList.aliases`` only; the import joins those aliases, so a CSV and an XLSX
export with the mangled codes import as the right municipality.
"""

from __future__ import annotations

from isu.workbook import read_sheet
from isu.schemas import CodeList, code_list

from conftest import wide_row, write_csv, write_xlsx


def test_municipality_codes_without_the_leading_zero():
    aliases, codes = code_list("municipalities").aliases(), set(code_list("municipalities").codes)
    assert (aliases["126"], aliases["180"], aliases["0126"], aliases["2303"]) == ("0126", "0180", "0126", "2303")
    assert {k for k, v in aliases.items() if k.isdigit() and k not in codes} == {c[1:] for c in codes if c[0] == "0"}
    assert "303" not in aliases  # 2303 keeps its 2


def test_an_unpadded_number_never_replaces_a_code_or_label_nor_guesses():
    rows = ({"code": "01", "label_sv": "Ett", "label_en": "One"}, {"code": "001", "label_sv": "x", "label_en": "x"},
            {"code": "07", "label_sv": "Sju", "label_en": "Seven"}, {"code": "7", "label_sv": "Annan", "label_en": "Other"},
            {"code": "09", "label_sv": "Nio", "label_en": "Nine"}, {"code": "A", "label_sv": "9", "label_en": "Nine?"},
            {"code": "00", "label_sv": "Noll", "label_en": "Zero"})
    aliases = CodeList("t", rows).aliases()
    assert "1" not in aliases  # 01 or 001: no guess
    assert (aliases["7"], aliases["9"], aliases["07"]) == ("7", "A", "07")
    assert "" not in aliases and "0" not in aliases


def _stored(ws) -> dict[str, str]:
    with ws.connect() as con:
        return dict(con.execute("SELECT record_key, municipality FROM records").fetchall())


def test_csv_from_excel_with_three_digit_municipality_codes(ws):
    rows = [wide_row(1, municipality="126"), wide_row(2, municipality="180"), wide_row(3, municipality="2303"),
            wide_row(4, municipality="9999")]
    r = ws.import_(write_csv(ws.dir / "excel.csv", rows, encoding="cp1252"))
    assert (r.rows_accepted, r.errors_by_type) == (3, {"not_in_code_list": 1})
    assert _stored(ws) == {"K1": "0126", "K2": "0180", "K3": "2303"}


def test_xlsx_with_municipality_codes_in_number_cells(ws):
    """A number cell 126 arrives as the string "126" (fastexcel reads the value, not a ``0000`` display format)."""
    path = write_xlsx(ws.dir / "numbers.xlsx", [wide_row(1, municipality="126"), wide_row(2, municipality="180")],
                      typed={"Kommunkod": int})
    assert read_sheet(path, None).rows.column("Kommunkod").to_pylist() == ["126", "180"]  # the form that arrives
    r = ws.import_(path)
    assert r.rows_accepted == 2, r.errors_by_type
    assert _stored(ws) == {"K1": "0126", "K2": "0180"}
