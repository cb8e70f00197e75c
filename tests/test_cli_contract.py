"""The command-line contract where QA found it broken: a file that cannot be read in a batch, output
off a terminal, folders and files given for one another, exit codes as the README gives them,
messages that say what to do, and one JSON object for every error exit under ``--json``.

Permission failures need a process that obeys file modes: as root (CI, containers) that is one
run under ``setpriv`` without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH; such a test is skipped where
neither works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import run_isu, wide_row, write_csv

_SETPRIV = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def one_line_error(proc) -> str:
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert err.startswith("error:"), err
    return err


def _obeying_modes(probe_path, *, write: bool = False) -> list[str]:
    """A command prefix under which file modes apply (``setpriv`` as root, nothing otherwise), checked
    on ``probe_path`` (unreadable, or an unwritable folder with ``write``); skip if there is none."""
    prefix = _SETPRIV if os.geteuid() == 0 and shutil.which("setpriv") else []
    probe = ["test", "-w" if write else "-r", str(probe_path)]
    try:
        works = subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode == 0  # setpriv itself may be refused
        still = not works or subprocess.run([*prefix, *probe], capture_output=True, check=False).returncode == 0
    except OSError:
        still = True
    if still:
        pytest.skip(f"{probe_path} is still {'writable' if write else 'readable'} here (root without a working setpriv)")
    return prefix


def as_limited(prefix: list[str], *args: str, env=None, cwd=None) -> subprocess.CompletedProcess:
    """``isu ARGS`` in a subprocess under ``prefix`` (see ``_obeying_modes``)."""
    script = shutil.which("isu")
    assert script, "the isu console script is installed"
    return subprocess.run([*prefix, script, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def two_good(ws):
    return (write_csv(ws.dir / "a.csv", [wide_row(1), wide_row(2)]), write_csv(ws.dir / "b.csv", [wide_row(3)]))


# 1. an unreadable file in a batch


def test_an_unreadable_file_in_a_batch_is_one_line_exit_3_and_the_others_import(ws, two_good):
    a, b = two_good
    locked = write_csv(ws.dir / "locked.csv", [wide_row(4)])
    locked.chmod(0)
    prefix = _obeying_modes(locked)
    p = as_limited(prefix, "import", str(a), str(locked), str(b), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3, p.stderr
    assert "Usage:" not in p.stderr and "Traceback" not in p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error:") and "locked.csv" in lines[0], p.stderr
    assert "no permission to read" in lines[0] and "read access" in lines[0]  # what, and what to do
    assert "1 of 3 files could not be imported" in lines[1]
    assert "a.csv: imported" in p.stdout and "b.csv: imported" in p.stdout
    con = ws.connect(read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 3
    finally:
        con.close()


def test_an_unreadable_file_alone_with_json_is_one_object(ws):
    locked = write_csv(ws.dir / "locked.csv", [wide_row(4)])
    locked.chmod(0)
    prefix = _obeying_modes(locked)
    p = as_limited(prefix, "validate", str(locked), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3 and "no permission to read" in one_line_error(p)
    out = json.loads(p.stdout)
    assert (out["file"], out["type"], out["exit_code"]) == (str(locked), "InputError", 3) and "read access" in out["error"]


# 2. off a terminal, lines are whole


def test_output_in_a_pipe_is_not_wrapped_at_80_columns(ws, tmp_path):
    """A real pipe, with no COLUMNS: rich's default would wrap at 80 columns."""
    deep = tmp_path / ("a_rather_long_folder_name_for_the_unit_" * 2) / "uppfoljning_individ_och_familjeomsorg_2024"
    deep.mkdir(parents=True)
    export = write_csv(deep / "uppfoljning.csv", [wide_row(1), wide_row(2, need_area="Månen")])
    env = {k: v for k, v in ws.env().items() if k not in ("COLUMNS", "LINES")}
    p = run_isu("import", str(export), env=env, cwd=deep)
    assert p.returncode == 10, p.stderr
    assert f"  see {deep / 'uppfoljning.rejects.csv'}\n" in p.stdout  # on one line, whole
    first = p.stdout.splitlines()[0]
    assert first.startswith("uppfoljning.csv: imported") and first.endswith("rejected 1")


