"""Reading damaged exports: stray quotes, empty header cells, mixed line ends, a stray byte.

Each file is a valid export damaged the way real ones are. Whatever the damage, every row read is
accepted or rejected, a row that swallowed lines says which, and nothing names a person id.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from isu.errors import InputError
from isu.read import Source, inspect_file
from isu.stage import _rows_of

from conftest import pnr, wide_header, wide_row, write_csv

CRLF = b"\r\n"
SWEDISH = dict(need_area="Försörjning", end_reason="Klienten avbröt")


def _export(path: Path, n: int, *, newline: str = "\r\n", encoding: str = "utf-8", comment: dict[int, str] | None = None,
            **kw) -> list[bytes]:
    """An export of ``n`` valid rows (records K1..Kn on lines 2..n+1), as its lines, for damaging.
    ``comment``: a ``Kommentar`` column (no profile reads it) with these values by record."""
    header = wide_header() + (["Kommentar"] if comment is not None else [])
    rows = [{**wide_row(i, **kw), "Kommentar": (comment or {}).get(i, "")} for i in range(1, n + 1)]
    write_csv(path, rows, header, newline=newline, encoding=encoding)
    return path.read_bytes().split(newline.encode())


def _save(path: Path, lines: list[bytes], newline: bytes = CRLF) -> Path:
    path.write_bytes(newline.join(lines))
    return path


def _quote(line: bytes, cell: bytes, *, opens: bool) -> bytes:
    """``line`` with a stray quote before (``opens``) or after its cell ``cell``."""
    assert b";" + cell + b";" in line
    return line.replace(b";" + cell + b";", b';"' + cell + b";" if opens else b";" + cell + b'";', 1)


def _rejects(result) -> list[dict[str, str]]:
    with open(result.rejects_file, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def _no_ids(text: str, n: int) -> None:
    assert not any(pnr(i) in text or pnr(i)[2:] in text for i in range(1, n + 1)), "a person id was written"


def _stored(ws) -> tuple[int, int, int]:
    with ws.connect() as con:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("records", "imports", "rejects"))


# --- 1. stray quotes ---------------------------------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_quote_that_never_closes_fails_the_whole_file_naming_its_line(ws, dry_run):
    p = ws.dir / "open.csv"
    lines = _export(p, 10)
    lines[3] = _quote(lines[3], b"Boende", opens=True)  # line 4: the rest of the file would be one value
    _save(p, lines)
    with pytest.raises(InputError) as e:
        ws.import_(p, dry_run=dry_run)
    msg = str(e.value)
    assert msg == ('open.csv: line 4: a quote (") opens a value that never closes, so the rest of the file would be read '
                   "as one value; fix the quote and import again")
    assert _stored(ws) == (0, 0, 0)


def test_the_line_of_a_quote_that_never_closes_counts_the_lines_of_values_before_it(ws):
    p = ws.dir / "open2.csv"
    lines = _export(p, 10, comment={1: "rad ett\r\nrad två"})  # record 1 spans lines 2-3
    lines[5] = _quote(lines[5], b"Boende", opens=True)  # row 5, line 6
    _save(p, lines)
    with pytest.raises(InputError, match=r"^open2\.csv: line 6: a quote"):
        ws.import_(p)


def _big(path: Path, rows: int) -> list[bytes]:
    """An export of ``rows`` rows, larger than DuckDB's CSV buffer (the record of line 2 over and over)."""
    lines = _export(path, 1)
    return lines[:1] + [lines[1]] * rows + [b""]


@pytest.mark.parametrize("closes", [None, 100_000])
def test_a_stray_quote_early_in_a_large_file_fails_the_file_instead_of_losing_lines(ws, closes):
    # DuckDB goes on from its next buffer (~8 MB on): the lines between were in no row, no reject
    p = ws.dir / "large.csv"
    lines = _big(p, 120_000)
    lines[3] = _quote(lines[3], b"Boende", opens=True)
    if closes:
        lines[closes - 1] = _quote(lines[closes - 1], b"Boende", opens=False)
    with pytest.raises(InputError) as e:
        ws.import_(_save(p, lines))
    assert str(e.value).startswith("large.csv: line 4: a quote (\") opens a value that " + ("closes only at line 100000" if closes else "never closes"))
    assert _stored(ws) == (0, 0, 0)


