"""End to end: five rural Jämtland municipalities import their sample exports and send packages;
the region imports them. Real commands, real processes where process behaviour matters
(exit codes, the workspace lock, SIGKILL), a privacy scan of everything that travels.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_isu
from isu.cli.main import app
from isu.schemas import load_profile
from test_pool_helpers import (
    JAMTLAND,
    export_all,
    flip_member_byte,
    id_forms,
    killable_import,
    snapshot,
)
from typer.testing import CliRunner

from isu.keys import new_key
from isu.pseudonym import canonical
from isu.status import workspace_status
from isu.store import connect

SAMPLE = Path(__import__("isu.sample_data", fromlist=["x"]).__file__).parent / "files"


def isu(*args: str) -> tuple[int, str, BaseException | None]:
    """The real CLI in this process (no start-up cost): exit code, stdout, IsuError raised if any."""
    r = CliRunner().invoke(app, [str(a) for a in args])
    exc = r.exception if r.exception and not isinstance(r.exception, SystemExit) else None
    return (getattr(exc, "exit_code", 1) if exc else r.exit_code), r.stdout, exc


@pytest.fixture(scope="module")
def jamtland(tmp_path_factory):
    """The five municipalities' workspaces (imported with ``isu import``) and their packages."""
    d = tmp_path_factory.mktemp("jamtland")
    files = SAMPLE if (SAMPLE / "manifest.json").is_file() else d / "sample"
    if files != SAMPLE:
        from isu.sample_data.generate import generate

        generate(files)
    sample = json.loads((files / "manifest.json").read_text(encoding="utf-8"))
    key = d / "pool.key"
    new_key(key)
    packages, outputs = {}, []
    for entry in sample["files"]:
        code = entry["municipalities"][0]
        if code not in JAMTLAND:
            continue
        db = d / f"{code}.duckdb"
        assert isu("--db", db, "init")[0] == 0
        rc, out, exc = isu("--db", db, "--key-file", key, "import", files / entry["file"], "--rejects", d)
        assert rc in (0, 10) and exc is None, out
        packages[code] = d / f"{code}.isupool.zip"
        rc, out, exc = isu("--db", db, "pool", "export", "--out", packages[code], "--json")
        assert rc == 0 and exc is None, out
        outputs.append(out)
    assert sorted(packages) == sorted(JAMTLAND)
    return d, files, sample, key, packages, outputs


@pytest.fixture(scope="module")
def region_2303(jamtland, tmp_path_factory):
    """A region that holds 2303's package."""
    return _region(tmp_path_factory.mktemp("region"), "region.duckdb", [jamtland[4]["2303"]])


def _region(d: Path, name: str, packages) -> Path:
    db = d / name
    rc, out, exc = isu("--db", db, "pool", "import", *packages, "--json")
    assert rc == 0 and exc is None, out
    return db


def test_the_region_links_movers_and_matches_the_sample(jamtland):
    d, _, sample, _, packages, _ = jamtland
    db = d / "region-all.duckdb"
    rc, out, _ = isu("--db", db, "pool", "import", *packages.values(), "--json")
    summary = json.loads(out)
    assert rc == 0 and summary["imported"] == 5
    expected = sample["pools"]["jamtland_rural"]
    con = connect(db, read_only=True)
    status = workspace_status(con)
    assert status["records"] == expected["accepted_records"] and status["clients"] == expected["clients"]
    per_municipality = sum(n for (n,) in con.execute(
        "SELECT count(DISTINCT client) FROM records GROUP BY municipality").fetchall())
    assert status["clients"] < per_municipality  # movers are counted once at region level
    for mover in expected["movers"]:
        clients = {c for code, keys in mover["record_keys"].items() for (c,) in con.execute(
            "SELECT client FROM records WHERE municipality = ? AND record_key IN (SELECT unnest(?))",
            [code, keys]).fetchall()}
        assert len(clients) == 1, mover
    con.close()
    # re-sent: nothing changes
    before = snapshot(db)
    rc, out, _ = isu("--db", db, "pool", "import", packages["2313"])
    assert rc == 0 and "already imported" in out and snapshot(db) == before


def _raw_ids(files: Path, sample: dict) -> set[str]:
    """Every person id in the rural source files, in its 12-digit form."""
    col = load_profile("regional_sv").columns["person_id"]
    ids = set()
    for entry in sample["files"]:
        if entry["municipalities"][0] in JAMTLAND:
            for row in csv.DictReader(io.StringIO((files / entry["file"]).read_text(encoding="utf-8"))):
                twelve = canonical(row[col] or "")
                ids.add(twelve or "".join(ch for ch in row[col] if ch.isdigit()))
    return {i for i in ids if len(i) in (10, 12)}


def _texts_that_travel(package: Path) -> list[bytes]:
    """The package bytes, each member's bytes, and each Parquet member decoded to text."""
    out = [package.read_bytes()]
    with zipfile.ZipFile(package) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            out.append(data)
            if name.endswith(".parquet"):
                out.append(str(pq.read_table(io.BytesIO(data)).to_pylist()).encode())
    return out


