"""Reading exports: encoding, BOM, delimiter, header, XLSX, and files that cannot be read at all."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from isu.errors import InputError, IsuError, ProfileMismatch
from isu.importer import import_file
from isu.keys import PoolKey
from isu.read import inspect_file
from isu.schemas.profiles import PROFILES_DIR
from isu.store import init_store

from conftest import WIDE, wide_header, wide_row, write_csv, write_xlsx

KEY = PoolKey(bytes(range(32)))
SWEDISH = dict(need_area="Försörjning", end_reason="Klienten avbröt")


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8"), ("cp1252", False, "cp1252")],
)
def test_encoding_and_bom_detected(tmp_path, encoding, bom, expected):
    p = write_csv(tmp_path / "e.csv", [wide_row(1, **SWEDISH)], encoding=encoding, bom=bom)
    src = inspect_file(p)
    assert (src.kind, src.encoding, src.bom) == ("csv", expected, bom)
    assert src.header == tuple(wide_header())  # 'Ärende-ID', 'Kön', 'Måluppfyllelse' decoded, BOM not in it
    assert src.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", False), ("utf-8", True), ("cp1252", False)])
def test_swedish_letters_reach_the_store(ws, encoding, bom):
    rows = [wide_row(1, **SWEDISH), wide_row(2, need_area="Utsatthet för våld", end_reason="Avbrutet av socialtjänsten")]
    p = write_csv(ws.dir / "sv.csv", rows, encoding=encoding, bom=bom)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (2, 2), r.errors_by_type
    with ws.connect() as con:
        got = con.execute("SELECT record_key, need_area, end_reason FROM records ORDER BY 1").fetchall()
    assert got == [("K1", "income", "client_ended"), ("K2", "violence", "service_ended")]


def _profile_with_categories(tmp_path: Path, categories: dict[str, str]) -> Path:
    """generic_sv plus a [categories] table (local intervention codes → national category)."""
    text = (PROFILES_DIR / "generic_sv.toml").read_text(encoding="utf-8")
    text += "\n[categories]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in categories.items())
    path = tmp_path / "with_categories.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_cp1252_bytes_0x80_to_0x9f_decoded(ws):
    """€ (0x80) and ’ (0x92) exist in Windows-1252 but not in Latin-1: they must arrive as themselves."""
    code = "ÖV€’"
    profile = _profile_with_categories(ws.dir, {code: "substance_outpatient"})
    p = write_csv(ws.dir / "c1.csv", [wide_row(1, intervention_code=code, **SWEDISH)], encoding="cp1252")
    assert b"\x80" in p.read_bytes() and b"\x92" in p.read_bytes()
    assert inspect_file(p).encoding == "cp1252"
    r = ws.import_(p, profile=str(profile))
    assert r.rows_accepted == 1, r.errors_by_type
    with ws.connect() as con:
        assert con.execute("SELECT intervention_code, category, need_area FROM records").fetchall() == [
            (code, "substance_outpatient", "income")]


def test_two_cp1252_c1_imports_on_one_connection(ws, tmp_path):
    """Each transcoded file goes through DuckDB's in-memory filesystem; releasing the first must not
    break the second (DuckDB 2 did, when the filesystem itself was unregistered)."""
    code = "ÖV€"
    profile = _profile_with_categories(ws.dir, {code: "substance_outpatient"})
    with ws.connect() as con:
        for i in (1, 2):
            p = write_csv(tmp_path / f"c1_{i}.csv", [wide_row(i, intervention_code=code, **SWEDISH)], encoding="cp1252")
            r = import_file(con, p, profile=str(profile), key=ws.key)
            assert (r.rows_read, r.rows_accepted) == (1, 1), r.errors_by_type
        assert con.execute("SELECT count(*) FROM records").fetchone() == (2,)


def test_cp1252_byte_0x80_only_late_in_a_large_file(ws):
    """Detection must read the whole file, not its first chunk: here € sits in the last row, past 5 MB."""
    code = "ÖV€"
    profile = _profile_with_categories(ws.dir, {code: "substance_outpatient"})
    rows = [wide_row(i, **SWEDISH) for i in range(1, 40_001)] + [wide_row(40_001, intervention_code=code, **SWEDISH)]
    p = write_csv(ws.dir / "late.csv", rows, encoding="cp1252")
    assert p.read_bytes().index(b"\x80") > 5 << 20
    r = ws.import_(p, profile=str(profile))
    assert (r.rows_read, r.rows_accepted) == (40_001, 40_001), r.errors_by_type
    with ws.connect() as con:
        assert con.execute("SELECT intervention_code, need_area FROM records WHERE record_key = 'K40001'").fetchone() == (code, "income")


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_delimiter_detected(ws, delimiter):
    p = write_csv(ws.dir / "d.csv", [wide_row(1, T0_value="3,5"), wide_row(2)], delimiter=delimiter)
    src = inspect_file(p)
    assert src.delimiter == delimiter and src.header == tuple(wide_header())
    r = ws.import_(p)
    assert (r.delimiter, r.rows_read, r.rows_accepted) == (delimiter, 2, 2)
    with ws.connect() as con:  # "3,5" is quoted in a comma file and still a decimal comma
        assert con.execute("SELECT value FROM measurements WHERE record_key = 'K1' AND timepoint = 'T0'").fetchone() == (3.5,)


def test_crlf_line_ends_and_quoted_fields(ws):
    rows = [wide_row(1, intervention_code="FAM"), wide_row(2, need_area='Boende')]
    p = write_csv(ws.dir / "crlf.csv", rows, newline="\r\n")
    text = p.read_bytes().replace(b";FAM;", b';"FAM";')
    p.write_bytes(text)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (2, 2), r.errors_by_type


@pytest.mark.parametrize(("column", "broken", "lines"), [
    ("Livsområde", "Livs\nområde", 2), ("Ärende-ID", "Ärende-\nID", 2), ("Skattning uppföljning", "Skattning\nuppföljning", 2),
    ("Livsområde", "Li\nvs\nområde", 3)], ids=["middle", "a name the profile needs", "the last but one", "over three lines"])
def test_a_line_break_in_a_header_name_not_in_quotes_is_named(ws, isu, column, broken, lines):
    """Read as it stands, the header's first line would be the header and its next line a row: every
    row rejected (too many values) with a confusing first row, or a column 'not found'."""
    p = write_csv(ws.dir / "h.csv", [wide_row(i) for i in range(1, 6)])
    p.write_bytes(p.read_bytes().replace(column.encode(), broken.encode(), 1))
    assert p.read_bytes().count(b"\n") == 6 + lines - 1
    with pytest.raises(InputError) as e:
        inspect_file(p)
    first, second = broken.split("\n")[:2]
    assert str(e.value).startswith(f"{p}: line 1: the header's column '{first}' goes on at line 2 ('{second}'): a line break inside a "
                                   "column name that is not in quotes")
    assert str(e.value).endswith("join the header's lines in a text editor (or save the export again) and import again")
    run = isu("import", str(p), env=ws.env(), cwd=ws.dir)
    assert run.returncode == 3 and run.stderr.startswith(f"error: {p}: line 1: the header's column"), run.stderr
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM records").fetchone() == (0,)


def test_a_line_break_in_a_quoted_header_name_or_a_short_row_is_no_broken_header(ws):
    header = wide_header()
    quoted = write_csv(ws.dir / "q.csv", [wide_row(i) for i in range(1, 4)], header=[*header[:-1], "Datum\nuppföljning"])
    assert inspect_file(quoted).header[-1] == "Datum\nuppföljning"
    short = write_csv(ws.dir / "s.csv", [wide_row(i) for i in range(1, 5)])
    lines = short.read_bytes().split(b"\n")
    lines[1] = lines[1].split(b";")[0]  # the first row holds one value only: a row cut short, not a header
    short.write_bytes(b"\n".join(lines))
    assert inspect_file(short).header == tuple(header)
    r = ws.import_(short)
    assert (r.rows_read, r.rows_rejected) == (4, 1)


def test_header_only_file_reads_zero_rows(ws):
    r = ws.import_(write_csv(ws.dir / "h.csv", []))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (0, 0, 0)


def test_file_name_with_quote(ws):
    r = ws.import_(write_csv(ws.dir / "o'brien; export.csv", [wide_row(1)]))
    assert r.rows_accepted == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


UNREADABLE = {
    "empty.csv": b"",
    "blank.csv": b"\n\n",
    "nodelim.csv": b"hello\nworld\n",
    "nul.csv": b"a;b\x00\n1;2\n",
    "utf16.csv": "Kommunkod;Ärende-ID\n0180;K1\n".encode("utf-16"),
    "archive.csv": b"PK\x03\x04garbage",
    "broken.xlsx": b"PK\x03\x04garbage",
    "dup.csv": "Kommunkod;Kommunkod\n0180;0180\n".encode(),
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_unreadable_files_give_one_input_error_naming_the_file(tmp_path, ws, name):
    p = _write(tmp_path / name, UNREADABLE[name])
    with pytest.raises(InputError) as e:
        ws.import_(p)
    msg = str(e.value)
    assert "\n" not in msg
    assert name in msg, f"the message does not say which file: {msg!r}"


def test_missing_file(ws, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ws.import_(tmp_path / "nope.csv")


def test_xlsx_with_text_number_and_date_cells(ws):
    rows = [wide_row(1, T0_value="3,5"), wide_row(2, started_on="20240301", T1_value="", T1_date="")]
    typed = {
        "Skattning start": lambda v: float(v.replace(",", ".")),
        "Skattning avslut": lambda v: float(v.replace(",", ".")),
        "Startdatum": lambda v: date(2024, 3, 1),
        "Datum start": lambda v: date.fromisoformat(v),
        "Måluppfyllelse": int,
    }
    p = write_xlsx(ws.dir / "x.xlsx", rows, typed=typed)
    src = inspect_file(p)
    assert src.kind == "xlsx" and src.header == tuple(wide_header())
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (2, 2), r.errors_by_type
    with ws.connect() as con:
        recs = con.execute("SELECT record_key, started_on, goal_attainment FROM records ORDER BY 1").fetchall()
        meas = con.execute("SELECT record_key, timepoint, measured_on, value FROM measurements ORDER BY 1, 2").fetchall()
    assert recs == [("K1", date(2024, 3, 1), "improved"), ("K2", date(2024, 3, 1), "improved")]
    assert meas == [("K1", "T0", date(2024, 3, 1), 3.5), ("K1", "T1", date(2024, 6, 1), 1.5), ("K2", "T0", date(2024, 3, 1), 3.0)]


def test_xlsx_with_profile_header_is_matched_like_csv(ws):
    rows = [{f" {k} ": v for k, v in wide_row(1).items()}]
    p = write_xlsx(ws.dir / "x.xlsx", rows, header=[f" {h} " for h in wide_header()])
    assert inspect_file(p).header == tuple(wide_header())  # surrounding spaces in header cells are trimmed
    assert ws.import_(p).profile == WIDE.name


NOTES = {"Info": [["Uppföljning ISU"], ["Exporterad 2024-12-01"]]}


def test_a_workbook_saved_as_csv_is_told_to_be_renamed(ws):
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)])
    csv_named = p.rename(ws.dir / "w.csv")
    with pytest.raises(InputError, match=r"an Excel workbook with a \.csv suffix; rename it to \.xlsx"):
        ws.import_(csv_named)


def test_xlsx_export_on_a_later_sheet_is_found(ws):
    """A workbook that opens on a sheet of notes: the only sheet whose header fits is read, and said."""
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1), wide_row(2, started_on="x")], sheet="Data", before=NOTES, after={"Mer": [["a", "b"]]})
    r = ws.import_(p)
    assert (r.sheet, r.profile, r.rows_read, r.rows_accepted) == ("Data", WIDE.name, 2, 1)
    assert "row 3" in (ws.dir / "w.rejects.csv").read_text(encoding="utf-8-sig")


def test_xlsx_each_sheet_is_parsed_once(ws, monkeypatch):
    """fastexcel parses a whole sheet for any part of it (the header row too): the rows parsed to find
    the header are the rows imported, and a sheet looked at in the search is not parsed again."""
    import fastexcel

    loaded = []
    real = fastexcel.ExcelReader.load_sheet
    monkeypatch.setattr(fastexcel.ExcelReader, "load_sheet", lambda self, name, **kw: loaded.append(name) or real(self, name, **kw))
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1), wide_row(2)], sheet="Data", before=NOTES)
    r = ws.import_(p)
    assert (r.sheet, r.rows_accepted) == ("Data", 2)
    assert sorted(loaded) == sorted(["Data", *NOTES])


def test_xlsx_first_sheet_wins_when_it_fits(ws):
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], after={"Kopia": [wide_header()]})
    assert ws.import_(p).sheet == "Export"


def test_xlsx_a_hidden_sheet_is_passed_over_for_the_first_one_excel_shows(ws):
    """A hidden first sheet (an old copy of the export, say) is not what a person sees on opening
    the workbook: the first shown sheet is read, though both fit."""
    old = [wide_header(), [wide_row(9).get(h) or "" for h in wide_header()]]
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before={"Gammal": old}, hidden={"Gammal": "hidden"})
    r = ws.import_(p)
    assert (r.sheet, r.sheet_hidden, r.rows_accepted) == ("Data", False, 1)
    with ws.connect() as con:
        assert con.execute("SELECT record_key FROM records").fetchall() == [("K1",)]


def test_xlsx_a_hidden_sheet_read_is_said_to_be_hidden(ws):
    """When the only sheet that fits is hidden (veryHidden: not even Excel's Unhide lists it), it is
    read, and the summary says so, since the person who looks for it in Excel will not see it."""
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before=NOTES, hidden={"Data": "veryHidden"})
    r = ws.import_(p)
    assert (r.sheet, r.sheet_hidden, r.rows_accepted) == ("Data", True, 1)


def test_xlsx_hidden_sheets_come_last_in_the_search(ws):
    """A workbook that opens on notes, with the export on a shown sheet and a copy on a hidden one:
    the shown one is read, not asked about (a person who opens the workbook sees only it)."""
    copy = [wide_header(), [wide_row(9).get(h) or "" for h in wide_header()]]
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before={"Kopia": copy, **NOTES}, hidden={"Kopia": "hidden"})
    r = ws.import_(p)
    assert (r.sheet, r.sheet_hidden, r.rows_accepted) == ("Data", False, 1)
    two = write_xlsx(ws.dir / "two.xlsx", [wide_row(1)], sheet="Data", before={"Kopia": copy, **NOTES},
                     after={"Data2": copy}, hidden={"Kopia": "hidden"})
    with pytest.raises(ProfileMismatch, match=r"sheets 'Data', 'Data2', 'Kopia' all do"):
        ws.import_(two)  # two shown sheets fit: asked which


def test_xlsx_without_a_fitting_sheet_says_which_sheets_it_tried(ws):
    p = write_xlsx(ws.dir / "w.xlsx", [{"a": "1"}], header=["a", "b"], sheet="Blad1", after={"Blad2": [["c"]]})
    with pytest.raises(ProfileMismatch, match=r"\(on sheet 'Blad1', whose first row with a value, row 1, must be the header; no other sheet fits either: 'Blad2'\)"):
        ws.import_(p)


def test_xlsx_with_two_fitting_later_sheets_asks_which(ws):
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before=NOTES, after={"Data2": [wide_header()]})
    with pytest.raises(ProfileMismatch, match=r"sheets 'Data', 'Data2' all do"):
        ws.import_(p)


def test_xlsx_sheet_named_by_a_profile(ws, tmp_path):
    text = (PROFILES_DIR / "generic_sv.toml").read_text(encoding="utf-8")
    named = tmp_path / "mine.toml"
    named.write_text('sheet = "Data2"\n' + text, encoding="utf-8")
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", after={"Data2": [wide_header(), [wide_row(2).get(h) or "" for h in wide_header()]]})
    r = ws.import_(p, profile=str(named))
    assert (r.sheet, r.rows_accepted) == ("Data2", 1)
    with ws.connect() as con:
        assert con.execute("SELECT record_key FROM records").fetchall() == [("K2",)]
    missing = tmp_path / "missing.toml"
    missing.write_text('sheet = "Nej"\n' + text, encoding="utf-8")
    with pytest.raises(InputError, match=r"no sheet 'Nej' \(it has 'Data', 'Data2'\)"):
        ws.import_(p, profile=str(missing))


def test_xlsx_a_sheet_of_notes_may_repeat_names_in_its_first_row(ws):
    """Only the sheet read needs a header that names each column once."""
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Export", before={"Sammanställning": [["Kön", "Antal", "Kön", "Antal"]]})
    assert (ws.import_(p).sheet, ws.import_(p, again=True).rows_accepted) == ("Export", 1)
    bad = write_xlsx(ws.dir / "b.xlsx", [{**wide_row(1), "kommunkod": "0181"}], wide_header() + ["kommunkod"],
                     sheet="Data", before={"Sammanställning": [["Kön", "Kön"]]})
    with pytest.raises(InputError, match=r"sheet 'Data': the header repeats column names"):
        ws.import_(bad)


def test_xlsx_rows_are_numbered_as_the_sheet_shows_them(ws):
    """A table that starts lower on the sheet (blank rows above, or at B3): rejects name sheet rows."""
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1), wide_row(2, need_area="Ekonomi")], at=(2, 1))
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (2, 1)
    assert [row["row"] for row in csv.DictReader(io.StringIO((ws.dir / "w.rejects.csv").read_text(encoding="utf-8-sig")),
                                                delimiter=";")] == ["5"]


def test_xlsx_error_cells_are_rejected_as_they_show(ws):
    """fastexcel reads #N/A as an empty cell: an end date would silently go missing."""
    p = write_xlsx(ws.dir / "e.xlsx", [wide_row(1), wide_row(2), wide_row(3)],
                   formulas={(1, "Slutdatum"): ("=NA()", "#N/A"), (2, "Skattning avslut"): ("=1/0", "#DIV/0!")})
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (3, 1, 2)
    text = (ws.dir / "e.rejects.csv").read_text(encoding="utf-8-sig")
    assert "#N/A" in text and "#DIV/0!" in text


@pytest.mark.parametrize("twin", ["Kommunkod", "KOMMUNKOD", "skattning  START"])
def test_xlsx_header_repeating_a_name_is_one_clear_error(ws, twin):
    """As in a CSV; fastexcel would rename an exact repeat ('Kommunkod_1'), and DuckDB would read
    either of two names that differ in case."""
    header = wide_header() + [twin]
    p = write_xlsx(ws.dir / "d.xlsx", [{**wide_row(1), twin: "0181"}], header)
    with pytest.raises(InputError, match="repeats column names"):
        ws.import_(p)
    p = write_xlsx(ws.dir / "d2.xlsx", [{**wide_row(1), twin: "0181"}], header, sheet="Data", before=NOTES)
    with pytest.raises(InputError, match="repeats column names"):
        ws.import_(p)


def test_xlsx_sheet_names_letter_case_aside_and_masked(ws, tmp_path):
    text = (PROFILES_DIR / "generic_sv.toml").read_text(encoding="utf-8")
    named = tmp_path / "lower.toml"
    named.write_text('sheet = "data"\n' + text, encoding="utf-8")
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before=NOTES)
    assert ws.import_(p, profile=str(named)).sheet == "Data"
    odd = write_xlsx(ws.dir / "odd.xlsx", [wide_row(1)], sheet="19800101-1234", before=NOTES)  # a sheet named after a person
    assert ws.import_(odd).sheet == "********-****"
    for bad in ("sheet = 1", 'sheet = ["Data"]'):
        named.write_text(bad + "\n" + text, encoding="utf-8")
        with pytest.raises(InputError, match="sheet must be the name of a workbook sheet"):
            ws.import_(p, profile=str(named))


