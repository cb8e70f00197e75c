"""The import as a whole: shapes, profile choice, re-imports and corrections, keys, one transaction."""

from __future__ import annotations

from datetime import date

import pytest

import isu.importer
import isu.stage
import isu.upsert
from isu.errors import InputError, KeyFileError, ProfileMismatch, UsageError
from isu.importer import import_file
from isu.keys import new_key

from conftest import LONG, WIDE, long_header, long_rows, pnr, store_state, wide_header, wide_row, write_csv


def records(ws) -> dict[str, dict]:
    with ws.connect() as con:
        cur = con.execute("SELECT * FROM records")
        names = [d[0] for d in cur.description]
        return {row[1]: dict(zip(names, row)) for row in cur.fetchall()}


def measurements(ws) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    with ws.connect() as con:
        for key, tp, ins, day, value in con.execute(
                "SELECT record_key, timepoint, instrument, measured_on, value FROM measurements ORDER BY 1, 2, 3").fetchall():
            out.setdefault(key, []).append((tp, ins, day, value))
    return out


def state(ws):
    with ws.connect() as con:
        return store_state(con)


def test_wide_import_stores_records_and_measurements(ws):
    rows = [wide_row(1), wide_row(2, T1_value="", T1_date="", ended_on="", end_reason="", goal_attainment="",
                                  T2_value="2", T2_date="2024-12-01")]
    r = ws.import_(write_csv(ws.dir / "w.csv", rows))
    assert (r.shape, r.profile, r.rows_read, r.rows_accepted, r.records_inserted, r.measurements) == ("wide", "generic_sv", 2, 2, 2, 4)
    assert r.municipalities == ["0180"] and r.import_id == 1
    recs = records(ws)
    k1 = recs["K1"]
    assert (k1["municipality"], k1["need_area"], k1["intervention_code"], k1["category"], k1["legal_basis"], k1["provider"],
            k1["started_on"], k1["ended_on"], k1["end_reason"], k1["goal_attainment"]) == (
        "0180", "housing", "FAM", "family_support", "SoL", "own", date(2024, 3, 1), date(2024, 6, 1), "as_planned", "improved")
    assert (recs["K2"]["ended_on"], recs["K2"]["end_reason"], recs["K2"]["goal_attainment"]) == (None, None, None)
    assert measurements(ws) == {
        "K1": [("T0", "severity04", date(2024, 3, 1), 3.0), ("T1", "severity04", date(2024, 6, 1), 1.5)],
        "K2": [("T0", "severity04", date(2024, 3, 1), 3.0), ("T2", "severity04", date(2024, 12, 1), 2.0)],
    }


def test_long_import_one_record_many_measurements(ws):
    rows = long_rows(1) + long_rows(2, measurements=(("Start", "2,5"), ("Avslut", "1"), ("Uppföljning", "0")))
    r = ws.import_(write_csv(ws.dir / "l.csv", rows, long_header()))
    assert (r.shape, r.profile, r.rows_read, r.rows_accepted, r.records_inserted, r.measurements) == ("long", LONG.name, 5, 5, 2, 5)
    assert [m[0] for m in measurements(ws)["L2"]] == ["T0", "T1", "T2"]
    assert records(ws)["L1"]["category"] == "substance_outpatient"


@pytest.mark.parametrize("which", ["generic_sv", "generic_sv_long", "isu"])
def test_profile_chosen_from_the_header(ws, which):
    if which == "generic_sv":
        p = write_csv(ws.dir / "a.csv", [wide_row(1)])
    elif which == "generic_sv_long":
        p = write_csv(ws.dir / "a.csv", long_rows(1), long_header())
    else:
        from isu.schemas import load_profile

        prof = load_profile("isu")
        header = [c for f, c in prof.columns.items() if f not in ("client", "category")] + ["instrument", "t0_value", "t0_date"]
        row = {"municipality": "0180", "record_key": "I1", "person_id": pnr(1), "need_area": "housing", "intervention_code": "FAM",
               "started_on": "2024-03-01", "instrument": "severity04", "t0_value": "2.5", "t0_date": "2024-03-01"}
        p = write_csv(ws.dir / "a.csv", [row], header, delimiter=",")
    r = ws.import_(p)
    assert (r.profile, r.rows_accepted) == (which, r.rows_read)


