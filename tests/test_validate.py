"""Validation: every error type of the catalogue from a real row, values as codes or labels, numbers, dates.

Rejects are checked as a person sees them: the rejects file (row as a spreadsheet numbers it,
header = row 1; column as the export names it; value masked) and the ``rejects`` table.
"""

from __future__ import annotations

import csv
from datetime import date

import pytest

from isu.catalogue import CATALOGUE

from conftest import long_header, long_rows, make_workspace, pnr, wide_header, wide_row, write_csv

PSEUDO = "ab" * 32
WIDE_CASES = {  # error type → (fields of the row, column named in the reject, value shown)
    "missing_value": (dict(need_area=""), "Livsområde", ""),
    "not_in_code_list": (dict(need_area="Månen"), "Livsområde", "Månen"),
    "bad_date": (dict(started_on="2024-13-45"), "Startdatum", "2024-13-45"),
    "bad_number": (dict(T0_value="tre"), "Skattning start", "tre"),
    "bad_integer": (dict(person_id="", client=PSEUDO, birth_year="19x0"), "Födelseår", "19x0"),
    "out_of_range": (dict(T0_value="7"), "Skattning start", "7"),
    "bad_format": (dict(record_key="#K"), "Ärende-ID", "#K"),
    "date_order": (dict(ended_on="2024-01-01"), "Slutdatum", "2024-01-01"),
    "invalid_person_id": (dict(person_id="19800101-1235"), "Personnummer", "********-****"),
    "id_in_key": (dict(record_key="A19800101-1231"), "Ärende-ID", "A********-****"),
    "missing_identity": (dict(person_id=""), "Personnummer", ""),
    "unknown_intervention_code": (dict(intervention_code="ZZZ"), "Insatskod", "ZZZ"),
    "municipality_mismatch": (dict(municipality="0181"), "Kommunkod", "0181"),
}
WIDE_HEADER = wide_header() + ["Pseudonym"]


