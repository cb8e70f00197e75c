"""``isu import`` / ``isu validate`` / ``isu status`` as a user runs them: exit codes, one-line errors, JSON.

Most tests call the console entry (``isu.cli.main.run``) in this process with its own argv,
environment and working folder: the same code path as the shell, without paying the CLI's start-up
on every test. The busy-workspace and end-to-end tests run a real subprocess.
"""

from __future__ import annotations

import json
import os

import duckdb
import pytest

from conftest import pnr, run_isu, wide_header, wide_row, write_csv


def one_line_error(proc) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert err.startswith("error:"), err
    return err


@pytest.fixture
def files(ws):
    good = write_csv(ws.dir / "good.csv", [wide_row(1), wide_row(2)])
    mixed = write_csv(ws.dir / "mixed.csv", [wide_row(3), wide_row(4, need_area="Månen")], encoding="cp1252")
    return good, mixed


def test_init_key_import_status_json(isu, tmp_path, files):
    """The whole first-use path; the import itself through the installed console entry in a real process."""
    good, _ = files
    env = {**os.environ, "ISU_DB": str(tmp_path / "new.duckdb"), "ISU_KEY_FILE": str(tmp_path / "new.key")}
    p = isu("init", "--json", env=env)
    assert p.returncode == 0 and json.loads(p.stdout)["created"] is True
    p = isu("key", "new", "--json", env=env)
    assert p.returncode == 0 and len(json.loads(p.stdout)["fingerprint"]) == 16
    assert (tmp_path / "new.key").stat().st_mode & 0o777 == 0o600
    p = run_isu("import", str(good), "--json", env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert (res["rows_read"], res["rows_accepted"], res["rows_rejected"], res["records_inserted"]) == (2, 2, 0, 2)
    p = isu("status", "--json", env=env)
    s = json.loads(p.stdout)
    assert (p.returncode, s["records"], s["clients"], len(s["imports"])) == (0, 2, 2, 1)
    assert s["imports"][0]["file_sha256"] == res["sha256"]


def test_rejected_rows_exit_10_and_rejects_file(isu, ws, files):
    _, mixed = files
    out = ws.dir / "out" / "fel.csv"
    p = isu("import", str(mixed), "--rejects", str(out), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 10, p.stderr
    assert "rejected 1" in p.stdout and "not_in_code_list 1" in p.stdout and str(out) in p.stdout.replace("\n", "")
    assert out.is_file() and "Månen" in out.read_text(encoding="utf-8-sig")


def test_default_rejects_file_lands_in_the_current_folder(isu, ws, files):
    _, mixed = files
    (ws.dir / "run").mkdir()
    p = isu("import", str(mixed), env=ws.env(), cwd=ws.dir / "run")
    assert p.returncode == 10 and (ws.dir / "run" / "mixed.rejects.csv").is_file()


def test_two_files_json_and_reimport(isu, ws, files):
    good, mixed = files
    p = isu("import", str(good), str(mixed), "--json", "--rejects", str(ws.dir / "rej"), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 10
    res = json.loads(p.stdout)["files"]
    assert [(r["rows_accepted"], r["rows_rejected"]) for r in res] == [(2, 0), (1, 1)]
    assert (ws.dir / "rej" / "mixed.rejects.csv").is_file()
    p = isu("import", str(good), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and "already imported" in p.stdout


def test_dry_run_and_validate_write_nothing(isu, ws, files):
    _, mixed = files
    for args in (("import", "--dry-run"), ("validate",)):
        p = isu(*args, str(mixed), "--json", env=ws.env(), cwd=ws.dir)
        assert p.returncode == 10, p.stderr
        assert json.loads(p.stdout)["dry_run"] is True
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert (s["records"], s["imports"], s["key_fingerprint"]) == (0, [], None)


def test_validate_without_a_workspace(isu, tmp_path, files):
    good, _ = files
    env = {**os.environ, "ISU_DB": str(tmp_path / "none.duckdb"), "ISU_KEY_FILE": str(files[0].parent / "pool.key")}
    p = isu("validate", str(good), "--json", env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["rows_accepted"] == 2 and not (tmp_path / "none.duckdb").exists()


def test_profile_mismatch_exit_3_one_line(isu, ws):
    header = [("Startdatun" if h == "Startdatum" else h) for h in wide_header()]
    p = write_csv(ws.dir / "m.csv", [{**wide_row(1), "Startdatun": "2024-03-01"}], header)
    proc = isu("import", str(p), "--profile", "generic_sv", env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 3
    err = one_line_error(proc)
    assert "'Startdatum'" in err and "'Startdatun'" in err


def test_an_error_leaves_stdout_empty(ws):
    """Off a terminal the progress bar stays off: it used to leave a blank line on stdout."""
    proc = run_isu("import", str(ws.dir / "nope.csv"), env=ws.env(), cwd=ws.dir)
    assert (proc.returncode, proc.stdout) == (3, "") and proc.stderr.startswith("error:"), proc.stderr


def test_a_file_without_rows_says_so(isu, ws):
    p = write_csv(ws.dir / "h.csv", [])
    proc = isu("validate", str(p), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 0 and "no rows: is it the right export?" in " ".join(proc.stdout.split())


def test_unreadable_file_exit_3(isu, ws):
    (ws.dir / "x.csv").write_bytes(b"\x00\x01\x02")
    proc = isu("import", str(ws.dir / "x.csv"), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 3 and "x.csv" in one_line_error(proc)


def test_missing_key_exit_6(isu, ws, files):
    good, _ = files
    proc = isu("--key-file", str(ws.dir / "nokey"), "import", str(good), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 6 and "isu key new" in one_line_error(proc)
    proc = isu("--key-file", str(ws.dir), "import", str(good), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 6 and "is a folder; --key-file names the pool key file itself" in one_line_error(proc)


def test_validate_needs_no_key(isu, ws, files):
    """Checking an export before the pool key has arrived: the same checks (none depends on the
    key), nothing kept; a key that is there but wrong is still refused."""
    _, mixed = files
    proc = isu("--key-file", str(ws.dir / "nokey"), "validate", str(mixed), "--json", env=ws.env(), cwd=ws.dir)
    res = json.loads(proc.stdout)
    assert proc.returncode == 10 and (res["rows_read"], res["rows_accepted"], res["rows_rejected"]) == (2, 1, 1)
    ws.key_file.chmod(0o644)
    assert isu("validate", str(mixed), env=ws.env(), cwd=ws.dir).returncode == 6


def test_validate_without_the_key_does_not_guess_updated_or_unchanged(isu, ws, files):
    """A stored record's content hash holds its pseudonym, which needs the key: without it, a
    stored record would look changed. The check says what it cannot tell."""
    good, _ = files
    assert isu("import", str(good), env=ws.env(), cwd=ws.dir).returncode == 0
    again = write_csv(ws.dir / "again.csv", [wide_row(1), wide_row(2, need_area="Skola"), wide_row(5)])
    nokey = ["--key-file", str(ws.dir / "nokey")]
    res = json.loads(isu(*nokey, "validate", str(again), "--json", env=ws.env(), cwd=ws.dir).stdout)
    assert (res["without_key"], res["records_inserted"], res["records_existing"], res["records_updated"], res["records_unchanged"]) == (
        True, 1, 2, None, None)
    text = isu(*nokey, "validate", str(again), env=ws.env(), cwd=ws.dir).stdout
    assert "1 new, 2 already stored (updated or unchanged" in " ".join(text.split()), text
    res = json.loads(isu("validate", str(again), "--json", env=ws.env(), cwd=ws.dir).stdout)
    assert (res["without_key"], res["records_inserted"], res["records_updated"], res["records_unchanged"]) == (False, 1, 1, 1)


def test_a_workspace_that_cannot_be_written_is_checked_but_not_imported_into(isu, ws, files, monkeypatch, tmp_path_factory):
    """A read-only folder (a mounted share, say): import is one clear line; validate writes nothing,
    so it checks against an empty workspace and says so."""
    import os

    good, _ = files
    real = os.access
    monkeypatch.setattr("isu.store.os.access", lambda p, mode: False if str(p) == str(ws.dir) else real(p, mode))
    proc = isu("import", str(good), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 4 and f"its folder {ws.dir} is read-only" in one_line_error(proc)
    elsewhere = tmp_path_factory.mktemp("rejects")
    proc = isu("validate", str(good), "--json", "--rejects", str(elsewhere), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 0 and json.loads(proc.stdout)["rows_accepted"] == 2
    assert "checked against an empty workspace" in proc.stderr


def test_open_key_file_refused(isu, ws, files):
    good, _ = files
    ws.key_file.chmod(0o644)
    proc = isu("import", str(good), env=ws.env(), cwd=ws.dir)
    assert proc.returncode == 6 and "chmod 600" in one_line_error(proc)


def test_missing_workspace_exit_4(isu, tmp_path):
    proc = isu("--db", str(tmp_path / "none.duckdb"), "status")
    assert proc.returncode == 4 and "isu init" in one_line_error(proc)


@pytest.mark.parametrize("db", ["a\\b/isu.duckdb", "a\\b.duckdb"])
def test_a_backslash_in_the_workspace_path_is_named(isu, tmp_path, db):
    """DuckDB reads a backslash as a folder separator on any system: it would open another file, or none."""
    (tmp_path / "a\\b").mkdir()
    proc = isu("--db", db, "init", cwd=tmp_path)
    assert proc.returncode == 4 and "backslash" in one_line_error(proc) and str(tmp_path / "a\\b") in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a\\b"] and not any((tmp_path / "a\\b").iterdir())


def test_second_writer_gets_workspace_busy(isu, ws, files):
    """Another process holds the workspace: import and status say so in one line, exit 5."""
    good, _ = files
    holder = duckdb.connect(str(ws.db))  # this test process is the other writer
    try:
        procs = [run_isu("import", str(good), env=ws.env(), cwd=ws.dir), run_isu("status", "--json", env=ws.env())]
        check = run_isu("validate", str(good), "--json", env=ws.env(), cwd=ws.dir)  # a check needs no workspace
    finally:
        holder.close()
    for proc in procs:
        assert proc.returncode == 5, proc.stderr
        assert "workspace busy" in one_line_error(proc)
    assert check.returncode == 0 and json.loads(check.stdout)["rows_accepted"] == 2, check.stderr
    assert isu("import", str(good), env=ws.env(), cwd=ws.dir).returncode == 0  # free again


def test_out_of_memory_is_one_line_and_changes_nothing(tmp_path):
    """The import never spills (its scan sees person ids): a file too big for the limit is refused cleanly."""
    from isu.keys import new_key
    from isu.sample_data import write_benchmark_csv

    export = tmp_path / "big.csv"
    write_benchmark_csv(export, 150_000, encoding="utf-8")
    new_key(tmp_path / "k.key")
    env = {**os.environ, "ISU_DB": str(tmp_path / "w.duckdb"), "ISU_KEY_FILE": str(tmp_path / "k.key"), "ISU_MEMORY_LIMIT": "40MB"}
    assert run_isu("init", env=env).returncode == 0
    res = run_isu("import", str(export), "--rejects", str(tmp_path / "r.csv"), env=env)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0
    assert "ISU_MEMORY_LIMIT" in res.stderr
    status = run_isu("status", "--json", env={**env, "ISU_MEMORY_LIMIT": ""})
    assert json.loads(status.stdout)["records"] == 0


def test_import_needs_a_workspace_and_refuses_a_data_file_as_one(isu, ws, files, tmp_path):
    """A mistyped --db would otherwise make a new workspace, and a CSV given as --db would be opened
    by DuckDB as an in-memory database: the import would report success and save nothing."""
    good, _ = files
    p = isu("--db", str(tmp_path / "typo.duckdb"), "import", str(good), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 4 and "run 'isu init'" in one_line_error(p)
    assert not (tmp_path / "typo.duckdb").exists()
    notes = tmp_path / "notes.csv"
    notes.write_bytes(b"a;b\r\n")
    p = isu("--db", str(notes), "import", str(good), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 4 and "not an isu workspace" in one_line_error(p)
    assert notes.read_bytes() == b"a;b\r\n"


def test_again_imports_a_file_once_more(isu, ws, files):
    good, _ = files
    assert isu("import", str(good), env=ws.env(), cwd=ws.dir).returncode == 0
    p = isu("import", str(good), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and "already imported" in p.stdout and "--again" in p.stdout
    p = isu("import", str(good), "--again", "--json", env=ws.env(), cwd=ws.dir)
    res = json.loads(p.stdout)
    assert p.returncode == 0 and not res["already_imported"] and (res["rows_read"], res["records_unchanged"]) == (2, 2)
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert (s["records"], len(s["imports"])) == (2, 2)
    _, mixed = files  # one row rejected, imported twice: counted once
    assert isu("import", str(mixed), env=ws.env(), cwd=ws.dir).returncode == 10
    assert isu("import", str(mixed), "--again", env=ws.env(), cwd=ws.dir).returncode == 10
    assert json.loads(isu("status", "--json", env=ws.env()).stdout)["rows_rejected"] == 1


def test_rejects_path_problems_are_usage_errors_before_anything_is_written(isu, ws, files):
    good, mixed = files
    p = isu("import", str(mixed), "--rejects", str(mixed), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 2 and "the export itself" in one_line_error(p)
    blocker = ws.dir / "afile.txt"
    blocker.write_text("x")
    p = isu("import", str(mixed), "--rejects", str(blocker / "sub" / "r.csv"), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 2 and "cannot write the rejects file" in one_line_error(p) and "--rejects" in one_line_error(p)
    p = isu("import", str(good), str(mixed), "--rejects", str(ws.dir / "r.xlsx"), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 2 and "names one file" in one_line_error(p)
    assert json.loads(isu("status", "--json", env=ws.env()).stdout)["records"] == 0


def test_a_rejects_file_that_cannot_be_written_is_one_line(isu, ws, files, monkeypatch):
    _, mixed = files

    def broken(rejected, path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("isu.rejects.write_file", broken)
    p = isu("import", str(mixed), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 1 and "could not be written" in one_line_error(p) and "rejects table" in p.stderr


def test_several_files_one_broken_the_others_still_import(isu, ws, files):
    good, mixed = files
    broken = ws.dir / "broken.csv"
    broken.write_bytes(b"\x00\x01binary")
    p = isu("import", str(good), str(broken), str(mixed), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3, p.stderr
    out = json.loads(p.stdout)["files"]
    assert [("error" in r, r.get("rows_read")) for r in out] == [(False, 2), (True, None), (False, 2)]
    assert out[1]["exit_code"] == 3 and "binary" in out[1]["error"]
    assert json.loads(isu("status", "--json", env=ws.env()).stdout)["records"] == 3


def test_one_broken_file_with_json_is_one_object_and_one_line(isu, ws):
    broken = ws.dir / "broken.csv"
    broken.write_bytes(b"\x00\x01binary")
    p = isu("import", str(broken), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3
    out = json.loads(p.stdout)
    assert out["file"] == str(broken) and out["exit_code"] == 3 and "binary" in out["error"]
    assert "binary" in one_line_error(p)


@pytest.mark.parametrize(("command", "verb"), [(("import",), "imported"), (("import", "--dry-run"), "checked"), (("validate",), "checked")])
def test_several_files_the_summary_says_how_many_failed(isu, ws, files, command, verb):
    good, _ = files
    broken = ws.dir / "broken.csv"
    broken.write_bytes(b"\x00\x01binary")
    p = isu(*command, str(good), str(broken), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3 and f"1 of 2 files could not be {verb}; the other was" in p.stderr, p.stderr
    p = isu(*command, str(broken), str(broken), env=ws.env(), cwd=ws.dir)
    assert f"2 of 2 files could not be {verb}\n" in p.stderr.replace("\r", ""), p.stderr


def test_a_code_list_mapping_to_an_unknown_category_is_one_line(isu, ws, files, tmp_path):
    """A regional mapping file with a typo in a category would file every such row under a
    category no published table knows: the import stops before reading a row."""
    from isu.schemas.codes import CODES_DIR

    good, _ = files
    codes = tmp_path / "codes"
    codes.mkdir()
    text = (CODES_DIR / "intervention_mapping.csv").read_text(encoding="utf-8")
    (codes / "intervention_mapping.csv").write_text(text + "KBTX,psychosocial,KBT\n", encoding="utf-8")
    p = isu("import", str(good), env={**ws.env(), "ISU_CODES_DIR": str(codes)}, cwd=ws.dir)
    assert p.returncode == 1 and "'psychosocial', which is not in intervention_categories.csv" in one_line_error(p)
    assert json.loads(isu("status", "--json", env=ws.env()).stdout)["records"] == 0


def test_summary_names_columns_that_are_not_read(isu, ws):
    path = write_csv(ws.dir / "k.csv", [{**wide_row(1), "Kommentar": "ring tillbaka"}], wide_header() + ["Kommentar"])
    p = isu("import", str(path), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and "not read (profile generic_sv names no such column): 'Kommentar'" in p.stdout


def test_summary_says_where_a_workbooks_header_is_when_not_on_row_1(isu, ws):
    from conftest import write_xlsx

    path = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], at=(2, 1))
    p = isu("import", str(path), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and "xlsx sheet 'Export', header on row 3" in p.stdout


def test_summary_says_when_the_sheet_read_is_hidden_in_excel(isu, ws):
    from conftest import write_xlsx

    path = write_xlsx(ws.dir / "w.xlsx", [wide_row(1)], sheet="Data", before={"Info": [["Uppföljning"]]}, hidden={"Data": "hidden"})
    p = isu("import", str(path), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and json.loads(p.stdout)["sheet_hidden"] is True
    p = isu("import", str(path), "--again", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and "xlsx sheet 'Data' (hidden in Excel)" in p.stdout


def test_a_file_named_after_a_person_id_is_masked_in_output_and_workspace(isu, ws):
    pid = "19870127-4832"
    folder = ws.dir / pid
    folder.mkdir()
    path = write_csv(folder / f"{pid}.csv", [wide_row(1)])
    p = isu("import", str(path), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 0 and pid not in p.stdout + p.stderr and "********-****.csv" in json.loads(p.stdout)["file"]
    with duckdb.connect(str(ws.db), read_only=True) as con:
        assert con.execute("SELECT file_name FROM imports").fetchall() == [("********-****.csv",)]
    (folder / "tom.csv").write_text("", encoding="utf-8")
    p = isu("import", str(folder / "tom.csv"), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3 and "the file is empty" in p.stderr and pid not in p.stderr


def test_a_check_writes_no_rejects_file_unless_asked(isu, ws, files):
    """``isu validate`` (and ``import --dry-run``) writes nothing: the first rejects are shown
    instead of a rejects file, and --rejects writes one when asked."""
    _, mixed = files
    run = ws.dir / "run"
    run.mkdir()
    for args in (("validate",), ("import", "--dry-run")):
        p = isu(*args, str(mixed), env=ws.env(), cwd=run)
        assert p.returncode == 10, p.stderr
        text = " ".join(p.stdout.split())
        assert "row 3, column Livsområde: 'Månen' is not a known code" in text and "--rejects FILE.csv writes them" in text
        assert "see " not in text
        res = json.loads(isu(*args, str(mixed), "--json", env=ws.env(), cwd=run).stdout)
        assert (res["rejects_file"], [r["row"] for r in res["rejects_shown"]]) == (None, [3])
    assert list(run.iterdir()) == [] and not list(ws.dir.glob("*.rejects.*"))
    p = isu("validate", str(mixed), "--rejects", str(run / "fel.csv"), env=ws.env(), cwd=run)
    assert p.returncode == 10 and (run / "fel.csv").is_file() and f"see {run / 'fel.csv'}" in " ".join(p.stdout.split())
    # an import still writes its rejects file beside where it runs, and shows no rejects of its own
    p = isu("import", str(mixed), "--json", env=ws.env(), cwd=run)
    assert (run / "mixed.rejects.csv").is_file() and json.loads(p.stdout)["rejects_shown"] == []


def test_a_check_shows_ten_rejects_and_says_how_many_more(isu, ws):
    path = write_csv(ws.dir / "many.csv", [wide_row(i, need_area="Månen") for i in range(1, 13)])
    p = isu("validate", str(path), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 10
    assert p.stdout.count("is not a known code") == 10 and "… and 2 more; --rejects FILE.csv writes them all" in " ".join(p.stdout.split())


def test_re_importing_an_earlier_version_says_later_imports_changed_it(isu, ws):
    """v1, then v2 changing a record, then v1 again: skipped, saying truthfully that later imports
    changed its records; --dry-run and validate say it would be skipped (and what --again would do)."""
    v1 = write_csv(ws.dir / "v1.csv", [wide_row(1), wide_row(2)])
    v2 = write_csv(ws.dir / "v2.csv", [wide_row(1, need_area="Skola"), wide_row(2)])
    assert isu("import", str(v1), env=ws.env(), cwd=ws.dir).returncode == 0
    p = isu("import", str(v1), env=ws.env(), cwd=ws.dir)  # nothing since: nothing changed, truly
    assert p.returncode == 0 and "already imported on" in p.stdout and "nothing changed since; skipped" in " ".join(p.stdout.split())
    assert isu("import", str(v2), env=ws.env(), cwd=ws.dir).returncode == 0
    p = isu("import", str(v1), env=ws.env(), cwd=ws.dir)
    text = " ".join(p.stdout.split())
    assert p.returncode == 0 and "(import #1, same SHA-256), but later imports (#2) have changed 1 of its records since; skipped" in text
    assert "nothing changed" not in text and "--again" in text
    res = json.loads(isu("import", str(v1), "--json", env=ws.env(), cwd=ws.dir).stdout)
    assert (res["already_imported"], res["changed_since"], res["imported_before"]["later_imports"], res["import_id"]) == (True, 1, [2], None)
    for args in (("import", "--dry-run"), ("validate",)):
        p = isu(*args, str(v1), env=ws.env(), cwd=ws.dir)
        text = " ".join(p.stdout.split())
        assert "have changed 1 of its records since; would be skipped by isu import" in text, text
        assert "records: would be 0 new, 1 updated, 1 unchanged" in text
        res = json.loads(isu(*args, str(v1), "--json", env=ws.env(), cwd=ws.dir).stdout)
        assert (res["already_imported"], res["changed_since"], res["records_updated"]) == (True, 1, 1)
    p = isu("import", str(v1), "--again", "--dry-run", "--json", env=ws.env(), cwd=ws.dir)
    assert json.loads(p.stdout)["already_imported"] is False  # --again: no skip to predict
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert len(s["imports"]) == 2
    with duckdb.connect(str(ws.db), read_only=True) as con:
        assert con.execute("SELECT need_area FROM records WHERE record_key = 'K1'").fetchall() == [("school",)]
    res = json.loads(isu("import", str(v1), "--again", "--json", env=ws.env(), cwd=ws.dir).stdout)
    assert (res["already_imported"], res["records_updated"]) == (False, 1)


def test_records_absent_from_a_re_export_are_counted_and_kept(isu, ws):
    first = write_csv(ws.dir / "jan.csv", [wide_row(1), wide_row(2), wide_row(3), wide_row(4, municipality="0128")])
    p = isu("import", str(first), "--json", env=ws.env(), cwd=ws.dir)
    assert json.loads(p.stdout)["records_not_in_file"] == {}  # nothing stored before
    feb = write_csv(ws.dir / "feb.csv", [wide_row(1), wide_row(5), wide_row(6, need_area="Månen"), wide_row(3, need_area="Månen")])
    for args in (("validate",), ("import",)):
        p = isu(*args, str(feb), env=ws.env(), cwd=ws.dir)
        text = " ".join(p.stdout.split())
        # K2 is not in the file; K3 is (its row rejected); 0128 has no row in it
        assert f"1 stored record of 0180 is not in this file ({'would be kept' if args == ('validate',) else 'kept'})" in text, text
        assert "0128" not in text
    res = json.loads(isu("validate", str(feb), "--json", env=ws.env(), cwd=ws.dir).stdout)
    assert res["records_not_in_file"] == {"0180": 1}
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert s["records"] == 5  # nothing deleted


def test_status_counts_the_rejects_of_the_latest_version_of_each_file(isu, ws):
    """Corrected versions of an export (same name, new content) replace the earlier version's
    rejects in the count; a file of another municipality under the same name, or a file named after
    a person (its stored name masked), replaces nothing; all imports' rejects are reported too."""
    export = ws.dir / "export.csv"
    write_csv(export, [wide_row(1), wide_row(2, need_area="Månen"), wide_row(3, need_area="Månen")])
    assert isu("import", str(export), env=ws.env(), cwd=ws.dir).returncode == 10
    write_csv(export, [wide_row(1), wide_row(2), wide_row(3, need_area="Månen")])  # corrected: one reject left
    assert isu("import", str(export), env=ws.env(), cwd=ws.dir).returncode == 10
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert (s["rows_rejected"], s["rows_rejected_all"]) == (1, 3)
    assert [i["superseded_by"] for i in s["imports"]] == [2, None]
    other = ws.dir / "other"
    other.mkdir()
    write_csv(other / "export.csv", [wide_row(7, municipality="0128", need_area="Månen"), wide_row(8, municipality="0128")])
    named = [write_csv(ws.dir / f"{pid}.csv", [wide_row(i), wide_row(i + 1, need_area="Månen")])
             for i, pid in ((9, "198112189876"), (11, pnr(500)))]  # both stored as ************.csv
    for f in (other / "export.csv", *named):
        assert isu("import", str(f), env=ws.env(), cwd=ws.dir).returncode == 10
    s = json.loads(isu("status", "--json", env=ws.env()).stdout)
    assert (s["rows_rejected"], s["rows_rejected_all"]) == (4, 6) and [i["superseded_by"] for i in s["imports"]][2:] == [None] * 3
    text = " ".join(isu("status", env=ws.env()).stdout.split())
    assert "rejected rows: 4 (latest import of each file; 2 more in imports replaced since)" in text and "replaced by #2" in text
