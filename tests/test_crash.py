"""Crash safety: an import killed at any moment leaves the workspace as it was, or fully imported.

``isu import`` of a medium export runs in a subprocess and is SIGKILLed at moments spread over
the import's measured duration (process start included), ten times on the same workspace. After
each kill the microdata tables hold exactly the rows (counts and a content hash) they held
before; or, when the kill came after the commit (while the rejects file was written or the
file checkpointed), exactly what a whole import leaves. ``isu status --json`` works and adds up.
A last, uninterrupted import then succeeds.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import duckdb
import pytest

from isu.sample_data import write_benchmark_csv

from conftest import make_workspace, store_state, wide_row, write_csv

ROWS = 100_000
KILLS = 10
BAD_FRACTION = 0.001


@pytest.fixture(scope="session")
def medium_export(tmp_path_factory):
    """A generic_sv export of ROWS rows (Windows-1252), a few of them spoilt; written once per session."""
    return write_benchmark_csv(tmp_path_factory.mktemp("medium") / "medium.csv", ROWS, seed=5, encoding="cp1252",
                               bad_fraction=BAD_FRACTION)


# The console entry, started ahead: it loads its modules, says "ready", and runs ``isu ARGS`` when
# told to. Kill moments then fall in the import itself rather than in Python's start-up, and the
# next process can load while the current one is checked.
_ENTRY = """
import sys
from isu.cli.main import run
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["isu", *sys.argv[1:]]
run()
"""


def _spawn(ws, *args: str) -> subprocess.Popen:
    entry = ws.dir / "isu_entry.py"  # a script file, as the console script is (DuckDB treats `python -c` as interactive)
    if not entry.exists():
        entry.write_text(_ENTRY, encoding="utf-8")
    return subprocess.Popen([sys.executable, str(entry), *args], env=ws.env(), cwd=ws.dir, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _spawn_import(ws, path) -> subprocess.Popen:
    return _spawn(ws, "import", str(path), "--json", "--rejects", str(ws.dir / "rejects"))


def _go(proc: subprocess.Popen) -> None:
    assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


def _finish(proc: subprocess.Popen) -> tuple[float, bytes, bytes]:
    """Let a spawned process run to its end: (seconds from 'go', stdout, stderr)."""
    _go(proc)
    t0 = time.monotonic()
    out, err = proc.communicate(timeout=600)
    return time.monotonic() - t0, out, err


def _restore(backup, ws) -> None:
    shutil.copy(backup, ws.db)
    ws.db.with_name(ws.db.name + ".wal").unlink(missing_ok=True)


def _state(ws) -> dict:
    con = duckdb.connect(str(ws.db))  # read-write: replays whatever WAL the killed process left
    try:
        return store_state(con)
    finally:
        con.close()


def _check_status(isu, ws, expected_records: int) -> dict:
    r = isu("status", "--json", env=ws.env())
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["records"] == expected_records
    assert sum(i["rows_accepted"] for i in s["imports"]) >= s["records"]  # updates can merge rows
    con = duckdb.connect(str(ws.db), read_only=True)
    try:
        (rows_with_rejects,) = con.execute("SELECT count(DISTINCT (import_id, row_number)) FROM rejects").fetchone()
    finally:
        con.close()
    assert sum(i["rows_rejected"] for i in s["imports"]) == s["rows_rejected"] == rows_with_rejects
    return s


@pytest.mark.slow
def test_killed_imports_change_nothing(tmp_path, medium_export, isu):
    ws = make_workspace(tmp_path / "ws")
    small = write_csv(ws.dir / "small.csv", [wide_row(1), wide_row(2), wide_row(3, need_area="BAD")])
    assert ws.import_(small).rows_accepted == 2  # the workspace is not empty before the crashes
    before = _state(ws)
    backup = tmp_path / "backup.duckdb"
    shutil.copy(ws.db, backup)
    procs: list[subprocess.Popen] = []

    def spawn() -> subprocess.Popen:
        procs.append(_spawn_import(ws, medium_export.path))
        return procs[-1]

    try:
        # how long a whole import takes here and now, and what it leaves (then undone)
        proc = spawn()
        duration, out, err = _finish(proc)
        assert proc.returncode == 10, err.decode()
        after = _state(ws)
        _restore(backup, ws)

        rng = random.Random(2026)
        kills: list[tuple[float, str]] = []
        spare = spawn()
        while len(kills) < KILLS:
            at = duration * (0.02 + 0.93 * (len(kills) + rng.random()) / KILLS)  # a moment in each tenth
            proc, spare = spare, spawn()  # the next one loads while this one runs
            _go(proc)
            time.sleep(at)
            if proc.poll() is not None:  # it finished first: undo, and try that stretch again
                proc.communicate()
                _restore(backup, ws)
                continue
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            if proc.returncode == 10:  # it finished in the moment between the poll and the kill: as above
                _restore(backup, ws)
                continue
            assert proc.returncode == -signal.SIGKILL
            now = _state(ws)
            outcome = "before" if now == before else "after" if now == after else "torn"
            kills.append((round(at, 2), outcome))
            assert outcome != "torn", f"a kill at {at:.2f}s of {duration:.2f}s left a partial import: {now} (before: {before})"
            _check_status(isu, ws, (before if outcome == "before" else after)["records"][0])
            if outcome == "after":
                _restore(backup, ws)
        assert sum(o == "before" for _, o in kills) >= KILLS // 2, f"too few kills landed inside the import: {kills}"

        # an uninterrupted import afterwards does the whole job
        _, out, err = _finish(spare)
        assert spare.returncode == 10, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
    text = out.decode()
    assert text.startswith("{") and text.count("\n") == 1, f"--json printed more than one JSON object: {text[:160]!r}"
    res = json.loads(text)
    assert (res["rows_read"], res["rows_accepted"]) == (ROWS, medium_export.accepted_rows)
    assert res["errors_by_type"] == medium_export.rejected
    s = _check_status(isu, ws, before["records"][0] + medium_export.accepted_rows)
    assert len(s["imports"]) == 2

    # rejects name the rows where they were planted (every 1/BAD_FRACTION-th row, a duplicate key
    # also its predecessor): the parallel scan did not reorder rows
    every = round(1 / BAD_FRACTION)
    con = duckdb.connect(str(ws.db), read_only=True)
    try:
        rows = [r for (r,) in con.execute("SELECT DISTINCT row_number FROM rejects WHERE import_id = 2").fetchall()]
    finally:
        con.close()
    assert len(rows) == res["rows_rejected"]
    assert {(r - 2) % every for r in rows} <= {every // 2, every // 2 - 1}, sorted(rows)[:10]