def test_a_cell_larger_than_duckdbs_buffer_fails_the_file_naming_its_line(ws):
    # DuckDB rejects a row over a megabyte, but one over its buffer vanishes: read 2, rejected 0
    p = ws.dir / "cell.csv"
    lines = _export(p, 3, comment={})
    lines[2] = lines[2] + b"x" * (40 << 20)  # the Kommentar cell of line 3
    with pytest.raises(InputError) as e:
        ws.import_(_save(p, lines))
    assert str(e.value) == ("cell.csv: 1 line of the file could not be read as rows: line 3 is longer than a megabyte (a quote "
                            "that never closes, or a cell too large to be a value); nothing was imported. Fix the file and import again")
    assert _stored(ws) == (0, 0, 0)


def test_a_stray_quote_that_duckdb_does_not_report_is_still_named_by_its_line(ws):
    p = ws.dir / "large.csv"
    lines = _big(p, 120_000)
    lines[100] = _quote(lines[100], b"Egen regi", opens=True)  # line 101
    with pytest.raises(InputError, match=r'^large\.csv: (line 101: a quote|\d+ lines? of the file could not be read as rows: '
                                         r'a quote \(\"\) on line 101 opens a value that runs on)'):
        ws.import_(_save(p, lines))
    assert _stored(ws) == (0, 0, 0)


def test_a_set_aside_row_counts_its_lines_however_the_file_ends_its_lines(ws):
    """The lines of a row DuckDB set aside are counted in the file when its text was not kept whole:
    a stray byte in a UTF-8 value spanning lines, a long row of a file whose lines end in CRs (read
    from a copy); an empty line inside such a row is no row of its own. Later rows keep their numbers."""
    cases = {  # name: (newline, Kommentar of record 2, extra cell)
        "byte.csv": (b"\r\n", b'"rad1\nrad2\xe9\nrad3"', b""),
        "blank.csv": (b"\n", b'"rad1\n\nrad3"', b";extra"),
        "mac.csv": (b"\r", b'"' + b"\n".join([b"y" * 200] * 80) + b'"', b";extra"),
    }
    for name, (newline, comment, extra) in cases.items():
        p = ws.dir / name
        lines = _export(p, 6, newline="\r\n", comment={})
        lines[2] = lines[2] + comment + extra  # row 3, record 2
        lines[5] = lines[5].replace(b";Boende;", b";BAD;")  # row 6, record 5
        r = ws.import_(_save(p, [x.replace(b"\n", newline) if newline == b"\r" else x for x in lines], newline))
        assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (6, 4, 2), name
        assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("3", "malformed_row"), ("6", "not_in_code_list")], name


def test_a_lone_cr_at_the_end_of_a_crlf_file_is_no_line(ws):
    p = ws.dir / "cr.csv"
    lines = _export(p, 3)
    r = ws.import_(_save(p, lines[:-1] + [b"\r"]))  # '...\r\n\r'
    assert (r.rows_read, r.rows_accepted) == (3, 3)


def test_a_quote_that_opens_on_the_last_line_rejects_that_row_only(ws):
    p = ws.dir / "last.csv"
    lines = _export(p, 5)
    lines[5] = _quote(lines[5], b"Boende", opens=True)  # line 6, the last: nothing after it is lost
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (5, 4, 1)
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("6", "malformed_row")]


def test_two_stray_quotes_in_one_column_reject_the_row_they_make_and_name_its_lines(ws):
    p = ws.dir / "two.csv"
    lines = _export(p, 10)
    lines[3] = _quote(lines[3], b"Boende", opens=True)  # line 4 ...
    lines[7] = _quote(lines[7], b"Boende", opens=False)  # ... to line 8: one row of 20 columns
    lines[10] = lines[10].replace(b";Boende;", b";BAD;")  # line 11, K10: row 7 as a spreadsheet shows it
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (6, 4, 2)
    got = [(x["row"], x["error_type"], x["value"], x["message"]) for x in _rejects(r)]
    assert got == [
        ("4", "malformed_row", "", "row 4: not a row of the header's columns: "
                                   "lines 4-8 read as one row: a quote opens at line 4 and closes at line 8"),
        ("7", "not_in_code_list", "BAD", got[1][3]),
    ]
    with ws.connect() as con:
        assert [k for (k,) in con.execute("SELECT record_key FROM records ORDER BY 1").fetchall()] == ["K1", "K2", "K8", "K9"]
    _no_ids(Path(r.rejects_file).read_text(encoding="utf-8-sig"), 10)


