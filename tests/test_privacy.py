"""Privacy invariant 1: a raw person id never reaches the workspace, rejects files or any output.

Exports carry ids in every written form (12 digits, YYYYMMDD-NNNN, YYMMDD-NNNN, YYMMDD+NNNN,
samordningsnummer), invalid ids, and ids where they do not belong (record key, code columns,
dates, values, a free-text column, a header-less export). After importing them through the
command line, every file the run left in the workspace folder, every output, and every VARCHAR
value of every table is searched for every written form of every id.
"""

from __future__ import annotations

import json
import re
import zipfile
from datetime import date
from pathlib import Path

import duckdb
import pytest
from stdnum import luhn

from conftest import long_header, long_rows, wide_header, wide_row, write_csv, write_xlsx


def _id(birth: date, serial: int, *, coordination: bool = False, valid: bool = True) -> str:
    day = birth.day + (60 if coordination else 0)
    nine = f"{birth:%y%m}{day:02d}{serial:03d}"
    check = luhn.calc_check_digit(nine)
    if not valid:
        check = str((int(check) + 3) % 10)
    return f"{birth.year}{nine[2:]}{check}"


# twelve-digit ids of synthetic people; how each is written in the exports is chosen below
P = {
    "twelve": _id(date(1980, 1, 1), 123),
    "long_dash": _id(date(1975, 12, 31), 456),
    "short_dash": _id(date(1992, 6, 15), 782),
    "short_plus": _id(date(1915, 3, 9), 311),  # over a hundred: YYMMDD+NNNN
    "coordination": _id(date(1988, 4, 12), 245, coordination=True),
    "bad_check": _id(date(1966, 9, 30), 407, valid=False),
    "bad_date": "19771332" + "1234",
    "in_key": _id(date(1959, 2, 2), 918),
    "in_key_short": _id(date(1961, 7, 7), 128),
    "in_need": _id(date(1970, 8, 8), 553),
    "in_code": _id(date(1971, 9, 9), 664),
    "in_pseudonym": _id(date(1972, 10, 10), 775),
    "in_comment": _id(date(1973, 11, 11), 886),
    "in_date": _id(date(1974, 12, 12), 997),
    "in_value": _id(date(1983, 1, 13), 108),
    "duplicate": _id(date(1984, 2, 14), 219),
    "long_file": _id(date(1999, 5, 5), 330),
    "long_conflict": _id(date(2001, 3, 3), 441),
    "xlsx": _id(date(2003, 4, 4), 552),
    "xlsx_bad": _id(date(2004, 5, 5), 663, valid=False),
    "header": _id(date(1990, 10, 10), 774),
    "c1": _id(date(1991, 11, 11), 885),
}


def forms(twelve: str) -> set[str]:
    """Every written form of one id: 12 and 10 digits, with '-' or '+', long or short date part."""
    d12, d10 = twelve, twelve[2:]
    return {d12, d10, f"{d12[:8]}-{d12[8:]}", f"{d12[:8]}+{d12[8:]}", f"{d10[:6]}-{d10[6:]}", f"{d10[:6]}+{d10[6:]}"}


ALL_FORMS = {f: name for name, twelve in P.items() for f in forms(twelve)}
CORES = {twelve[2:]: name for name, twelve in P.items()}  # ten digits: what survives any separators


def found_in_text(text: str) -> list[str]:
    hits = [f"{name}:{f}" for f, name in ALL_FORMS.items() if f in text]
    return hits


def found_in_bytes(data: bytes) -> list[str]:
    return [f"{name}:{f}" for f, name in ALL_FORMS.items() if f.encode() in data]


def _dash(t: str) -> str:
    return f"{t[:8]}-{t[8:]}"


def _short(t: str, sep: str = "-") -> str:
    return f"{t[2:8]}{sep}{t[8:]}"