@pytest.mark.parametrize("respell", [str.lower, str.upper, lambda h: "  " + h.replace(" ", "   ") + " "], ids=["lower", "upper", "spaces"])
def test_header_case_and_spacing_do_not_matter(ws, respell):
    """A header the case system (or a spreadsheet) wrote in other letter case or spacing is the
    same export: same profile, same records, and rejects name the columns as the file spells them."""
    header = [respell(h) for h in wide_header()]
    rows = [{respell(c): v for c, v in wide_row(i).items()} for i in (1, 2)]
    rows.append({respell(c): v for c, v in wide_row(3, started_on="2024-02-30").items()})
    r = ws.import_(write_csv(ws.dir / "case.csv", rows, header))
    assert (r.profile, r.rows_read, r.rows_accepted, r.measurements) == ("generic_sv", 3, 2, 4), r.errors_by_type
    assert records(ws)["K1"]["started_on"] == date(2024, 3, 1)
    rejects = (ws.dir / "case.rejects.csv").read_text(encoding="utf-8-sig")
    assert respell("Startdatum").strip() in rejects and "bad_date" in rejects


@pytest.mark.parametrize("twin", ["STARTDATUM", "startDatum"])
def test_columns_differing_only_in_case_or_spacing_are_one_clear_error(ws, twin):
    """Either might be read (DuckDB's names ignore case; the profile match ignores case and spacing)."""
    header = wide_header() + [twin]
    with pytest.raises(InputError, match=r"repeats column names .* \(letter case and spacing do not count\)"):
        ws.import_(write_csv(ws.dir / "dup.csv", [{**wide_row(1), twin: "1999-01-01"}], header))
    col = WIDE.groups[0].timepoints["T0"]["value"]  # the same with runs of spaces
    header = wide_header() + [col.replace(" ", "  ")]
    with pytest.raises(InputError, match="repeats column names"):
        ws.import_(write_csv(ws.dir / "dup2.csv", [{**wide_row(1), col.replace(" ", "  "): "9"}], header))
    assert state(ws)["imports"][0] == 0


def test_a_clean_re_export_empties_the_rejects_file_of_the_last_run(ws):
    """Left as it was, the file would still list rows the corrected export no longer has."""
    p = write_csv(ws.dir / "export.csv", [wide_row(1), wide_row(2, need_area="BAD")])
    first = ws.import_(p)
    assert first.rows_rejected == 1 and "BAD" in (ws.dir / "export.rejects.csv").read_text(encoding="utf-8-sig")
    second = ws.import_(write_csv(p, [wide_row(1), wide_row(2)]))
    assert (second.rows_rejected, second.rejects_file) == (0, None)
    assert (ws.dir / "export.rejects.csv").read_text(encoding="utf-8-sig").splitlines() == ["row;column;value;error_type;message"]
    clean = ws.import_(write_csv(ws.dir / "clean.csv", [wide_row(3)]))
    assert clean.rejects_file is None and not (ws.dir / "clean.rejects.csv").exists()  # none made for a clean import


def test_missing_required_column_names_it_and_the_nearest_header(ws):
    header = [("Startdatun" if h == "Startdatum" else h) for h in wide_header()]
    p = write_csv(ws.dir / "m.csv", [{**wide_row(1), "Startdatun": "2024-03-01"}], header)
    for profile in (None, "generic_sv"):
        with pytest.raises(ProfileMismatch) as e:
            ws.import_(p, profile=profile)
        msg = str(e.value)
        assert "'Startdatum'" in msg and "'Startdatun'" in msg and "m.csv" in msg and "\n" not in msg, msg
    assert state(ws)["imports"][0] == 0