def test_two_stray_quotes_in_other_columns_name_the_lines_of_the_malformed_row(ws):
    p = ws.dir / "cols.csv"
    lines = _export(p, 10)
    lines[3] = _quote(lines[3], b"Boende", opens=True)  # line 4, need area ...
    lines[5] = _quote(lines[5], b"FAM", opens=False)  # ... to line 6, intervention code: a column short
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (8, 7, 1)
    [x] = _rejects(r)
    assert (x["row"], x["error_type"]) == ("4", "malformed_row")
    assert x["message"].endswith(": missing columns; lines 4-6 read as one row: a quote opens at line 4 and closes at line 6")


def test_stray_quotes_in_a_column_no_profile_reads_still_reject_the_row(ws):
    """The row they make has every column the profile reads, all valid: it would be stored, and the
    records of the lines it swallowed silently lost."""
    p = ws.dir / "comment.csv"
    lines = _export(p, 6, comment={i: "ok" for i in range(1, 7)})
    lines[3] = lines[3][: -len(b"ok")] + b'"ok'  # line 4, K3 ...
    lines[5] = lines[5][: -len(b"ok")] + b'ok"'  # ... to line 6, K5
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (4, 3, 1)
    [x] = _rejects(r)
    assert (x["row"], x["error_type"]) == ("4", "malformed_row")
    assert "lines 4-6 read as one row" in x["message"]
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM records WHERE record_key = 'K3'").fetchone() == (0,)


@pytest.mark.parametrize(("rows", "closes", "cell", "kind"), [
    (300, 250, b"Boende", ""),  # a row of 20 columns (Scan sets it aside)
    (300, 250, b"FAM", "missing columns; "),  # DuckDB sets it aside and keeps only its first 10,000 bytes
    (10000, 9990, b"Boende", "longer than a megabyte (a quote that never closes, or a cell too large to be a value); "),  # over DuckDB's line size (1 MiB)
])
def test_a_long_row_of_swallowed_lines_names_them_all(ws, rows, closes, cell, kind):
    p = ws.dir / "long.csv"
    lines = _export(p, rows)
    lines[3] = _quote(lines[3], b"Boende", opens=True)
    lines[closes - 1] = _quote(lines[closes - 1], cell, opens=False)
    lines[-2] = lines[-2].replace(b";Boende;", b";BAD;")  # the last record, after the swallowed lines
    r = ws.import_(_save(p, lines))
    assert r.rows_read == rows - (closes - 4)
    assert r.rows_accepted + r.rows_rejected == r.rows_read
    got = [(x["row"], x["error_type"], x["message"]) for x in _rejects(r)]
    assert got[0] == ("4", "malformed_row", "row 4: not a row of the header's columns: "
                      f"{kind}lines 4-{closes} read as one row: a quote opens at line 4 and closes at line {closes}")
    assert got[1][:2] == (str(rows + 1 - (closes - 4)), "not_in_code_list")
    assert len(got) == 2


def test_values_spanning_lines_are_still_read_and_later_rows_keep_their_numbers(ws):
    p = ws.dir / "multi.csv"
    comment = {1: "rad ett;\r\nrad två", 2: 'sa "hej"\nsen', 3: "a;b;c\n\nd"}
    lines = _export(p, 5, comment=comment)
    lines[-2] = lines[-2].replace(b";Boende;", b";BAD;")  # K5, row 6 (on line 10)
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (5, 4, 1)
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("6", "not_in_code_list")]


def test_row_numbers_of_the_scan():
    def rows(scan_rows, taken):
        return _rows_of(np.array(scan_rows, np.int64), np.array(taken, np.int64)).tolist()

    assert rows([1, 2, 3, 5], []) == [2, 3, 4, 6]
    assert rows([1, 2, 3], [2, 4, 5]) == [3, 6, 7]
    assert rows([0, 1], [2]) == [1, 3]