def test_rows_with_every_cell_empty_are_left_out_and_counted(ws):
    """Excel saves rows it has only formatted: ';;;' in a CSV, blank cells in a workbook. A person
    sees no row there; the rows after them keep the numbers a spreadsheet shows."""
    p = write_csv(ws.dir / "e.csv", [wide_row(1), wide_row(2, need_area="BAD"), wide_row(3)])
    lines = p.read_bytes().split(b"\n")
    sep = b";" * (len(wide_header()) - 1)
    p.write_bytes(b"\n".join(lines[:2] + [sep, b"  ; " + sep[1:]] + lines[2:] + [sep]))
    r = ws.import_(p)
    assert (r.rows_read, r.rows_empty, r.rows_accepted, r.rows_rejected) == (3, 3, 2, 1)
    assert [x.split(";")[0] for x in (ws.dir / "e.rejects.csv").read_text(encoding="utf-8-sig").splitlines()[1:]] == ["5"]
    blank = {h: " " for h in wide_header()}  # cells that hold a space: formatted, not filled
    r = ws.import_(write_xlsx(ws.dir / "e.xlsx", [wide_row(4), blank, wide_row(5, need_area="BAD"), blank]))
    assert (r.rows_read, r.rows_empty, r.rows_rejected) == (2, 2, 1)
    assert "4;Livsområde" in (ws.dir / "e.rejects.csv").read_text(encoding="utf-8-sig")