def test_no_person_id_travels_in_any_written_form(jamtland):
    _, files, sample, _, packages, outputs = jamtland
    forms = {f.encode() for pid in _raw_ids(files, sample) for f in id_forms(pid if len(pid) == 12 else "19" + pid)}
    assert len(forms) > 300
    # the scanner finds ids where they are: in the source exports (a control, so the scan can fail)
    sources = [(files / e["file"]).read_bytes() for e in sample["files"] if e["municipalities"][0] in JAMTLAND]
    assert sum(any(f in src for f in forms) for src in sources) == 5
    travelling = [t for p in packages.values() for t in _texts_that_travel(p)] + [o.encode() for o in outputs]
    leaks = [f for f in forms for t in travelling if f in t]
    assert leaks == []


def test_a_refused_package_is_one_line_and_exit_7(jamtland, region_2303, tmp_path):
    _, _, _, key, packages, _ = jamtland
    region = shutil.copy(region_2303, tmp_path / "r.duckdb")
    before = snapshot(region)
    bad = flip_member_byte(packages["2305"], "records.parquet", tmp_path / "2305-flipped.zip")
    p = run_isu("--db", str(region), "pool", "import", str(packages["2326"]), str(bad))
    assert p.returncode == 7 and "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith(f"error: package {bad} refused")
    assert snapshot(region) == before
    # a region given the wrong --key-file refuses (exit 7); given the pool's key it accepts
    new_key(tmp_path / "other.key")
    rc, _, exc = isu("--db", region, "--key-file", tmp_path / "other.key", "pool", "import", packages["2326"])
    assert rc == 7 and "--key-file has" in str(exc) and snapshot(region) == before
    assert isu("--db", region, "--key-file", key, "pool", "import", packages["2326"])[0] == 0