# --- 2. empty header cells ---------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
@pytest.mark.parametrize("trailing", [1, 2])
def test_a_header_ending_in_a_delimiter_reads(ws, encoding, trailing):
    rows = [wide_row(i, intervention_code="FAM") for i in range(1, 4)]
    p = write_csv(ws.dir / "trail.csv", rows, encoding=encoding, newline="\r\n")
    data = p.read_bytes().replace(CRLF, b";" * trailing + CRLF)
    if encoding == "cp1252":  # a byte 0x80-0x9F: the file is transcoded in memory
        data = data.replace(b"Enligt plan", b"Enligt plan\x96")
    p.write_bytes(data)
    src = inspect_file(p)
    assert src.header == (*wide_header(), *[f"column {21 + k}" for k in range(trailing)])
    r = ws.import_(p)
    assert r.rows_read == 3 and r.rows_accepted + r.rows_rejected == 3
    if encoding == "utf-8":
        assert r.rows_accepted == 3, r.errors_by_type


def test_empty_header_cells_get_names_of_their_own(tmp_path):
    p = tmp_path / "names.csv"
    p.write_bytes(b"Kommunkod;;column 2;\n0180;a;b;c\n")
    assert inspect_file(p).header == ("Kommunkod", "column 2'", "column 2", "column 4")


# --- 3. mixed line ends ------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [5, 4000])  # 4000: DuckDB met the line while the stream was read
def test_a_last_line_ending_in_lf_in_a_crlf_file_is_one_reject(ws, rows):
    p = ws.dir / "foot.csv"
    lines = _export(p, rows)
    _save(p, lines[:-1] + [b"Summa;%d\n" % rows])
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (rows + 1, rows, 1)
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [(str(rows + 2), "malformed_row")]


@pytest.mark.parametrize(("encoding", "bom", "comment"), [
    ("utf-8", False, ""), ("utf-8", True, ""), ("cp1252", False, ""),
    ("cp1252", False, "5 €"),  # a byte 0x80-0x9F: transcoded as well
])
@pytest.mark.parametrize("pieces", [False, True])  # True: read in pieces, the first holding no CR
def test_lines_ending_in_lf_and_crlf_anywhere_all_read(ws, encoding, bom, comment, pieces, monkeypatch):
    p = ws.dir / "mixed.csv"
    lines = _export(p, 6, newline="\n", encoding=encoding, comment={3: comment}, **SWEDISH)
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines[:3]) + b"\r\n" + b"\r\n".join(lines[3:])
    p.write_bytes(data)
    if pieces:
        monkeypatch.setattr("isu.read.CHUNK", data.index(b"\r"))
    src = inspect_file(p)
    assert (src.encoding, src.mixed_line_ends) == (encoding, True)
    assert encoding == "utf-8" or src.c1_bytes == bool(comment)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (6, 6), r.errors_by_type
    with ws.connect() as con:
        assert con.execute("SELECT DISTINCT need_area, end_reason FROM records").fetchall() == [("income", "client_ended")]


def test_a_lone_carriage_return_gives_one_input_error(ws):
    p = ws.dir / "cr.csv"
    lines = _export(p, 4000)
    lines[-2] = lines[-2].replace(b";Egen regi;", b";Egen\rregi;")
    with pytest.raises(InputError) as e:
        ws.import_(_save(p, lines))
    assert str(e.value) == ("cr.csv: line 4001 holds a carriage return (CR) that ends no line, which the CSV reader cannot "
                            "place; remove it in a text editor (or save the export again) and import again")
    assert _stored(ws) == (0, 0, 0)


@pytest.mark.parametrize("newline", [b"\n", CRLF], ids=["LF", "CRLF"])
def test_unquoted_crs_in_many_rows_of_an_lf_file_give_one_input_error(ws, newline):
    """Outnumbering its LFs, the CRs made the file a CR file: its rows cut at every CR, 35 rows read of 17,
    nearly all of them malformed. The LFs part it into rows of the header's width, and the CRs do not."""
    p = ws.dir / "crs.csv"
    lines = _export(p, 40)
    lines[1:] = [line.replace(b";Egen regi;", b";Egen\r\rregi;") for line in lines[1:]]
    assert _save(p, lines, newline).read_bytes().count(b"\r") - newline.count(b"\r") * len(lines) > len(lines)  # CRs alone outnumber the lines
    with pytest.raises(InputError) as e:
        ws.import_(p)
    assert str(e.value).startswith("crs.csv: line 2 holds a carriage return (CR) that ends no line"), str(e.value)
    assert _stored(ws) == (0, 0, 0)