@pytest.fixture
def exports(ws) -> dict[str, Path]:
    header = wide_header() + ["Pseudonym", "Kommentar"]
    wide = [
        wide_row(1, person_id=P["twelve"]),
        wide_row(2, person_id=_dash(P["long_dash"])),
        wide_row(3, person_id=_short(P["short_dash"])),
        wide_row(4, person_id=_short(P["short_plus"], "+")),
        wide_row(5, person_id=_dash(P["coordination"])),
        wide_row(6, person_id=_dash(P["bad_check"])),
        wide_row(7, person_id=P["bad_date"]),
        wide_row(8, record_key=_dash(P["in_key"])),
        wide_row(9, record_key="A" + P["in_key_short"][2:]),
        wide_row(10, need_area=_dash(P["in_need"])),
        wide_row(11, intervention_code=_short(P["in_code"])),
        wide_row(12, person_id="", Pseudonym=P["in_pseudonym"]),
        wide_row(13, Kommentar=f"ringde {_dash(P['in_comment'])} igen"),
        wide_row(14, started_on=_dash(P["in_date"])),
        wide_row(15, T0_value=P["in_value"]),
        wide_row(16, person_id=P["duplicate"], record_key="DUP"),
        wide_row(17, person_id=_dash(P["duplicate"]), record_key="DUP"),
    ]
    long = long_rows(1, person_id=_short(P["long_file"])) + long_rows(2, person_id=P["long_conflict"])
    long += long_rows(2, measurements=(("Uppföljning", "1"),), person_id=P["long_conflict"], need_area="Narkotika")
    xlsx = [wide_row(30, person_id=_dash(P["xlsx"])), wide_row(31, person_id=_dash(P["xlsx_bad"]))]
    headerless = ws.dir / "headerless.csv"
    headerless.write_text(f"0180;K40;{_dash(P['header'])};K;2;FAM;2024-03-01\n0180;K41;;M;3;FAM;2024-03-02\n")  # no header row
    return {
        "wide": write_csv(ws.dir / "wide.csv", wide, header, encoding="cp1252"),
        "long": write_csv(ws.dir / "long.csv", long, long_header(), bom=True),
        "xlsx": write_xlsx(ws.dir / "export.xlsx", xlsx),
        "headerless": headerless,
        "c1": write_csv(ws.dir / "c1.csv", [wide_row(41, person_id=P["c1"], intervention_code="€")], encoding="cp1252"),
    }


def _table_values(db: Path) -> list[tuple[str, str, str]]:
    """(table, column, value) for every non-NULL value of every table, as text."""
    out = []
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        for t in tables:
            cols = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [t]).fetchall()]
            for c in cols:
                for (v,) in con.execute(f'SELECT DISTINCT CAST("{c}" AS VARCHAR) FROM "{t}" WHERE "{c}" IS NOT NULL').fetchall():
                    out.append((t, c, v))
    finally:
        con.close()
    return out