def test_misspelt_optional_column_is_not_silently_dropped(ws):
    """'Slutdatun' for 'Slutdatum': the end dates would vanish without a word; the import must say so."""
    header = [("Slutdatun" if h == "Slutdatum" else h) for h in wide_header()]
    p = write_csv(ws.dir / "o.csv", [{**wide_row(1), "Slutdatun": "2024-06-01"}], header)
    with pytest.raises(ProfileMismatch) as e:
        ws.import_(p, profile="generic_sv")
    assert "'Slutdatun'" in str(e.value) and "'Slutdatum'" in str(e.value)


def test_optional_columns_may_be_absent(ws):
    optional = {c for f, c in WIDE.columns.items() if f in ("sex", "birth_year", "legal_basis", "provider", "ended_on",
                                                           "end_reason", "goal_attainment")}
    optional |= {c for tp in ("T1", "T2") for c in WIDE.groups[0].timepoints[tp].values()}
    header = [h for h in wide_header() if h not in optional]
    r = ws.import_(write_csv(ws.dir / "min.csv", [wide_row(1), wide_row(2)], header))
    assert (r.rows_read, r.rows_accepted) == (2, 2), r.errors_by_type
    k1 = records(ws)["K1"]
    assert (k1["ended_on"], k1["end_reason"], k1["legal_basis"], k1["sex"]) == (None, None, None, "M")
    assert measurements(ws)["K1"] == [("T0", "severity04", date(2024, 3, 1), 3.0)]


def test_export_without_measurement_columns(ws):
    header = [c for f, c in WIDE.columns.items() if f != "client"]
    r = ws.import_(write_csv(ws.dir / "rec.csv", [wide_row(1), wide_row(2)], header))
    assert (r.rows_accepted, r.records_inserted, r.measurements) == (2, 2, 0), r.errors_by_type
    assert measurements(ws) == {}


def test_extra_unrelated_columns_are_ignored(ws):
    header = wide_header() + ["Handläggare", "Kommentar"]
    rows = [{**wide_row(1), "Handläggare": "Anna", "Kommentar": "fri text"}]
    r = ws.import_(write_csv(ws.dir / "x.csv", rows, header))
    assert r.rows_accepted == 1
    with ws.connect() as con:
        cols = {c for t in ("records", "measurements") for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [t]).fetchall()}
    assert not {"Handläggare", "Kommentar"} & cols


def test_unknown_profile_name(ws, tmp_path):
    """A name that names no profile is a usage error (exit 2); a profile file that is broken is an input error."""
    with pytest.raises(UsageError, match="no profile 'nope'"):
        ws.import_(write_csv(ws.dir / "a.csv", [wide_row(1)]), profile="nope")
    broken = tmp_path / "broken.toml"
    broken.write_text("shape = 'round'\n", encoding="utf-8")
    with pytest.raises(InputError, match="shape must be"):
        ws.import_(write_csv(ws.dir / "a.csv", [wide_row(1)]), profile=str(broken))


def test_municipality_option_for_files_without_the_column(ws):
    header = [h for h in wide_header() if h != "Kommunkod"]
    p = write_csv(ws.dir / "nm.csv", [wide_row(1), wide_row(2)], header)
    with pytest.raises(ProfileMismatch, match="--municipality"):
        ws.import_(p)
    r = ws.import_(p, municipality="2303")
    assert (r.rows_accepted, r.municipalities) == (2, ["2303"])
    assert {v["municipality"] for v in records(ws).values()} == {"2303"}


def test_unknown_municipality_code_given_as_option_is_a_usage_error(ws):
    """Else every row would be rejected, one by one, for the same option."""
    header = [h for h in wide_header() if h != "Kommunkod"]
    path = write_csv(ws.dir / "nm.csv", [wide_row(1)], header)
    with pytest.raises(UsageError, match="not an SCB municipality code"):
        ws.import_(path, municipality="9999")
    with pytest.raises(UsageError, match="did you mean 0126"):
        ws.import_(path, municipality="126")
    assert ws.import_(path, municipality="0126").rows_accepted == 1