def test_a_cr_before_each_crlf_names_the_first_line():
    from isu.line_count import lone_cr_line

    for data, line in [(b"h;i\r\r\na;b\r\r\n", 1), (b"h;i\r\na;b\r\nc\rd;e\r\n", 3), (b"h;i\na;b\n", None), (b"h;i\na;b\n\r", 3)]:
        src = Source(Path("/dev/null"), "", "csv")
        path = Path(__import__("tempfile").mkstemp(suffix=".csv")[1])
        path.write_bytes(data)
        assert lone_cr_line(dataclasses.replace(src, path=path), chunk=3) == line, data
        path.unlink()


def test_cr_line_ends_with_line_breaks_in_many_values(ws):
    """Excel writes an in-cell line break as LF: in a CR file, most rows may hold one."""
    p = ws.dir / "mac2.csv"
    lines = _export(p, 3, newline="\r", encoding="cp1252", comment={i: f"C{i}" for i in (1, 2, 3)})
    lines = [line.replace(b";C1", b';"Enligt plan\n(se journal)"').replace(b";C2", b';"a\nb"').replace(b";C3", b';"c\nd"')
             for line in lines]
    src = inspect_file(_save(p, lines, b"\r"))
    assert (src.cr_line_ends, src.mixed_line_ends) == (True, False)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted) == (3, 3), r.errors_by_type


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_lines_ending_in_a_cr_alone_all_read(ws, encoding):
    """Excel for Mac's "CSV (Macintosh)" ends lines in a CR alone: every row is read, and rejects
    name the rows a spreadsheet shows, counting an empty line and a value spanning lines."""
    p = ws.dir / "mac.csv"
    lines = _export(p, 6, newline="\r", encoding=encoding, comment={2: "rad ett\rrad två"}, **SWEDISH)
    at = next(i for i, line in enumerate(lines) if b";K5;" in line)
    lines[at] = lines[at].replace(b";Egen regi;", b";BAD;")
    lines = lines[:at] + [b""] + lines[at:]  # an empty line before K5
    src = inspect_file(_save(p, lines, b"\r"))
    assert (src.encoding, src.cr_line_ends, src.mixed_line_ends) == (encoding, True, False)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (6, 5, 1), r.errors_by_type
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("7", "not_in_code_list")]  # K5: row 6, 7 after the empty line
    with ws.connect() as con:
        assert con.execute("SELECT DISTINCT need_area, end_reason FROM records").fetchall() == [("income", "client_ended")]


def _mac_export(path: Path, n: int, value: str, **kw) -> list[bytes]:
    """An export of ``n`` rows, lines ending in a CR alone, whose ``Kommentar`` cells each hold the
    quoted ``value`` (line breaks in it as Excel for Mac writes them: LF), as its lines."""
    lines = _export(path, n, newline="\r", comment={i: f"C{i}" for i in range(1, n + 1)}, **kw)
    cell = b';"' + value.encode().replace(b'"', b'""') + b'"'
    return [line.replace(b";C%d" % i, cell) if line.endswith(b";C%d" % i) else line for i, line in enumerate(lines, 0)]


COMMENT = "rad ett\nrad två\nrad tre"


def test_cr_line_ends_with_more_line_breaks_in_values_than_line_ends(ws):
    """A short Excel for Mac export with long comments: the LFs inside its values outnumber the CRs
    that end its lines (it was taken for an LF file with a stray CR in its header)."""
    p = _save(ws.dir / "mac3.csv", _mac_export(ws.dir / "mac3.csv", 3, COMMENT), b"\r")
    data = p.read_bytes()
    assert data.count(b"\n") > data.count(b"\r") and b"\r\n" not in data
    src = inspect_file(p)
    assert (src.cr_line_ends, src.mixed_line_ends, src.lines, src.header_lines) == (True, False, 10, 1)
    r = ws.import_(p)
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (3, 3, 0), r.errors_by_type
    import duckdb

    from isu.read import register_transcoded

    with duckdb.connect() as con:  # the values as the import read them: whole, their line breaks LF
        name = register_transcoded(con, src)
        assert con.execute(f'SELECT "Ärende-ID", "Kommentar" FROM {name}').fetchall() == [(f"K{i}", COMMENT) for i in (1, 2, 3)]