def read_rejects(path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


@pytest.fixture(scope="module")
def wide_result(tmp_path_factory):
    """One export holding a row for each single-row error type, a duplicated key and a malformed line."""
    ws = make_workspace(tmp_path_factory.mktemp("wide"))
    rows = [wide_row(1)]  # row 2: valid
    rows += [wide_row(10 + i, **fields) for i, (fields, _, _) in enumerate(WIDE_CASES.values())]  # rows 3..
    rows += [wide_row(50, record_key="DUP"), wide_row(51, record_key="DUP")]
    p = write_csv(ws.dir / "errors.csv", rows, WIDE_HEADER)
    with p.open("a", encoding="utf-8") as f:
        f.write("0180;K99;too;few;fields\n")
    result = ws.import_(p, municipality="0180")
    return result, read_rejects(result.rejects_file), ws


@pytest.fixture(scope="module")
def long_result(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("long"))
    rows = long_rows(1, measurements=(("Start", "3"), ("Start", "2")))  # rows 2-3: same measurement twice
    rows += long_rows(2)  # rows 4-5
    rows += long_rows(2, measurements=(("Uppföljning", "1"),), need_area="Narkotika")  # row 6: disagrees
    rows += long_rows(3)  # rows 7-8: valid
    p = write_csv(ws.dir / "long.csv", rows, long_header())
    result = ws.import_(p)
    return result, read_rejects(result.rejects_file), ws


def test_catalogue_is_covered_by_these_tests():
    covered = set(WIDE_CASES) | {"duplicate_key", "malformed_row", "duplicate_measurement", "conflicting_record",
                                   "incomplete_record"}
    assert covered == set(CATALOGUE)


@pytest.mark.parametrize("type_", sorted(WIDE_CASES))
def test_wide_error_type_from_a_real_row(wide_result, type_):
    _, rejects, _ = wide_result
    row = str(3 + list(WIDE_CASES).index(type_))
    _, column, value = WIDE_CASES[type_]
    got = [r for r in rejects if r["error_type"] == type_]
    assert [(r["row"], r["column"], r["value"]) for r in got] == [(row, column, value)]
    msg = got[0]["message"]
    assert f"row {row}" in msg and column in msg and "\n" not in msg


def test_municipality_mismatch_message_names_the_given_code(wide_result):
    _, rejects, _ = wide_result
    [r] = [r for r in rejects if r["error_type"] == "municipality_mismatch"]
    assert "0180" in r["message"], r["message"]


def test_duplicate_key_and_malformed_row(wide_result):
    _, rejects, _ = wide_result
    n = 3 + len(WIDE_CASES)
    dup = [(r["row"], r["column"], r["value"]) for r in rejects if r["error_type"] == "duplicate_key"]
    assert dup == [(str(n), "Ärende-ID", "DUP"), (str(n + 1), "Ärende-ID", "DUP")]
    assert [r["row"] for r in rejects if r["error_type"] == "malformed_row"] == [str(n + 2)]


def test_wide_counts_add_up_and_match_the_store(wide_result):
    result, rejects, ws = wide_result
    assert result.rows_read == 1 + len(WIDE_CASES) + 3
    assert (result.rows_accepted, result.rows_rejected) == (1, result.rows_read - 1)
    assert len({r["row"] for r in rejects}) == result.rows_rejected
    with ws.connect() as con:
        stored = con.execute("SELECT row_number, column_name, coalesce(value_masked, ''), error_type FROM rejects ORDER BY 1, 2").fetchall()
        assert con.execute("SELECT count(*) FROM records").fetchone() == (1,)
        assert con.execute("SELECT rows_read, rows_accepted, rows_rejected FROM imports").fetchone() == (
            result.rows_read, result.rows_accepted, result.rows_rejected)
    in_file = sorted((int(r["row"]), r["column"], r["value"], r["error_type"]) for r in rejects)
    assert sorted(stored) == in_file


def test_long_duplicate_measurement_and_conflicting_record(long_result):
    result, rejects, ws = long_result
    got = sorted((r["error_type"], r["row"], r["column"]) for r in rejects)
    assert got == [
        ("conflicting_record", "4", "Livsområde"), ("conflicting_record", "5", "Livsområde"),
        ("conflicting_record", "6", "Livsområde"),
        ("duplicate_measurement", "2", "Mättillfälle"), ("duplicate_measurement", "3", "Mättillfälle"),
    ]
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (7, 2, 5)
    row6 = next(r for r in rejects if r["row"] == "6")
    assert row6["value"] == "" and "reads as 'drugs'" in row6["message"] and "Livsområde" in row6["message"], row6
    with ws.connect() as con:
        assert con.execute("SELECT record_key, count(*) FROM measurements GROUP BY 1").fetchall() == [("L3", 2)]


def test_row_numbers_count_malformed_lines_and_multiline_cells(ws):
    header = wide_header() + ["Kommentar"]
    rows = [{**wide_row(1), "Kommentar": "rad ett\nrad två"}, wide_row(2), wide_row(3, need_area="BAD")]
    p = write_csv(ws.dir / "m.csv", rows, header)
    lines = p.read_text(encoding="utf-8").rstrip("\n").split("\n")
    lines.insert(4, "0180;bad")  # spreadsheet row 4 (the quoted cell spans two lines of row 2)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = ws.import_(p)
    got = sorted((x["row"], x["error_type"]) for x in read_rejects(r.rejects_file))
    assert got == [("4", "malformed_row"), ("5", "not_in_code_list")]
    assert (r.rows_read, r.rows_accepted) == (4, 2)


CODE_VALUES = [  # (field, as written in the export, code stored)
    ("need_area", "housing", "housing"),  # the code
    ("need_area", "Boende", "housing"),  # Swedish label
    ("need_area", "Housing", "housing"),  # English label
    ("need_area", " BOENDE ", "housing"),  # case and spaces do not matter
    ("end_reason", "Enligt plan", "as_planned"),
    ("end_reason", "As planned", "as_planned"),
    ("end_reason", "as_planned", "as_planned"),
    ("goal_attainment", "3", "improved"),  # the profile's source code
    ("goal_attainment", "Ingen förändring", "no_change"),
    ("goal_attainment", "Positive change and goal met", "goal_met"),
    ("provider", "Extern", "external"),
    ("provider", "Own service", "own"),
    ("legal_basis", "Lagen om vård av unga (LVU)", "LVU"),
]


def _import_cases(ws, name: str, rows: list[dict]) -> tuple:
    """Import one row per case (record keys K1..Kn); the result and the stored records by key."""
    r = ws.import_(write_csv(ws.dir / f"{name}.csv", rows))
    with ws.connect() as con:
        cur = con.execute("SELECT * FROM records")
        names = [d[0] for d in cur.description]
        records = {row[1]: dict(zip(names, row)) for row in cur.fetchall()}
    return r, records


def test_code_values_as_code_or_label(ws):
    r, records = _import_cases(ws, "codes", [wide_row(i, **{f: w}) for i, (f, w, _) in enumerate(CODE_VALUES, 1)])
    assert r.rows_accepted == len(CODE_VALUES), r.errors_by_type
    got = [(f, w, records[f"K{i}"][f]) for i, (f, w, _) in enumerate(CODE_VALUES, 1)]
    assert got == CODE_VALUES


def test_sex_and_birth_year_given_without_person_id(ws):
    rows = [wide_row(1, person_id="", client=PSEUDO, sex="K", birth_year="1975"),
            wide_row(2, person_id="", client=PSEUDO.upper(), sex="M", birth_year="1980")]
    r = ws.import_(write_csv(ws.dir / "g.csv", rows, WIDE_HEADER))
    assert (r.rows_accepted, r.errors_by_type) == (1, {"bad_format": 1})  # pseudonyms are lowercase hex
    with ws.connect() as con:
        assert con.execute("SELECT client, sex, birth_year FROM records").fetchone() == (PSEUDO, "F", 1975)


def test_sex_and_birth_year_from_the_person_id_win(ws):
    pid = pnr(3, year=1962, serial=124)  # serial 124: even → F
    r = ws.import_(write_csv(ws.dir / "p.csv", [wide_row(1, person_id=pid, sex="M", birth_year="1999")]))
    assert r.rows_accepted == 1, r.errors_by_type
    with ws.connect() as con:
        assert con.execute("SELECT sex, birth_year FROM records").fetchone() == ("F", 1962)


def test_birth_year_from_a_person_id_obeys_the_contract(ws):
    """A 12-digit id gives the birth year; the contract allows 1900..2099, so 1850 and 2150 are rejected."""
    rows = [wide_row(i, person_id=pnr(i, year=year)) for i, year in enumerate((1850, 2150, 1990), 1)]
    r, records = _import_cases(ws, "y", rows)
    stored = sorted(v["birth_year"] for v in records.values())
    assert (r.rows_rejected, stored) == (2, [1990]), f"stored birth years {stored}"


NUMBERS = [("3,5", 3.5), ("3.5", 3.5), ("4", 4.0), (" 0,25 ", 0.25), ("0", 0.0)]


def test_decimal_comma(ws):
    rows = [wide_row(i, T0_value=w) for i, (w, _) in enumerate(NUMBERS, 1)]
    r = ws.import_(write_csv(ws.dir / "n.csv", rows))
    assert r.rows_accepted == len(NUMBERS), r.errors_by_type
    with ws.connect() as con:
        got = dict(con.execute("SELECT record_key, value FROM measurements WHERE timepoint = 'T0'").fetchall())
    assert [(w, got[f"K{i}"]) for i, (w, _) in enumerate(NUMBERS, 1)] == NUMBERS


def test_dates_iso_and_compact(ws):
    rows = [wide_row(1, started_on="2024-03-01", T0_date="20240301", ended_on=""),
            wide_row(2, started_on="20240301", T0_date="2024-03-01", ended_on="20240601")]
    r, records = _import_cases(ws, "d", rows)
    assert r.rows_accepted == 2, r.errors_by_type
    assert [(k, v["started_on"], v["ended_on"]) for k, v in sorted(records.items())] == [
        ("K1", date(2024, 3, 1), None), ("K2", date(2024, 3, 1), date(2024, 6, 1))]
    with ws.connect() as con:
        assert con.execute("SELECT DISTINCT measured_on FROM measurements WHERE timepoint = 'T0'").fetchall() == [(date(2024, 3, 1),)]


BAD_DATES = ["01/03/2024", "2024-02-30", "1989-12-31", "2100-01-01", "idag", "2024-3-1x"]


def test_bad_or_out_of_range_start_dates(ws):
    rows = [wide_row(i, started_on=w, ended_on="") for i, w in enumerate(BAD_DATES, 1)]
    r = ws.import_(write_csv(ws.dir / "d.csv", rows))
    got = sorted((x["value"], x["error_type"]) for x in read_rejects(r.rejects_file))
    assert got == sorted([("01/03/2024", "bad_date"), ("2024-02-30", "bad_date"), ("1989-12-31", "out_of_range"),
                          ("2100-01-01", "out_of_range"), ("idag", "bad_date"), ("2024-3-1x", "bad_date")])


def test_measurement_without_value_or_date_is_skipped_but_half_given_is_an_error(ws):
    rows = [wide_row(1, T1_value="", T1_date=""), wide_row(2, T1_value="", T1_date="2024-06-01")]
    r = ws.import_(write_csv(ws.dir / "m.csv", rows))
    assert (r.rows_accepted, r.errors_by_type) == (1, {"missing_value": 1})
    with ws.connect() as con:
        assert con.execute("SELECT record_key, timepoint FROM measurements").fetchall() == [("K1", "T0")]


def test_conflicting_record_names_every_field_its_rows_disagree_on(ws):
    """Rows of one long record that disagree on the person and the need area: each row says both;
    the person id's pseudonym is never shown."""
    rows = long_rows(1) + long_rows(1, measurements=(("Uppföljning", "1"),), need_area="Narkotika", person_id=pnr(7))
    result = ws.import_(write_csv(ws.dir / "c.csv", rows, long_header()))
    got = sorted((r["row"], r["column"], r["value"]) for r in read_rejects(result.rejects_file))
    assert got == [("2", "Livsområde", ""), ("2", "Personnummer", ""), ("3", "Livsområde", ""),
                   ("3", "Personnummer", ""), ("4", "Livsområde", ""), ("4", "Personnummer", "")]
    assert (result.rows_accepted, result.rows_rejected) == (0, 3)


def test_a_row_with_an_error_of_its_own_rejects_its_record_not_as_a_conflict(ws):
    """A bad start date on one row of a long record is that row's bad_date, not a disagreement; the
    record's other rows are rejected as incomplete (stored without that row, the record would lose
    its measurement), and none of them is stored."""
    rows = long_rows(1, measurements=(("Start", "3"), ("Avslut", "2"), ("Uppföljning", "1")))
    rows[1]["Startdatum"] = "2024-13-15"
    rows += long_rows(2)  # rows 5-6: a record of its own, stored
    result = ws.import_(write_csv(ws.dir / "own.csv", rows, long_header()))
    got = [(r["row"], r["column"], r["error_type"]) for r in read_rejects(result.rejects_file)]
    assert got == [("2", "Ärende-ID", "incomplete_record"), ("3", "Startdatum", "bad_date"), ("4", "Ärende-ID", "incomplete_record")]
    assert (result.rows_accepted, result.rows_rejected, result.measurements, result.records_inserted) == (2, 3, 2, 1)


def test_a_bad_row_in_a_long_re_export_keeps_the_stored_record(ws):
    """A corrected long re-export in which one of a record's rows is now wrong leaves the stored
    record and all its measurements as they were (found by QA: the record was rewritten without
    that row's measurement)."""
    rows = long_rows(1, measurements=(("Start", "3"), ("Avslut", "2"))) + long_rows(2)
    ws.import_(write_csv(ws.dir / "v1.csv", rows, long_header()))
    rows[1]["Värde"] = "9"  # out of range
    rows[2]["Värde"] = "1"  # record 2 corrected
    result = ws.import_(write_csv(ws.dir / "v2.csv", rows, long_header()))
    assert (result.rows_rejected, result.records_updated, result.records_unchanged) == (2, 1, 0)
    assert [(r["row"], r["error_type"]) for r in read_rejects(result.rejects_file)] == [("2", "incomplete_record"), ("3", "out_of_range")]
    from duckdb import connect

    with connect(str(ws.db), read_only=True) as con:
        stored = con.execute("SELECT record_key, timepoint, value FROM measurements ORDER BY ALL").fetchall()
    key1, key2 = rows[0]["Ärende-ID"], rows[2]["Ärende-ID"]
    assert [(k, t) for k, t, _ in stored] == sorted([(key1, "T0"), (key1, "T1"), (key2, "T0"), (key2, "T1")])
    assert dict(((k, t), v) for k, t, v in stored)[(key1, "T1")] == 2.0 and dict(((k, t), v) for k, t, v in stored)[(key2, "T0")] == 1.0


def test_conflict_in_a_field_not_shown_still_rejects_the_record():
    """A disagreement no shown column explains (``shown_fields`` leaves derived fields out) is named
    on the record key, so a record whose rows disagree is never stored."""
    import duckdb
    import pyarrow as pa

    from isu.schemas import load_profile
    from isu.stage import RECORD_FIELDS, Stage

    prof = load_profile("generic_sv_long")
    cols = {f: ["0180"] * 2 if f == "municipality" else ["L1"] * 2 if f == "record_key" else [None] * 2 for f in RECORD_FIELDS}
    cols["need_area"] = ["alcohol", "drugs"]
    chunk = pa.table({"_row": [1, 2], **{f: pa.array(v, pa.string()) for f, v in cols.items()},
                      "timepoint": ["T0", "T1"], "instrument": ["severity04"] * 2, "_ok": [True, True],
                      "_rejects": pa.nulls(2, pa.list_(pa.struct([("column", pa.string()), ("type", pa.string()), ("value", pa.string())])))})
    con = duckdb.connect()
    shown = {"municipality": "Kommunkod", "record_key": "Ärende-ID"}
    stage = Stage(con, prof, chunk, cross=False, shown=shown)
    flagged = stage.run("SELECT _row, list_transform(_rejects, lambda e: (e.column, e.type)) FROM _isu_stage WHERE NOT _ok ORDER BY 1")
    assert flagged == [(1, [("Ärende-ID", "conflicting_record")]), (2, [("Ärende-ID", "conflicting_record")])]


def test_a_number_too_large_to_be_finite_is_one_error(ws):
    """400 digits overflow to infinity: that is a bad number, not also one out of the instrument's range."""
    result = ws.import_(write_csv(ws.dir / "big.csv", [wide_row(1, T0_value="1" + "0" * 400), wide_row(2, T0_value="9")]))
    got = sorted((r["row"], r["error_type"]) for r in read_rejects(result.rejects_file))
    assert got == [("2", "bad_number"), ("3", "out_of_range")]


def test_messages_use_words_a_person_knows(ws):
    """A code list's Swedish labels, a pattern's description from the model, no pydantic prefix."""
    rows = [wide_row(1, need_area="Månen"), wide_row(2, record_key="K;2")]
    result = ws.import_(write_csv(ws.dir / "w.csv", rows))
    msgs = {r["error_type"]: r["message"] for r in read_rejects(result.rejects_file)}
    assert "Boende = housing" in msgs["not_in_code_list"] and "Value error" not in msgs["not_in_code_list"]
    assert "letters a-z, digits" in msgs["bad_format"] and "pattern" not in msgs["bad_format"]


def test_a_huge_value_is_cut_in_the_rejects(ws):
    result = ws.import_(write_csv(ws.dir / "h.csv", [wide_row(1, need_area="x" * 100_000)]))
    [r] = read_rejects(result.rejects_file)
    assert r["value"] == "x" * 200 + "… (100,000 characters)" and len(r["message"]) < 1000


def test_an_excel_date_number_gets_a_hint(ws):
    result = ws.import_(write_csv(ws.dir / "x.csv", [wide_row(1, started_on="45352"), wide_row(2, started_on="2024-02-30")]))
    msgs = [r["message"] for r in read_rejects(result.rejects_file)]
    assert "Excel date number" in msgs[0] and "Excel" not in msgs[1]


def test_an_id_that_lost_its_leading_zero_in_excel_gets_a_hint(ws):
    """A 10-digit id of a person born 2000-2009, stored as a number in Excel: 0501011234 becomes 501011234."""
    lost = pnr(3, year=2005)[3:]  # 12 digits '2005…' -> 10 digits '05…' -> 9 digits without the zero
    assert len(lost) == 9
    result = ws.import_(write_csv(ws.dir / "z.csv", [wide_row(1, person_id=lost), wide_row(2, person_id="19870127483")]))
    msgs = [r["message"] for r in read_rejects(result.rejects_file)]
    assert "leading zero" in msgs[0] and "leading zero" not in msgs[1]
    assert lost not in "".join(msgs)


def test_a_date_time_with_fractions_of_a_second_is_its_date(ws):
    """A workbook's date-time cell reads '2023-01-08 09:30:12.345' though it may show 2023-01-08."""
    result = ws.import_(write_csv(ws.dir / "t.csv", [wide_row(1, started_on="2023-01-08 09:30:12.345"),
                                                       wide_row(2, started_on="2023-01-08 09:30:12,345")]))
    assert (result.rows_accepted, result.errors_by_type) == (1, {"bad_date": 1})
    with ws.connect() as con:
        assert con.execute("SELECT CAST(started_on AS VARCHAR) FROM records").fetchall() == [("2023-01-08",)]


def test_a_wide_rows_unknown_instrument_is_one_reject_that_names_the_instruments(ws):
    """One instrument cell serves every time point of its group: it is one reject, not one per time point."""
    result = ws.import_(write_csv(ws.dir / "i.csv", [wide_row(1, instrument="8")]))
    [r] = read_rejects(result.rejects_file)
    assert (r["column"], r["error_type"], result.errors_by_type) == ("Instrument", "not_in_code_list", {"not_in_code_list": 1})
    assert "()" not in r["message"] and "severity04" in r["message"]