def test_same_file_twice_changes_nothing(ws):
    p = write_csv(ws.dir / "a.csv", [wide_row(1), wide_row(2, need_area="BAD")])
    first = ws.import_(p)
    before = state(ws)
    again = ws.import_(p)
    assert again.already_imported and not first.already_imported
    assert (again.rows_read, again.records_inserted, again.records_updated, again.import_id) == (0, 0, 0, None)
    assert state(ws) == before


def test_corrected_re_export_updates_by_record_key(ws):
    original = [wide_row(i) for i in range(1, 6)]
    first = ws.import_(write_csv(ws.dir / "v1.csv", original))
    assert first.records_inserted == 5
    corrected = [
        wide_row(1, need_area="Psykisk hälsa"),  # a record field changed
        wide_row(2, T1_value="0,5"),  # a measurement value changed
        wide_row(3, T1_value="", T1_date="", ended_on="", end_reason=""),  # a measurement withdrawn
        wide_row(4),  # unchanged
        wide_row(5),  # unchanged
        wide_row(6),  # new
    ]
    second = ws.import_(write_csv(ws.dir / "v2.csv", corrected))
    assert (second.records_inserted, second.records_updated, second.records_unchanged) == (1, 3, 2)
    recs, meas = records(ws), measurements(ws)
    assert len(recs) == 6 and recs["K1"]["need_area"] == "mental_health"
    assert meas["K2"][1] == ("T1", "severity04", date(2024, 6, 1), 0.5)
    assert [m[0] for m in meas["K3"]] == ["T0"] and recs["K3"]["ended_on"] is None
    assert {k: v["import_id"] for k, v in recs.items()} == {"K1": 2, "K2": 2, "K3": 2, "K4": 1, "K5": 1, "K6": 2}
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM measurements").fetchone() == (11,)
        assert con.execute("SELECT records_inserted, records_updated, records_unchanged FROM imports WHERE import_id = 2").fetchone() == (1, 3, 2)


def test_corrected_long_re_export_replaces_measurements(ws):
    ws.import_(write_csv(ws.dir / "l1.csv", long_rows(1, measurements=(("Start", "3"), ("Avslut", "2"))), long_header()))
    r = ws.import_(write_csv(ws.dir / "l2.csv", long_rows(1, measurements=(("Start", "3"), ("Uppföljning", "1"))), long_header()))
    assert (r.records_updated, r.records_unchanged) == (1, 0)
    assert [(m[0], m[3]) for m in measurements(ws)["L1"]] == [("T0", 3.0), ("T2", 1.0)]


def test_dry_run_writes_nothing(ws):
    p = write_csv(ws.dir / "a.csv", [wide_row(1), wide_row(2, need_area="BAD")])
    before = state(ws)
    r = ws.import_(p, dry_run=True)
    assert (r.dry_run, r.rows_read, r.rows_accepted, r.rows_rejected, r.import_id) == (True, 2, 1, 1, None)
    assert state(ws) == before
    assert not ws.import_(p).already_imported  # a dry run is not an import


def test_person_ids_need_a_key(ws):
    p = write_csv(ws.dir / "a.csv", [wide_row(1)])
    with pytest.raises(KeyFileError, match="isu key new"):
        ws.import_(p, key=None)
    loaded = []
    r = ws.import_(p, key=None, key_loader=lambda: loaded.append(1) or ws.key)
    assert r.rows_accepted == 1 and loaded == [1]


def test_pseudonym_only_export_needs_no_key(ws):
    header = [h for h in wide_header() if h != "Personnummer"] + ["Pseudonym"]
    p = write_csv(ws.dir / "a.csv", [{**wide_row(1), "Pseudonym": "cd" * 32}], header)

    def no_key():
        raise AssertionError("the key was loaded for an export without person ids")

    r = ws.import_(p, key=None, key_loader=no_key)
    assert r.rows_accepted == 1 and records(ws)["K1"]["client"] == "cd" * 32


def test_other_key_is_refused_and_changes_nothing(ws):
    ws.import_(write_csv(ws.dir / "a.csv", [wide_row(1)]))
    before = state(ws)
    other = new_key(ws.dir / "other.key")
    with pytest.raises(KeyFileError, match=ws.key.fingerprint):
        ws.import_(write_csv(ws.dir / "b.csv", [wide_row(2)]), key=other)
    assert state(ws) == before