def test_xlsx_empty_header_cells_are_named_by_place(ws):
    """A title row above the header: fastexcel's '__UNNAMED__1' would mean nothing to a person."""
    p = write_xlsx(ws.dir / "t.xlsx", [{"Uppföljning 2024": "Kommun X"}], header=["Uppföljning 2024", "", "Kommun"])
    assert inspect_file(p).header == ("Uppföljning 2024", "column 2", "Kommun")
    with pytest.raises(ProfileMismatch, match="whose first row with a value, row 1, must be the header") as e:
        ws.import_(p)
    assert "__UNNAMED__" not in str(e.value)


# --- property: whatever the bytes, the reader ends in a clean result or one IsuError ------------

_VALID = [wide_row(i) for i in range(1, 6)]
_ODD = ['"', '""', ";", ",", "\t", "\n", "\r\n", 'a"b', '"open', "x\x00y", "€’", "Ω", "  ", "-1", "1e309", "nan", "2024-02-30"]


@st.composite
def exports(draw) -> bytes:
    """An export-like file: the generic_sv header (sometimes damaged), rows of valid and odd cells,
    any delimiter, proper or broken quoting, an encoding, and sometimes raw garbage bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    header = wide_header()
    if draw(st.booleans()):
        header = draw(st.permutations(header))[: draw(st.integers(1, len(header)))]
    header = header + [""] * draw(st.sampled_from([0, 0, 1, 2]))  # a header ending in delimiters
    delim = draw(st.sampled_from([";", ",", "\t", "|"]))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        base = draw(st.sampled_from(_VALID))
        cells = [base.get(c) or "" for c in header]
        for _ in range(draw(st.integers(0, 3))):
            j = draw(st.integers(0, max(0, len(cells) - 1)))
            odd = draw(st.one_of(st.sampled_from(_ODD), st.text(max_size=10)))
            if cells:
                cells[j] = odd
        cells = cells[: draw(st.integers(max(0, len(cells) - 2), len(cells) + 2))] if draw(st.booleans()) else cells
        rows.append(cells)
    buf = io.StringIO()
    if draw(st.booleans()):
        w = csv.writer(buf, delimiter=delim, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
        w.writerow(header)
        w.writerows(rows)
        text = buf.getvalue()
    else:  # no quoting at all: delimiters and quotes inside cells break the lines
        text = "\n".join(delim.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", "\n"]))
    text += draw(st.sampled_from(["", "", "Summa;1\n", "Summa;1\r\n", "x\r"]))  # a footer, its line end maybe another
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    con = duckdb.connect()
    init_store(con)
    yield con, tmp_path_factory.mktemp("fuzz")
    con.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=exports())
@example(data=";".join(wide_header()[:10]).encode())  # record columns only, no measurement columns (found by this test)
@example(data=(";".join(wide_header()) + ";\r\n" + ";".join(wide_row(1).values()) + ";\r\nSumma;1\n").encode())
@example(data=(";".join(wide_header()) + '\n0180;"K1;\n0180;K2\n').encode())  # a quote that never closes
def test_any_bytes_give_a_clean_result_or_one_isu_error(fuzz_store, data):
    con, folder = fuzz_store
    path = folder / f"f{hashlib.sha1(data).hexdigest()[:12]}.csv"
    path.write_bytes(data)
    (before,) = con.execute("SELECT count(*) FROM records").fetchone()
    try:
        r = import_file(con, path, key=KEY, rejects_path=folder / "rejects.csv")
    except IsuError as e:
        assert str(e) and "\n" not in str(e).strip(), repr(e)
        assert con.execute("SELECT count(*) FROM records").fetchone() == (before,)
        return
    finally:
        path.unlink()
    (after,) = con.execute("SELECT count(*) FROM records").fetchone()
    assert r.rows_accepted + r.rows_rejected == r.rows_read
    assert r.records_inserted + r.records_updated + r.records_unchanged == r.rows_accepted
    assert after - before == r.records_inserted


@st.composite
def multiline_tables(draw) -> tuple[bytes, str, int, int]:
    """A small valid export whose ``Kommentar`` cells hold quoted values of several lines (breaks LF
    as Excel writes them, CRLF, or CR; quotes and delimiters too), its lines ending in CR, LF or
    CRLF: (the file, its line end, its rows, its lines as the reader counts them, in LF form)."""
    newline = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    words = st.text(alphabet='ab åö;"', max_size=6)
    values = draw(st.lists(st.lists(st.tuples(st.sampled_from(["\n", "\n", "\r\n", "\r"]), words), max_size=6),
                           min_size=1, max_size=5))
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator=newline)
    w.writerow([*wide_header(), "Kommentar"])
    w.writerows([*wide_row(i).values(), f"@{i}@"] for i in range(1, len(values) + 1))
    text = buf.getvalue()
    lines = len(values) + 1
    for i, parts in enumerate(values, 1):
        value = draw(words) + "".join(b + t for b, t in parts)
        text = text.replace(f"@{i}@", '"' + value.replace('"', '""') + '"')
        # the lines in LF form: a CR file's breaks made LF (a CR before an LF with it), an LF file's LFs
        lines += (value.replace("\r\n", "\n").replace("\r", "\n") if newline == "\r" else value).count("\n")
    return text.encode(draw(st.sampled_from(["utf-8", "cp1252"]))), newline, len(values), lines


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=multiline_tables())
@example(table=((";".join([*wide_header(), "Kommentar"]) + "\r" + "".join(
    ";".join([*wide_row(i).values(), '"rad ett\nrad två\nrad tre"']) + "\r" for i in (1, 2, 3))).encode(), "\r", 3, 10))
def test_multiline_values_leave_the_line_ends_and_rows_found(fuzz_store, table):
    """Whatever the line breaks inside quoted values, and however many, the reader tells the
    file's line ends as they are and reads every row."""
    data, newline, rows, lines = table
    con, folder = fuzz_store
    path = folder / f"m{hashlib.sha1(data).hexdigest()[:12]}.csv"
    path.write_bytes(data)
    try:
        src = inspect_file(path)
        assert src.cr_line_ends == (newline == "\r") and not (src.cr_line_ends and src.mixed_line_ends)
        assert (src.lines, src.header_lines) == (lines, 1)
        r = import_file(con, path, key=KEY, again=True, rejects_path=folder / "rejects.csv")
    finally:
        path.unlink()
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (rows, rows, 0), r.errors_by_type