def test_edited_truncated_and_foreign_packages_through_the_cli(jamtland, region_2303, tmp_path):
    _, _, _, _, packages, _ = jamtland
    region = shutil.copy(region_2303, tmp_path / "r.duckdb")
    before = snapshot(region)
    truncated = tmp_path / "cut.zip"
    truncated.write_bytes(packages["2313"].read_bytes()[:-100])
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(packages["2313"]) as src, zipfile.ZipFile(edited, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(name, data.replace(b'"code": "2313"', b'"code": "2326"') if name == "manifest.json" else data)
    foreign_dir = tmp_path / "foreign"
    foreign_dir.mkdir()
    foreign = export_all(foreign_dir, new_key(foreign_dir / "k.key"), codes=("2361",))["2361"]
    for bad, match in ((truncated, "not a readable package"), (edited, "manifest edited"), (foreign, "made with key")):
        rc, _, exc = isu("--db", region, "pool", "import", packages["2326"], bad)
        assert rc == 7 and match in str(exc) and str(bad) in str(exc)
        assert snapshot(region) == before


def test_a_newer_export_replaces_the_old_one(jamtland, tmp_path):
    d, _, _, _, packages, _ = jamtland
    region = _region(tmp_path, "r.duckdb", list(packages.values()))
    ws = tmp_path / "2326-next-year.duckdb"
    shutil.copy(d / "2326.duckdb", ws)
    con = connect(ws)  # a year later: two records closed, one new
    con.execute("DELETE FROM measurements WHERE record_key IN (SELECT record_key FROM records ORDER BY 1 LIMIT 2)")
    con.execute("DELETE FROM records WHERE record_key IN (SELECT record_key FROM records ORDER BY 1 LIMIT 2)")
    con.execute("INSERT INTO records SELECT * REPLACE ('2326-2025-9999:1' AS record_key) FROM records LIMIT 1")
    expected = con.execute("SELECT count(*) FROM records").fetchone()[0]
    con.close()
    rc, _, _ = isu("--db", ws, "pool", "export", "--out", tmp_path / "2326-v2.zip")
    assert rc == 0
    others = snapshot(region)["records"]
    rc, out, _ = isu("--db", region, "pool", "import", tmp_path / "2326-v2.zip", "--json")
    (r,) = json.loads(out)["packages"]
    assert rc == 0 and r["status"] == "imported" and r["records_removed"] == 2 and r["records_new"] == 1
    con = connect(region, read_only=True)
    assert con.execute("SELECT count(*) FROM records WHERE municipality = '2326'").fetchone()[0] == expected
    con.close()
    after = snapshot(region)["records"]
    assert [x for x in after if "'2326'" not in x] == [x for x in others if "'2326'" not in x]
    # the old package arriving late changes nothing
    rc, out, _ = isu("--db", region, "pool", "import", packages["2326"])
    assert rc == 0 and "already imported" in out and snapshot(region)["records"] == after


# --- process behaviour: the workspace lock and SIGKILL ---------------------------------------

@pytest.fixture(scope="module")
def bulky(tmp_path_factory):
    """Bigger packages (so that an import takes a while) and a region holding an older 2303."""
    d = tmp_path_factory.mktemp("bulky")
    key = new_key(d / "pool.key")
    old = d / "old"
    old.mkdir()
    first = export_all(old, key, codes=("2303",), n=600)["2303"]
    packages = export_all(d, key, n=1200)
    region = d / "before.duckdb"
    con = connect(region, create=True)
    from isu.pool import import_packages

    import_packages(con, [first])
    con.close()
    return d, region, packages


def _consistent(db: Path) -> dict:
    """What ``isu status`` shows agrees with the rows and the import log; returns the status."""
    con = connect(db, read_only=True)
    try:
        s = workspace_status(con)
        assert con.execute("SELECT count(*) FROM measurements ANTI JOIN records USING (municipality, record_key)"
                           ).fetchone()[0] == 0
        logged = dict(con.execute(
            "SELECT municipality, rows_accepted FROM imports i WHERE import_id = "
            "(SELECT max(import_id) FROM imports j WHERE j.municipality = i.municipality)").fetchall())
        held = dict(con.execute("SELECT municipality, count(*) FROM records GROUP BY 1").fetchall())
        assert logged == held and s["records"] == sum(held.values())
        return s
    finally:
        con.close()


@pytest.mark.slow
def test_two_imports_at_once_on_one_region(bulky, tmp_path):
    _, region_before, packages = bulky
    region = shutil.copy(region_before, tmp_path / "region.duckdb")
    sets = ([packages["2303"], packages["2305"], packages["2313"]], [packages["2326"], packages["2361"]])
    cmd = [sys.executable, "-c", "from isu.cli.main import run; run()", "--db", str(region), "pool", "import"]
    procs = [subprocess.Popen(cmd + [str(p) for p in s], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in sets]
    results = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    assert all(rc in (0, 5) for rc, _ in results) and any(rc == 0 for rc, _ in results), results
    for rc, err in results:
        assert rc == 0 or ("workspace busy" in err and err.strip().count("\n") == 0)
    done = [s for s, (rc, _) in zip(sets, results) if rc == 0]
    expected = shutil.copy(region_before, tmp_path / "expected.duckdb")
    con = connect(expected)
    from isu.pool import import_packages

    for s in done:
        import_packages(con, s)
    con.close()
    assert snapshot(region, ids=False) == snapshot(expected, ids=False)
    _consistent(region)


@pytest.mark.slow
def test_sigkill_at_random_moments_leaves_before_or_after(bulky, tmp_path):
    """Children forked from a server that has isu loaded (no start-up cost), killed with SIGKILL."""
    _, region_before, packages = bulky
    args = [str(p) for p in packages.values()]
    mp = multiprocessing.get_context("forkserver")
    mp.set_forkserver_preload(["isu.pool", "test_pool_helpers"])

    def start(db):
        parent, child = mp.Pipe()
        p = mp.Process(target=killable_import, args=(str(db), args, child))
        p.start()
        assert parent.poll(60) and parent.recv() == "ready"
        return p, parent

    reference = shutil.copy(region_before, tmp_path / "after.duckdb")
    p, pipe = start(reference)
    p.join(180)
    assert p.exitcode == 0
    duration = pipe.recv()
    before, after = snapshot(region_before), snapshot(reference)
    assert before != after
    rng = random.Random(2026)
    outcomes = []
    for i in range(12):
        db = shutil.copy(region_before, tmp_path / f"killed-{i}.duckdb")
        p, _ = start(db)
        time.sleep(rng.uniform(0, duration * 1.15))
        p.kill()  # SIGKILL
        p.join(60)
        state = snapshot(db)
        assert state in (before, after), f"kill {i}: the store is neither the before nor the after state"
        outcomes.append("after" if state == after else "before")
        _consistent(db)
    print(f"SIGKILL outcomes (import takes {duration:.2f} s):", outcomes)
    assert len(outcomes) >= 10 and "before" in outcomes  # some kills landed inside the import


def test_the_region_publishes_the_pool_where_each_municipality_alone_is_hidden(jamtland, tmp_path):
    """The point of pooling (docs/pooling.md): the pool's records totals are shown for periods in which
    every member municipality's own total is hidden, and the audit passes."""
    _, _, _, _, packages, _ = jamtland
    db = _region(tmp_path, "region.duckdb", packages.values())
    rc, out, exc = isu("--db", db, "publish", "--json")
    assert rc == 0 and exc is None, out
    assert json.loads(out)["audit"]["disclosed"] == 0
    con = connect(db, read_only=True)
    rows = con.execute("""SELECT period, geo_level, geo_code, status FROM pub_cells WHERE table_name = 'records_category'
                          AND measure = 'records' AND category = 'all' AND need_area = 'all' AND sex = 'all'
                          AND age_band = 'all' AND geo_level IN ('pool', 'municipality')""").fetchall()
    con.close()
    pool = {p: s for p, level, _, s in rows if level == "pool"}
    members = {}
    for p, level, code, s in rows:
        if level == "municipality":
            members.setdefault(p, {})[code] = s
    assert pool["all"] == "shown"
    alone_hidden = [p for p, s in pool.items() if s == "shown" and p != "all"
                    and sorted(members[p]) == sorted(JAMTLAND) and all(v != "shown" for v in members[p].values())]
    assert len(alone_hidden) >= 3, (pool, members)