def test_same_person_same_pseudonym_across_forms_and_files(ws):
    pid = pnr(5, year=1971)
    rows = [wide_row(1, person_id=pid), wide_row(2, person_id=f"{pid[:8]}-{pid[8:]}"), wide_row(3, person_id=f"{pid[2:8]}-{pid[8:]}")]
    ws.import_(write_csv(ws.dir / "a.csv", rows[:2]))
    ws.import_(write_csv(ws.dir / "b.csv", rows[2:], encoding="cp1252"))
    recs = records(ws)
    assert len({v["client"] for v in recs.values()}) == 1
    assert {v["birth_year"] for v in recs.values()} == {1971}


def test_failed_import_rolls_back_everything(ws, monkeypatch):
    ws.import_(write_csv(ws.dir / "a.csv", [wide_row(1)]))
    before = state(ws)
    real = isu.upsert.ChunkWriter.chunk

    def write_then_fail(self, stage, **kw):
        real(self, stage, **kw)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(isu.upsert.ChunkWriter, "chunk", write_then_fail)
    con = ws.connect()
    try:
        with pytest.raises(OSError, match="simulated"):
            import_file(con, write_csv(ws.dir / "b.csv", [wide_row(1, need_area="Skola"), wide_row(2)]), key=ws.key)
        assert store_state(con) == before  # the same connection still works and sees no partial write
    finally:
        con.close()
    assert state(ws) == before


def test_accepted_plus_rejected_is_read_and_stored_matches(ws):
    rows = [wide_row(i, need_area="BAD" if i % 3 == 0 else "Boende") for i in range(1, 31)]
    r = ws.import_(write_csv(ws.dir / "a.csv", rows))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (30, 20, 10)
    assert len(records(ws)) == r.rows_accepted == r.records_inserted


def test_cells_lose_the_whitespace_around_them(ws):
    """Tabs, line breaks and no-break spaces around a CSV cell (pasted from a word processor, or a
    value that ends in a line break) are no part of it, as in a workbook's cells."""
    rows = [wide_row(1, sex="K\t", need_area="\u00a0Boende ", record_key="K1\n", T0_value=" 3\r\n", person_id=" " + pnr(1) + "\t"),
            wide_row(2, provider="\u2009Egen regi\u3000", started_on="\t2024-03-01", goal_attainment="3\t")]
    r = ws.import_(write_csv(ws.dir / "pad.csv", rows))
    assert (r.rows_read, r.rows_accepted, r.measurements) == (2, 2, 4), r.errors_by_type
    recs = records(ws)
    assert (recs["K1"]["need_area"], recs["K2"]["provider"], recs["K2"]["started_on"], recs["K2"]["goal_attainment"]) == (
        "housing", "own", date(2024, 3, 1), "improved")
    assert measurements(ws)["K1"][0][3] == 3.0


def test_a_category_the_export_gives_is_checked_against_the_code_list(ws):
    """The isu profile reads a category column: its labels become codes, and an unknown one is rejected."""
    from isu.schemas import load_profile

    prof = load_profile("isu")
    header = [c for f, c in prof.columns.items() if f != "client"]
    base = {"municipality": "0180", "person_id": pnr(1), "need_area": "housing", "intervention_code": "LOCAL9", "started_on": "2024-03-01"}
    rows = [{**base, "record_key": "C1", "category": "Familjebehandling"}, {**base, "record_key": "C2", "category": "case_management"},
            {**base, "record_key": "C3", "category": "motivational"}, {**base, "record_key": "C4", "category": ""}]
    r = ws.import_(write_csv(ws.dir / "cat.csv", rows, header, delimiter=","), profile="isu")
    assert (r.rows_read, r.rows_accepted) == (4, 2)
    assert r.errors_by_type == {"not_in_code_list": 1, "unknown_intervention_code": 1}
    assert {k: v["category"] for k, v in records(ws).items()} == {"C1": "family_support", "C2": "case_management"}
    rejects = (ws.dir / "cat.rejects.csv").read_text(encoding="utf-8-sig")
    assert "4;category;motivational;not_in_code_list" in rejects and "5;intervention_code;LOCAL9;unknown_intervention_code" in rejects