def test_xlsx_cells_lose_the_line_breaks_around_them(ws):
    """Alt+Enter leaves a line break at a cell's end that no one sees."""
    p = write_xlsx(ws.dir / "w.xlsx", [wide_row(1, person_id=" " + wide_row(1)["Personnummer"] + "\n", need_area="Boende\n\t")])
    r = ws.import_(p)
    assert (r.rows_accepted, r.errors_by_type) == (1, {})


def test_columns_no_field_reads_are_named_when_they_hold_values(ws):
    """A merged header cell leaves the column beside it unnamed: its values would go unseen."""
    header = wide_header()
    at = header.index("Datum start")
    merged = header[:at] + [""] + header[at + 1:] + ["Kommentar", "Tom"]
    rows = [{**{("" if c == "Datum start" else c): v for c, v in wide_row(i).items()}, "Kommentar": "x" if i == 1 else ""}
            for i in (1, 2)]
    r = ws.import_(write_xlsx(ws.dir / "m.xlsx", rows, merged))
    assert r.columns_unread == [f"column {at + 1}", "Kommentar"]  # 'Tom' holds nothing
    csv_file = write_csv(ws.dir / "c.csv", [wide_row(3)])
    assert ws.import_(csv_file).columns_unread == []


def test_xlsx_an_empty_sheet_is_said_to_be_empty(ws):
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(ws.dir / "e.xlsx"))
    wb.add_worksheet("Tom")
    wb.close()
    p = ws.dir / "e.xlsx"
    with pytest.raises(ProfileMismatch, match="sheet .Tom. is empty"):
        ws.import_(p)