def test_cr_line_ends_with_more_line_breaks_in_values_name_the_rows_of_rejects(ws):
    p = ws.dir / "mac4.csv"
    lines = _mac_export(p, 4, COMMENT)
    at = {k: next(i for i, line in enumerate(lines) if b";K%d;" % k in line) for k in (2, 3)}
    lines[at[2]] += b";extra"  # K2, row 3 (lines 5-7): malformed, set aside by DuckDB
    lines[at[3]] = lines[at[3]].replace(b";Egen regi;", b";BAD;")  # K3, row 4 (lines 8-10)
    r = ws.import_(_save(p, lines, b"\r"))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (4, 2, 2), r.errors_by_type
    rejects = _rejects(r)
    assert [(x["row"], x["error_type"]) for x in rejects] == [("3", "malformed_row"), ("4", "not_in_code_list")]
    assert "lines 5-7 read as one row" in rejects[0]["message"]


def test_cr_line_ends_with_more_line_breaks_in_values_and_a_header_no_profile_fits(ws):
    """The reader's own message stands: no "stray CR in the header" from ``isu.diagnose``."""
    p = ws.dir / "mac5.csv"
    lines = _mac_export(p, 3, COMMENT)
    lines[0] = lines[0].replace(b";Slutdatum;", b";Slutdatumm;")
    with pytest.raises(InputError, match=r"column 'Slutdatum' of profile 'generic_sv' not found") as e:
        ws.import_(_save(p, lines, b"\r"))
    assert "carriage return" not in str(e.value)


@pytest.mark.parametrize(("data", "cr_ends", "mixed"), [
    (b'h;i\r1;"a\nb\nc"\r2;"d\n\ne"\r', True, False),  # LFs inside values outnumber the CRs
    (b'h;i\r1;"a\r\nb\r\nc"\r2;"d\r\ne"\r', True, False),  # CRLFs inside values
    (b'h;"i\nj"\r1;"a\nb\nc"\r2;x\rSumma;1\n', True, False),  # a footer ending in LF, a name spanning lines
    (b"A;B\rC;D\n1;2\n", False, False),  # a stray CR in an LF file's header: the reader says so
    (b'h;i\n1;"a\rb\rc\rd"\n2;"e\rf"\n', False, False),  # CRs inside an LF file's values outnumber its LFs
    (b'h;i\r\n1;"a\rb\rc\rd"\r\n2;"e\nf"\r\n', False, True),  # and a CRLF file's, one with an LF too
    (b'h;i\r1;x"y\r2;"a\nb"\r3;z\r', True, False),  # a stray quote turns in and out around: the header's CR counts
    (b'h;i;j\n1;a\rb;c\n2;d\r\re;f\n3;g;h\rk\n', False, False),  # unquoted CRs in an LF file's values outnumber its LFs
    (b'h;i;j\r1;a\nb;c\r2;"d\n\ne";f\r3;g;h\r', True, False),  # LFs in a CR file's values: its CRs give rows of the header's width
])
def test_line_ends_are_told_by_those_outside_quoted_values(tmp_path, data, cr_ends, mixed):
    import isu.read

    p = tmp_path / "x.csv"
    p.write_bytes(data)
    assert isu.read._digest_and_encoding(p)[5:7] == (mixed, cr_ends)


def test_a_crlf_split_between_the_first_piece_and_the_next_is_one_line_end(tmp_path, monkeypatch):
    import isu.read

    data = b'h;i\r\n1;"a\rb\rc\rd"\r\n2;"e\rf\rg"\r\n'
    monkeypatch.setattr(isu.read, "CHUNK", len(data) - 1)  # the first piece ends in the CR of the last CRLF
    (p := tmp_path / "x.csv").write_bytes(data)
    assert isu.read._digest_and_encoding(p)[5:7] == (False, False)


# --- 4. a stray byte in a UTF-8 export ---------------------------------------------------------


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("at", [5, 31])  # the row (31: the last)
def test_one_stray_byte_leaves_a_utf8_export_utf8_and_rejects_its_row(ws, bom, at):
    p = write_csv(ws.dir / "u.csv", [wide_row(i, **SWEDISH) for i in range(1, 31)], bom=bom, newline="\r\n")
    lines = p.read_bytes().split(CRLF)
    lines[at - 1] = lines[at - 1].replace(b";Egen regi;", b";Egen \xe4 regi;")  # a cp1252 'ä' in a UTF-8 file
    _save(p, lines)
    assert inspect_file(p).encoding == "utf-8"
    r = ws.import_(p)
    assert (r.encoding, r.rows_read, r.rows_accepted, r.rows_rejected) == ("utf-8", 30, 29, 1)
    [x] = _rejects(r)
    assert (x["row"], x["error_type"]) == (str(at), "malformed_row")
    assert "not utf-8" in x["message"]
    with ws.connect() as con:
        assert con.execute("SELECT DISTINCT need_area, end_reason FROM records").fetchall() == [("income", "client_ended")]