@pytest.mark.parametrize("chunk_rows", [None, 2])
def test_stored_records_not_in_a_re_export_are_counted_and_kept(ws, monkeypatch, chunk_rows):
    """One anti-join after the last chunk, against the keys of every chunk (kept for the later ones):
    a key in an earlier chunk is in the file, a rejected row's key too; nothing is deleted."""
    if chunk_rows:
        monkeypatch.setattr(isu.stage, "CHUNK_ROWS", chunk_rows)
        monkeypatch.setattr(isu.stage, "WHOLE_ROWS", chunk_rows)
        monkeypatch.setattr(isu.stage, "_BATCH", chunk_rows)
    first = ws.import_(write_csv(ws.dir / "a.csv", [wide_row(i) for i in range(1, 8)] + [wide_row(9, municipality="0128")]))
    assert first.records_not_in_file == {}
    rows = [wide_row(1), wide_row(2), wide_row(3, need_area="BAD"), wide_row(4), wide_row(10), wide_row(11)]
    check = ws.import_(write_csv(ws.dir / "b.csv", rows), dry_run=True)
    done = ws.import_(write_csv(ws.dir / "b.csv", rows))
    assert check.records_not_in_file == done.records_not_in_file == {"0180": 3}  # K5, K6, K7; K3's row is there, rejected
    assert len(records(ws)) == 10


def test_an_earlier_version_imported_again_is_skipped_saying_what_changed_since(ws):
    v1 = write_csv(ws.dir / "v1.csv", [wide_row(1), wide_row(2), wide_row(3)])
    ws.import_(v1)
    again = ws.import_(v1)
    assert (again.already_imported, again.changed_since, again.imported_before["later_imports"]) == (True, 0, [])
    ws.import_(write_csv(ws.dir / "v2.csv", [wide_row(1, need_area="Skola"), wide_row(2, T1_value="0")]))
    ws.import_(write_csv(ws.dir / "other.csv", [wide_row(1, municipality="0128")]))  # another municipality: not a later import of v1's
    before = state(ws)
    skip = ws.import_(v1)
    assert (skip.already_imported, skip.changed_since, skip.imported_before["later_imports"], skip.rows_read) == (True, 2, [2], 0)
    assert state(ws) == before
    nokey = ws.import_(v1, key=None, key_loader=lambda: (_ for _ in ()).throw(KeyFileError("no key")))
    assert (nokey.already_imported, nokey.changed_since) == (True, None)  # cannot tell without the key
    check = ws.import_(v1, dry_run=True)
    assert (check.already_imported, check.changed_since, check.records_updated, check.rows_read) == (True, 2, 2, 3)


def test_a_file_the_reader_refuses_is_said_with_what_to_do(ws):
    # the library says it, not only the CLI: a folder is no 'no such file', a text file is no workbook
    folder = ws.dir / "exports"
    folder.mkdir()
    with pytest.raises(InputError, match=r"is a folder, not an export file; give the export files in it instead"):
        ws.import_(folder)
    fake = ws.dir / "export.xlsx"
    fake.write_text("Uppföljning av insatser, utskrift 2024\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"is named \.xlsx but is not an Excel workbook \(it holds plain text\); if it is a CSV export, rename it"):
        ws.import_(fake)
    assert state(ws)["imports"][0] == 0


def test_a_line_break_in_a_header_name_is_said(ws):
    header = wide_header()
    p = ws.dir / "h.csv"
    text = ";".join('"Ärende\nID"' if h == "Ärende-ID" else h for h in header) + "\n" + ";".join(wide_row(1).values()) + "\n"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileMismatch, match=r"the header name 'Ärende\\nID' holds a line break: remove it"):
        ws.import_(p)