def test_xlsx_a_title_above_the_header_is_passed_over(ws):
    """Case systems print a title (and a date) above the table: the header is the first row with a value that fits."""
    p = write_xlsx(ws.dir / "t.xlsx", [wide_row(1), wide_row(2, need_area="Ekonomi")], at=(3, 0),
                   formulas={(-3, "Kommunkod"): ('="Uppföljning ISU"', "Uppföljning ISU"), (-2, "Kommunkod"): ('="Utskriven 2024-12-01"', "Utskriven 2024-12-01")})
    r = ws.import_(p)
    assert (r.header_row, r.rows_read, r.rows_accepted) == (4, 2, 1)
    rejects = (ws.dir / "t.rejects.csv").read_text(encoding="utf-8-sig")
    assert rejects.splitlines()[1].startswith("6;Livsområde;Ekonomi")


def test_xlsx_errors_in_a_column_no_field_reads_leave_empty_rows_empty(ws):
    """A helper formula filled down past the data shows #N/A in rows that are otherwise empty."""
    header = wide_header() + ["Kontroll"]
    formulas = {(i, "Kontroll"): ("=NA()", "#N/A") for i in range(1, 8)}
    r = ws.import_(write_xlsx(ws.dir / "f.xlsx", [wide_row(1), wide_row(2)], header, formulas=formulas))
    assert (r.rows_read, r.rows_accepted, r.rows_empty, r.columns_unread) == (2, 2, 5, [])


def test_xlsx_a_misspelt_column_on_a_later_sheet_is_named(ws):
    header = ["Slutdatumm" if h == "Slutdatum" else h for h in wide_header()]
    rows = [{("Slutdatumm" if c == "Slutdatum" else c): v for c, v in wide_row(1).items()}]
    p = write_xlsx(ws.dir / "s.xlsx", rows, header, sheet="Export", before=NOTES)
    with pytest.raises(ProfileMismatch, match=r"column 'Slutdatum' of profile 'generic_sv' not found, but the file has 'Slutdatumm' \(on sheet 'Export'\)"):
        ws.import_(p)


def test_xlsx_a_sheet_of_blanks_is_empty(ws):
    p = write_xlsx(ws.dir / "b.xlsx", [], ["  ", "\n"], sheet="Tom")
    with pytest.raises(ProfileMismatch, match=r"sheet 'Tom' is empty"):
        ws.import_(p)


def test_a_csv_column_of_tabs_and_line_breaks_is_not_called_unread(ws):
    p = write_csv(ws.dir / "t.csv", [{**wide_row(1), "Tabs": "\t", "Breaks": "\n"}], wide_header() + ["Tabs", "Breaks"])
    assert ws.import_(p).columns_unread == []