def test_sql_table_off_a_terminal_keeps_long_values_whole(isu, ws):
    value = "x" * 300 + "END"
    p = isu("sql", "--microdata", f"SELECT '{value}' AS v, 1 AS n", env=ws.env())
    assert p.returncode == 0, p.stderr
    assert value in p.stdout and "…" not in p.stdout


# 3. / 4. a file given for a folder, a folder for a file


def test_demo_dir_that_is_a_file_is_one_line_exit_2(isu, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("x")
    p = isu("demo", "--dir", str(f), cwd=tmp_path)
    assert p.returncode == 2 and "is a file, not a folder" in one_line_error(p)
    p = isu("demo", "--dir", str(f / "sub"), "--json", cwd=tmp_path)
    assert p.returncode == 2 and json.loads(p.stdout)["exit_code"] == 2
    assert f.read_text() == "x"


def test_import_a_folder_says_so_and_what_to_do(isu, ws, two_good):
    a, _ = two_good
    folder = ws.dir / "exports"
    folder.mkdir()
    p = isu("import", str(folder), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3
    err = one_line_error(p)
    assert "is a folder" in err and "no such file" not in err and str(folder / "*.csv") in err
    p = isu("import", str(a), str(folder), env=ws.env(), cwd=ws.dir)  # in a batch: reported, the others imported
    assert p.returncode == 3 and "a.csv: imported" in p.stdout and "is a folder" in p.stderr


def test_a_missing_file_says_where_it_was_looked_for(isu, ws):
    p = isu("import", "nothere.csv", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3
    err = one_line_error(p)
    assert "no such file" in err and str(ws.dir) in err and "check the name" in err


# 5. exit codes as the README gives them


@pytest.mark.parametrize("args", [("--threshold", "0"), ("--format", "foo")], ids=["threshold 0", "format foo"])
def test_publish_option_values_that_cannot_work_exit_2(isu, ws, args):
    p = isu("publish", *args, env=ws.env())
    assert p.returncode == 2, p.stderr
    one_line_error(p)


def test_publish_out_that_is_a_file_exits_2_before_any_work(isu, ws):
    f = ws.dir / "published"
    f.write_text("x")
    p = isu("publish", "--out", str(f), env=ws.env())
    assert p.returncode == 2 and "--out" in one_line_error(p)


def test_import_from_a_read_only_folder_exits_2_and_says_rejects(ws, tmp_path):
    """The README: 2 is also an output path that cannot be written (here the rejects file's default, the current folder)."""
    export = write_csv(ws.dir / "mixed.csv", [wide_row(1), wide_row(2, need_area="Månen")])
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    prefix = _obeying_modes(ro, write=True)
    p = as_limited(prefix, "import", str(export), env=ws.env(), cwd=ro)
    assert p.returncode == 2 and "--rejects" in one_line_error(p)


def test_demo_in_a_read_only_folder_exits_4_not_6(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    prefix = _obeying_modes(ro, write=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISU_")}
    p = as_limited(prefix, "demo", env=env, cwd=ro)
    assert p.returncode == 4, p.stderr
    err = one_line_error(p)
    assert str(ro) in err and "--dir" in err
    assert list(ro.iterdir()) == []


# 6. messages that say what to do


def test_isu_db_a_folder_or_in_a_missing_folder(isu, ws, tmp_path):
    p = isu("status", env={**ws.env(), "ISU_DB": str(tmp_path)})
    assert p.returncode == 4
    err = one_line_error(p)
    assert "is a folder" in err and str(tmp_path / "isu.duckdb") in err and "IO Error" not in err
    missing = tmp_path / "nope" / "isu.duckdb"
    p = isu("init", env={**ws.env(), "ISU_DB": str(missing)})
    assert p.returncode == 4
    err = one_line_error(p)
    assert "does not exist" in err and "mkdir" in err and "IO Error" not in err
    assert not missing.parent.exists()


def test_stray_cr_in_the_header_names_the_column(isu, ws):
    good = write_csv(ws.dir / "good.csv", [wide_row(1)], delimiter=",")
    lines = good.read_bytes().split(b"\n")
    names = lines[0].split(b",")
    names[2] += b"\r"
    cr = ws.dir / "cr.csv"
    cr.write_bytes(b"\n".join([b",".join(names), *lines[1:]]))
    p = isu("import", str(cr), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3
    err = one_line_error(p)
    assert "carriage return" in err and "column 3" in err and names[2].decode().strip() in err and "text editor" in err
    assert "universal-newline" not in err


def test_a_text_file_named_xlsx(isu, ws):
    fake = ws.dir / "export.xlsx"
    fake.write_text("this is not a workbook\n", encoding="utf-8")
    p = isu("import", str(fake), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3
    err = one_line_error(p)
    assert "not an Excel workbook" in err and "rename it to .csv" in err


def test_key_new_into_a_missing_folder(isu, tmp_path):
    p = isu("key", "new", "--out", str(tmp_path / "missing" / "dir" / "pool.key"), cwd=tmp_path)
    assert p.returncode == 2
    err = one_line_error(p)
    assert "does not exist" in err and "--out" in err


# 7. --json: one object for every error exit


@pytest.mark.parametrize(
    ("args", "code", "kind"),
    [
        (("status", "--json"), 4, "WorkspaceError"),  # the workspace does not exist
        (("key", "new", "--out", "{dir}/pool.key", "--json"), 6, "KeyFileError"),  # already exists
        (("import", "--json", "--no-such-option", "x.csv"), 2, "UsageError"),
        (("import", "--json"), 2, "UsageError"),  # missing argument
        (("publish", "--period", "week", "--json"), 2, "UsageError"),
        (("publish", "--threshold", "1", "--json"), 2, "UsageError"),
        (("import", "{dir}/a.csv", "{dir}/b.csv", "--rejects", "{dir}/r.csv", "--json"), 2, "UsageError"),
        (("demo", "--dir", "{dir}/a.csv", "--json"), 2, "UsageError"),
    ],
    ids=["no workspace", "key exists", "unknown option", "missing argument", "bad --period", "threshold 1",
         "rejects file for two", "demo dir a file"],
)
def test_every_error_exit_prints_one_json_object(isu, ws, two_good, args, code, kind):
    env = ws.env()
    if args[0] == "status":
        env = {**env, "ISU_DB": str(ws.dir / "none.duckdb")}
    p = isu(*(a.replace("{dir}", str(ws.dir)) for a in args), env=env, cwd=ws.dir)
    assert p.returncode == code, p.stderr
    out = json.loads(p.stdout)  # one object, nothing else on stdout
    assert out["exit_code"] == code and out["type"] == kind and out["error"]
    assert "\n" not in out["error"] and out["error"].split(";")[0] in p.stderr  # the same message as the line on stderr
    assert "Traceback" not in p.stderr


def test_json_error_is_masked_and_on_one_line(isu, ws):
    from conftest import pnr

    pid = pnr(7)
    p = isu("import", str(ws.dir / f"{pid}.csv"), "--json", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 3 and pid not in p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert "no such file" in out["error"] and "\n" not in out["error"]


def test_diagnose_finds_no_cause_in_files_the_reader_can_read(tmp_path):
    """``diagnose`` runs only after the reader refused a file; where that was for another reason
    (a header that fits no profile, say) it must not invent one: the reader's message stands."""
    from conftest import write_xlsx

    from isu.diagnose import diagnose

    assert diagnose(write_xlsx(tmp_path / "book.xlsx", [wide_row(1)])) is None
    assert diagnose(write_csv(tmp_path / "plain.csv", [wide_row(1)])) is None
    assert diagnose(write_csv(tmp_path / "crlf.csv", [wide_row(1)], newline="\r\n")) is None
    quoted = tmp_path / "quoted.csv"
    quoted.write_bytes(b'a;"b\r\nc";d\n1;2;3\n')  # a line break inside a quoted name is the reader's to judge
    assert diagnose(quoted) is None
    xls = tmp_path / "old.xlsx"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert "97-2003" in str(diagnose(xls))


# 8. a closed output pipe, usage errors, what cannot be read, a --rejects folder that does not exist


def test_a_closed_output_pipe_stops_quietly_with_141(ws):
    """``isu validate FILE | head -1``: the reader takes one line and goes; isu stops without a word
    (no traceback, no message) and exits 141, as a tool stopped by SIGPIPE (the README's choice)."""
    exports = [write_csv(ws.dir / f"many{i}.csv", [wide_row(j, need_area="Månen") for j in range(40)]) for i in range(3)]
    script = shutil.which("isu")
    assert script, "the isu console script is installed"
    proc = subprocess.Popen([script, "validate", *map(str, exports)], env=ws.env(), cwd=ws.dir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # before the next file's summary: checking it takes far longer than this
    _, err = proc.communicate(timeout=120)
    assert first.startswith(b"many0.csv: checked")
    assert proc.returncode == 141, err.decode()
    assert err == b"", err.decode()


@pytest.mark.parametrize("args", [("status",), ("validate", "{dir}/a.csv", "--json"), ("--help",), ("import", "--help")],
                         ids=["status", "validate --json", "--help", "import --help"])
def test_a_pipe_closed_before_any_output_stops_quietly_with_141(ws, two_good, args):
    """The help too: typer prints it through a console of its own, whose broken pipe exited 1."""
    read, write = os.pipe()
    os.close(read)  # no reader at all: the first write fails
    script = shutil.which("isu")
    try:
        p = subprocess.run([script, *(a.replace("{dir}", str(ws.dir)) for a in args)], env=ws.env(), cwd=ws.dir,
                           stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    assert p.returncode == 141 and p.stderr == "", p.stderr


@pytest.mark.parametrize(
    ("args", "command", "words"),
    [
        (("import", "--nosuch", "x.csv"), "isu import", ["no such option: --nosuch"]),
        (("import",), "isu import", ["missing argument", "files"]),
        (("publish", "--threshold", "abc"), "isu publish", ["invalid value for '--threshold' / '-k': 'abc' is not a whole number"]),
        (("publish", "--lp-max-cells=2.5"), "isu publish", ["invalid value for '--lp-max-cells': '2.5' is not a whole number"]),
        (("import", "--dry-runn", "x.csv"), "isu import", ["--dry-runn", "did you mean --dry-run?"]),
        (("--db", "x.duckdb", "import", "--profile"), "isu import", ["'--profile' requires an argument"]),
        (("key", "new", "--out"), "isu key new", ["'--out' requires an argument"]),
        (("imprt", "x.csv"), "isu", ["no such command 'imprt'", "did you mean 'import'?"]),
    ],
    ids=["unknown option", "missing argument", "threshold abc", "lp-max-cells=2.5", "did you mean", "missing value", "missing value nested",
         "unknown command"],
)
def test_a_usage_error_is_one_line_naming_the_command_exit_2(isu, ws, args, command, words):
    p = isu(*args, env=ws.env(), cwd=ws.dir)
    assert p.returncode == 2, p.stderr
    err = one_line_error(p)
    assert err.startswith(f"error: {command}: ") and err.endswith(f"(see {command} --help)"), err
    assert all(w in err for w in words), err
    assert "╭" not in p.stderr and "Usage:" not in p.stderr and p.stdout == ""
    at = len(command.split()) - 1 + (2 if args[0] == "--db" else 0)  # after the command's words (and --db's value)
    at = at or len(args)  # an unknown command: at the end
    j = isu(*args[:at], "--json", *args[at:], env=ws.env(), cwd=ws.dir)  # the same message in the JSON object
    assert j.returncode == 2 and json.loads(j.stdout) == {"error": err.removeprefix("error: "), "type": "UsageError", "exit_code": 2}


def test_a_usage_error_in_a_shell_is_one_line(ws):
    p = run_isu("import", "--nosuch", env=ws.env(), cwd=ws.dir)
    assert p.returncode == 2
    assert one_line_error(p) == "error: isu import: no such option: --nosuch (see isu import --help)"


def test_an_unreadable_pool_key_says_which_and_what_to_do(ws, two_good):
    from conftest import pnr

    a, _ = two_good
    pid = pnr(5)
    key = ws.dir / f"{pid}.key"  # a path shaped like a person id is shown masked
    ws.key_file.rename(key)
    key.chmod(0)
    prefix = _obeying_modes(key)
    env = {**ws.env(), "ISU_KEY_FILE": str(key)}
    for args in (("import", str(a)), ("validate", str(a)), ("pool", "export", "--out", str(ws.dir / "p.zip"))):
        p = as_limited(prefix, *args, env=env, cwd=ws.dir)
        assert p.returncode == 6, p.stderr
        err = one_line_error(p)
        assert "cannot read the pool key" in err and "permission denied" in err and "read access" in err and "ISU_KEY_FILE" in err
        assert str(ws.dir) in err and pid not in p.stderr + p.stdout and "******" in err
    p = as_limited(prefix, "validate", str(a), "--json", env=env, cwd=ws.dir)
    out = json.loads(p.stdout)
    assert (p.returncode, out["type"], out["exit_code"]) == (6, "KeyFileError", 6) and pid not in out["error"]
    p = as_limited(prefix, "key", "new", "--out", str(key), env=env, cwd=ws.dir)  # not click's "is not readable"
    assert p.returncode == 6 and "already exists" in one_line_error(p)
    assert as_limited(prefix, "status", env=env, cwd=ws.dir).returncode == 0  # status needs no key


def test_an_unreadable_workspace_says_which_and_what_to_do(ws, two_good):
    a, _ = two_good
    ws.db.chmod(0)
    prefix = _obeying_modes(ws.db)
    for args in (("status",), ("import", str(a)), ("validate", str(a)), ("sql", "SELECT 1")):
        p = as_limited(prefix, *args, env=ws.env(), cwd=ws.dir)
        assert p.returncode == 4, (args, p.stderr)
        err = one_line_error(p)
        assert f"cannot open the workspace {ws.db}: permission denied" in err and "access" in err and "--db" in err
    ws.db.chmod(0o600)
    locked = ws.dir / "locked"  # a folder on the way without permission
    locked.mkdir()
    shutil.copy(ws.db, locked / "isu.duckdb")
    locked.chmod(0)
    p = as_limited(prefix, "status", "--json", env={**ws.env(), "ISU_DB": str(locked / "isu.duckdb")}, cwd=ws.dir)
    assert p.returncode == 4 and "permission denied" in one_line_error(p) and json.loads(p.stdout)["type"] == "WorkspaceError"


def test_rejects_in_a_folder_that_does_not_exist_is_a_usage_error_before_the_import(isu, ws):
    mixed = write_csv(ws.dir / "mixed.csv", [wide_row(1), wide_row(2, need_area="Månen")])
    missing = ws.dir / "missing" / "dir"
    for args in (("import", str(mixed)), ("validate", str(mixed)), ("import", "--dry-run", str(mixed))):
        p = isu(*args, "--rejects", str(missing / "x.csv"), env=ws.env(), cwd=ws.dir)
        assert p.returncode == 2, p.stderr
        assert one_line_error(p) == f"error: --rejects {missing / 'x.csv'}: the folder {missing} does not exist (create it first, or name another)"
    p = isu("import", str(mixed), "--rejects", str(missing), "--json", env=ws.env(), cwd=ws.dir)  # a folder, for its rejects file
    assert p.returncode == 2 and json.loads(p.stdout)["type"] == "UsageError" and f"the folder {missing} does not exist" in p.stderr
    assert not (ws.dir / "missing").exists()
    assert json.loads(isu("status", "--json", env=ws.env()).stdout)["records"] == 0  # nothing imported
    p = isu("import", str(mixed), "--rejects", str(ws.dir / "fel.csv"), env=ws.env(), cwd=ws.dir)  # in a folder that exists
    assert p.returncode == 10 and (ws.dir / "fel.csv").is_file()
    run = ws.dir / "run"
    run.mkdir()
    p = isu("import", str(mixed), "--again", env=ws.env(), cwd=run)  # the default: the current folder
    assert p.returncode == 10 and (run / "mixed.rejects.csv").is_file()
    p = isu("import", str(mixed), "--again", "--rejects", str(ws.dir / "new" / "fel.csv"), env=ws.env(), cwd=ws.dir)
    assert p.returncode == 10 and (ws.dir / "new" / "fel.csv").is_file()  # one folder in one that exists is made


def test_started_with_stdout_closed_runs_nothing_and_says_so(ws, two_good):
    """``isu import a.csv >&-``: its summary could go nowhere, and the first file it opened would take
    stdout's place; one line, exit 2, nothing imported. A closed stderr loses the error line only."""
    a, _ = two_good
    script = shutil.which("isu")
    p = subprocess.run(["bash", "-c", f"'{script}' import '{a}' >&-"], env=ws.env(), cwd=ws.dir, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "standard output is closed" in one_line_error(p)
    assert json.loads(subprocess.run([script, "status", "--json"], env=ws.env(), capture_output=True, text=True).stdout)["records"] == 0
    p = subprocess.run(["bash", "-c", f"'{script}' --db '{ws.dir / 'none.duckdb'}' status 2>&-"], env=ws.env(), cwd=ws.dir,
                       capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stdout) == (4, "")
    p = subprocess.run(["bash", "-c", f"'{script}' import '{a}' 2>&-"], env=ws.env(), cwd=ws.dir, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "a.csv: imported" in p.stdout


@pytest.mark.parametrize("raised", ["KeyboardInterrupt()", "RuntimeError('Query interrupted')", "duckdb.InterruptException('x')"],
                         ids=["in Python", "in a DuckDB query", "DuckDB's own"])
def test_ctrl_c_during_an_import_says_so_exits_130_and_changes_nothing(ws, two_good, raised):
    """Ctrl-C reaches the import as a KeyboardInterrupt, or (in a query) as the error DuckDB makes of
    it; typer's runner turned the first into a silent 130 and the second was a traceback."""
    a, b = two_good
    code = (f"import sys, duckdb, isu.importer as imp\ndef stop(*a, **k):\n    raise {raised}\nimp._run = stop\n"
            f"from isu.cli.main import run\nsys.argv = ['isu', 'import', {str(b)!r}]\nrun()\n")
    assert run_isu("import", str(a), env=ws.env(), cwd=ws.dir).returncode == 0
    p = subprocess.run([sys.executable, "-c", code], env=ws.env(), cwd=ws.dir, capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stderr) == (130, "interrupted; nothing was changed by the unfinished step\n")
    status = json.loads(run_isu("status", "--json", env=ws.env()).stdout)
    assert (status["records"], len(status["imports"])) == (2, 1), status


def test_ctrl_c_while_the_toolkit_loads_says_so_and_exits_130():
    """The console script's entry (``isu.cli.main``) loads typer, DuckDB, pydantic...: most of a second."""
    code = ("import builtins, sys\nreal = builtins.__import__\n"
            "def stop(name, *a, **k):\n    if name == 'typer':\n        raise KeyboardInterrupt\n    return real(name, *a, **k)\n"
            "builtins.__import__ = stop\nfrom isu.cli import main\nsys.argv = ['isu', '--version']\nmain()\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (p.returncode, p.stdout, p.stderr) == (130, "", "interrupted before anything was done\n")
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="console_scripts", name="isu")] == ["isu.cli:main"]


def test_every_exit_code_is_in_the_readme_and_the_help():
    """One list (``isu.errors.EXIT_CODES``): the README and ``isu --help`` name each of its codes."""
    import re
    from pathlib import Path

    from typer.testing import CliRunner

    from isu.cli.main import app
    from isu.errors import EXIT_CODES

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    listed = {int(c) for c in re.findall(r"(?:^|· |codes: )(\d+) ", readme[readme.index("Exit codes"):], flags=re.M)}
    help_text = " ".join(CliRunner().invoke(app, ["--help"], terminal_width=400).output.split())
    assert listed == set(EXIT_CODES), "README and isu.errors.EXIT_CODES list different exit codes"
    for code in EXIT_CODES:
        assert f"{code} " in help_text, f"isu --help does not list exit code {code}"