def test_no_person_id_anywhere(ws, exports, isu):
    env, cwd = ws.env(), ws.dir / "run"
    cwd.mkdir()
    runs = {
        "import csv --json": isu("import", str(exports["wide"]), str(exports["long"]), "--rejects", str(ws.dir / "rejects"), "--json", env=env, cwd=cwd),
        "import xlsx": isu("import", str(exports["xlsx"]), "--rejects", str(ws.dir / "rejects.xlsx"), env=env, cwd=cwd),
        "validate --json": isu("validate", str(exports["wide"]), "--json", env=env, cwd=cwd),
        "dry run": isu("import", "--dry-run", str(exports["long"]), env=env, cwd=cwd),
        "headerless": isu("import", str(exports["headerless"]), env=env, cwd=cwd),
        "c1": isu("import", str(exports["c1"]), env=env, cwd=cwd),
        "status --json": isu("status", "--json", env=env, cwd=cwd),
        "status": isu("status", env=env, cwd=cwd),
    }
    # the imports really happened and really rejected the planted rows
    res = json.loads(runs["import csv --json"].stdout)["files"]
    assert res[0]["rows_accepted"] == 6 and res[0]["rows_rejected"] == 11, res[0]["errors_by_type"]
    assert {"invalid_person_id", "id_in_key", "duplicate_key", "not_in_code_list", "bad_format"} <= set(res[0]["errors_by_type"])
    assert res[1]["rows_rejected"] == 3
    assert runs["headerless"].returncode == 3

    # the search itself works: it finds the ids in the exports it read
    seen = {h.split(":")[0] for k in ("wide", "long", "headerless", "c1") for h in found_in_bytes(exports[k].read_bytes())}
    assert seen == set(P) - {"xlsx", "xlsx_bad"}

    leaks: list[str] = []
    for name, r in runs.items():
        leaks += [f"{name} stdout {h}" for h in found_in_text(r.stdout)]
        leaks += [f"{name} stderr {h}" for h in found_in_text(r.stderr)]
    inputs = set(exports.values()) | {ws.key_file}
    written = [p for p in ws.dir.rglob("*") if p.is_file() and p not in inputs]
    assert any(p.suffix == ".wal" or p.name == "isu.duckdb" for p in written)
    assert any(p.suffix == ".xlsx" for p in written) and any(p.name.endswith(".rejects.csv") for p in written)
    for p in written:
        data = p.read_bytes()
        leaks += [f"{p.relative_to(ws.dir)} {h}" for h in found_in_bytes(data)]
        if data[:4] == b"PK\x03\x04":  # XLSX: the text is inside compressed XML
            with zipfile.ZipFile(p) as z:
                for member in z.namelist():
                    leaks += [f"{p.name}/{member} {h}" for h in found_in_bytes(z.read(member))]
    for t, c, v in _table_values(ws.db):
        digits = re.sub(r"\D", "", v)
        leaks += [f"table {t}.{c} {name}: {v!r}" for core, name in CORES.items() if core in digits]
    assert not leaks, "person ids found:\n" + "\n".join(sorted(set(leaks)))


def test_paths_named_after_a_person_id(ws, isu):
    """No raw id in any output, paths included; and a path printed is one that exists: a file the
    toolkit names itself (the default rejects file) never carries the id, so the masked path shown
    is its real path; paths the user gave (an export, --out, --db) are shown masked."""
    pid = "198112189876"  # a valid synthetic personnummer (Luhn)
    assert luhn.is_valid(pid[2:])
    run = ws.dir / "run"
    run.mkdir()
    export = write_csv(ws.dir / f"{pid}.csv", [wide_row(1), wide_row(2, need_area="Månen")])
    other = write_csv(ws.dir / f"{_dash(P['twelve'])}.csv", [wide_row(3), wide_row(4, need_area="Månen")])
    env = ws.env()
    runs = {"import": isu("import", str(export), str(other), env=env, cwd=run),
            "import --json": isu("import", str(export), "--again", "--json", env=env, cwd=run)}
    made = sorted(p.name for p in run.iterdir())
    assert len(made) == 2 and all(n.startswith(("xxxxxxxxxxxx.", "xxxxxxxx-xxxx.")) and n.endswith(".rejects.csv") for n in made), made
    shown = [line.split("see ", 1)[1].strip() for line in runs["import"].stdout.replace("\n  ", "\n").splitlines() if "see " in line]
    assert len(shown) == 2 and all(Path(s).is_file() for s in shown), (shown, runs["import"].stdout)
    assert Path(json.loads(runs["import --json"].stdout)["rejects_file"]).is_file()
    key, db = ws.dir / f"{pid}.key", ws.dir / f"{pid}.duckdb"
    runs |= {
        "key new": isu("key", "new", "--out", str(key), env=env, cwd=run),
        "key new --json": isu("key", "new", "--out", str(ws.dir / f"{pid}b.key"), "--json", env=env, cwd=run),
        "init": isu("--db", str(db), "init", env=env, cwd=run),
        "init --json": isu("--db", str(db), "init", "--json", env=env, cwd=run),
        "status": isu("--db", str(db), "status", env=env, cwd=run),
    }
    assert key.is_file() and db.is_file()
    assert all(r.returncode in (0, 10) for r in runs.values()), {k: r.stderr for k, r in runs.items()}
    leaks = [f"{name} {h}" for name, r in runs.items() for h in found_in_text(r.stdout + r.stderr)]
    leaks += [f"{name} {pid}" for name, r in runs.items() if pid in r.stdout + r.stderr or pid[2:] in r.stdout + r.stderr]
    assert not leaks, leaks
    assert "************.key" in runs["key new"].stdout and "************.duckdb" in runs["init"].stdout
    # nor in the workspace files: DuckDB names a database opened directly after its file, and keeps that
    # name in it; nor does the workspace the exports named after the id went into keep their names
    for workspace in (db, ws.db):
        wal = workspace.with_name(workspace.name + ".wal")
        data = workspace.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
        assert not [f for f in forms(pid) if f.encode() in data], workspace