def test_a_cp1252_export_is_still_cp1252(tmp_path):
    """Its 'å', 'ö' are single bytes no UTF-8 reader takes; one pair that happens to be a valid
    UTF-8 sequence ('Ã¥' is 'å' in UTF-8) does not outweigh them."""
    p = write_csv(tmp_path / "c.csv", [wide_row(i, **SWEDISH) for i in range(1, 6)] + [wide_row(9, provider="Ã¥")],
                  encoding="cp1252")
    assert inspect_file(p).encoding == "cp1252"


# --- 5. empty lines ----------------------------------------------------------------------------


@pytest.mark.parametrize("newline", [b"\r\n", b"\n"])
def test_rows_after_empty_lines_keep_the_numbers_a_spreadsheet_shows(ws, newline):
    """DuckDB skips empty lines; a spreadsheet shows them as rows, and a reject must name the row a
    person finds there (it named the row above, one more for every empty line)."""
    p = ws.dir / "blank.csv"
    lines = _export(p, 8, newline=newline.decode())
    lines[4] = lines[4].replace(b";Boende;", b";BAD;")  # K4, line 5
    lines[7] = b"0180;bad"  # K7: malformed, line 8
    lines[8] = lines[8].replace(b";Boende;", b";BAD;")  # K8, line 9
    damaged = lines[:3] + [b""] + lines[3:6] + [b"", b""] + lines[6:]  # empty lines 4, 8 and 9
    r = ws.import_(_save(p, damaged, newline))
    assert (r.rows_read, r.rows_rejected) == (8, 3)
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [
        ("6", "not_in_code_list"), ("11", "malformed_row"), ("12", "not_in_code_list")]


@pytest.mark.parametrize("value", ["rad ett\r\nrad två", "rad ett\r\n\r\nrad tre"])  # the second holds an empty line
def test_an_empty_line_after_a_value_spanning_lines(ws, value):
    p = ws.dir / "blank2.csv"
    lines = _export(p, 5, comment={2: value})  # K2's value spans lines from line 3: row 3
    at = next(i for i, line in enumerate(lines) if line.startswith(b"0180;K5;") or b";K5;" in line)
    lines[at] = lines[at].replace(b";Boende;", b";BAD;")  # K5: row 6, and 7 after the empty line
    r = ws.import_(_save(p, lines[:at - 1] + [b""] + lines[at - 1:]))
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("7", "not_in_code_list")]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 4 << 20])
def test_empty_lines_and_all_lines_are_found_whatever_the_pieces_the_file_is_read_in(tmp_path, chunk, monkeypatch):
    import isu.read

    monkeypatch.setattr(isu.read, "CHUNK", chunk)
    p = tmp_path / "x.csv"
    for data, want, lines in [(b"h\na\n\nb\r\n\r\nc\n", (3, 5), 6), (b"h\n\n\n", (2, 3), 3), (b"h\na\nb", (), 3),
                              (b"h\r\n\r\nx", (2,), 3), (b"h\r\na\r\nb\r\n", (), 3), (b"h\ra\r\rb\r", (3,), 4)]:
        p.write_bytes(data)
        assert isu.read._digest_and_encoding(p)[-2:] == (want, lines)


def test_lines_counted_twice_without_a_row_set_aside_are_one_input_error(ws, monkeypatch):
    # the check raised a ValueError (max() of no rows) when more lines were read than the file has
    import dataclasses as dc

    import isu.importer

    p = ws.dir / "x.csv"
    _save(p, _export(p, 3))
    real = isu.importer.inspect_file
    monkeypatch.setattr(isu.importer, "inspect_file", lambda path: dc.replace(real(path), lines=2))
    with pytest.raises(InputError, match=r"^x\.csv: \d+ more rows and lines were read than the file has lines; nothing was imported"):
        ws.import_(p)
    assert _stored(ws) == (0, 0, 0)