def test_paths_named_after_a_person_id_in_the_other_commands(ws, isu, monkeypatch):
    """demo, publish, dashboard, pool export and import, sql and status, in text and --json: a path
    the user gave (--dir, --out, --db, a package) named after a person id is shown masked; every
    file the toolkit names itself in such a folder (the demo's files, the published tables) is
    named without the id; and the pool's imports log keeps the package's name masked."""
    pid = "198112189876"
    hits = lambda text: sorted(f for f in forms(pid) if f in text)  # noqa: E731
    from isu import sample_data

    full = sample_data.load_manifest  # the demo on one small export: the masking, not the sample, is tested here
    monkeypatch.setattr(sample_data, "load_manifest",
                        lambda d: {**(m := full(d)), "files": [e for e in m["files"] if e["file"].startswith("2303_")]})
    run = ws.dir / "run"
    run.mkdir()
    demo_dir = ws.dir / pid
    runs = {"demo": isu("demo", "--dir", str(demo_dir), cwd=run),
            "demo --json": isu("demo", "--dir", str(demo_dir), "--json", cwd=run)}
    env = {**ws.env(), "ISU_DB": str(demo_dir / "isu.duckdb"), "ISU_KEY_FILE": str(demo_dir / "isu.key")}
    pub, html = ws.dir / _dash(pid) / "published", ws.dir / f"{_short(pid)}.html"
    package, package2 = demo_dir / f"{pid[2:]}.isupool.zip", ws.dir / f"{_short(pid, '+')}.isupool.zip"
    region = ws.dir / f"{pid}-region.duckdb"
    runs |= {
        "publish": isu("publish", "--out", str(pub), "--lp-max-cells", "0", env=env, cwd=run),
        "publish --json": isu("publish", "--out", str(pub), "--lp-max-cells", "0", "--json", env=env, cwd=run),
        "dashboard": isu("dashboard", "--out", str(html), env=env, cwd=run),
        "dashboard --json": isu("dashboard", "--out", str(html), "--json", env=env, cwd=run),
        "pool export": isu("pool", "export", "--out", str(package), env=env, cwd=run),
        "pool export --json": isu("pool", "export", "--out", str(package2), "--json", env=env, cwd=run),
        "pool import": isu("--db", str(region), "pool", "import", str(package), env=env, cwd=run),
        "pool import --json": isu("--db", str(region), "pool", "import", str(package), str(package2), "--json", env=env, cwd=run),
        "status": isu("--db", str(region), "status", env=env, cwd=run),
        "status --json": isu("--db", str(region), "status", "--json", env=env, cwd=run),
        "sql": isu("--db", str(region), "sql", "--microdata", "SELECT kind, file_name FROM imports", env=env, cwd=run),
        "sql --format json": isu("--db", str(region), "sql", "--microdata", "SELECT file_name FROM imports",
                                 "--format", "json", env=env, cwd=run),
    }
    assert all(r.returncode in (0, 10) for r in runs.values()), {k: r.stderr for k, r in runs.items() if r.returncode not in (0, 10)}
    errors = {  # and where they fail: the one error line, and its JSON object
        "sql, no workspace": isu("--db", str(ws.dir / f"{pid}.duckdb"), "sql", "SELECT 1", env=env, cwd=run),
        "publish --out a file --json": isu("publish", "--out", str(package), "--json", env=env, cwd=run),
        "dashboard --out a folder": isu("dashboard", "--out", str(demo_dir), env=env, cwd=run),
        "pool export --out a folder --json": isu("pool", "export", "--out", str(demo_dir), "--json", env=env, cwd=run),
        "pool import, no such package": isu("--db", str(region), "pool", "import", str(ws.dir / f"{pid}.zip"), env=env, cwd=run),
        "demo --dir a file --json": isu("demo", "--dir", str(package), "--json", cwd=run),
    }
    assert all(r.returncode not in (0, 10) and "error:" in r.stderr for r in errors.values()), {k: (r.returncode, r.stderr) for k, r in errors.items()}
    runs |= errors
    leaks = [f"{name} {h}" for name, r in runs.items() for h in hits(r.stdout + r.stderr)]
    assert not leaks, leaks

    # the masked paths are shown: the toolkit's own part as it is, the user's part masked
    demo = json.loads(runs["demo --json"].stdout)
    assert demo["dir"] == str(ws.dir / "************") and demo["dashboard"] == str(ws.dir / "************" / "isu-dashboard.html")
    assert "************" in runs["demo"].stdout
    files = json.loads(runs["publish --json"].stdout)["files"]
    assert sorted(Path(f).name for f in files) == sorted(p.name for p in pub.iterdir()) and all(
        Path(f).parent == ws.dir / "********-****" / "published" for f in files), files
    assert "********-****" in runs["publish"].stdout
    assert json.loads(runs["dashboard --json"].stdout)["out"] == str(ws.dir / "******-****.html")
    assert json.loads(runs["pool export --json"].stdout)["package"] == str(ws.dir / "******+****.isupool.zip")
    assert "**********.isupool.zip" in runs["pool export"].stdout
    imported = json.loads(runs["pool import --json"].stdout)
    assert imported["workspace"] == str(ws.dir / "************-region.duckdb")
    assert [p["package"] for p in imported["packages"]] == [str(demo_dir.with_name("************") / "**********.isupool.zip"),
                                                            str(ws.dir / "******+****.isupool.zip")]
    assert {r["file_name"] for r in json.loads(runs["sql --format json"].stdout)} <= {"**********.isupool.zip", "******+****.isupool.zip"}

    # files the toolkit names itself never carry the id; the part of a path the user gave may
    given = [html, package, package2, region, pub.parent, demo_dir]  # the innermost first

    def own_part(p: Path) -> str:
        for g in given:
            if p == g or g in p.parents:
                return p.relative_to(g).as_posix()
            if p.parent == g.parent and p.name.startswith(g.name):  # DuckDB's region.duckdb.wal
                return p.name[len(g.name):]
        return p.relative_to(ws.dir).as_posix()

    written = [p for p in ws.dir.rglob("*") if p != ws.key_file]
    assert any(p.name == "isu-dashboard.html" for p in written) and any(p.parent == pub for p in written)
    named = [f"{p.relative_to(ws.dir)} {h}" for p in written for h in hits(own_part(p))]
    assert not named, named
    # nor does their content: the demo's workspace and rejects, the published files, the page, the packages (not the
    # region's workspace: DuckDB keeps the name of the file, the user's, inside it; nor the synthetic exports)
    content = [f"{p.relative_to(ws.dir)} {h}" for p in written
               if p.is_file() and "sample_exports" not in p.parts and not p.name.startswith(region.name)
               for h in hits(p.read_bytes().decode("latin-1"))]
    assert not content, content
