"""Shared fixtures for the import pipeline's tests: a temporary workspace, a pool key, export writers.

Rows are built from the shipped profiles (``generic_sv``, ``generic_sv_long``) so that the tests
follow the profiles' column names instead of restating them. Person ids are synthetic: a birth
date and serial with the Luhn check digit computed by python-stdnum.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from stdnum import luhn

from isu.keys import PoolKey, new_key
from isu.schemas import load_profile
from isu.store import connect

__all__ = [
    "pnr", "wide_header", "wide_row", "long_header", "long_rows", "write_csv", "write_xlsx",
    "Workspace", "make_workspace", "Ran", "isu", "ws", "run_isu", "store_state",
]

WIDE = load_profile("generic_sv")
LONG = load_profile("generic_sv_long")


def pnr(i: int = 0, *, coordination: bool = False, year: int | None = None, serial: int | None = None) -> str:
    """A valid synthetic 12-digit personnummer (or samordningsnummer) numbered ``i``."""
    if year is None:
        birth = date(1950, 1, 1) + timedelta(days=(i * 37) % 20000)
    else:
        birth = date(year, 1, 1) + timedelta(days=(i * 37) % 365)
    day = birth.day + (60 if coordination else 0)
    nine = f"{birth:%y%m}{day:02d}{(serial if serial is not None else i % 1000):03d}"
    return f"{birth.year // 100:02d}{nine}{luhn.calc_check_digit(nine)}"


def wide_header(profile=WIDE) -> list[str]:
    cols = [c for f, c in profile.columns.items() if f != "client"]
    return cols + [c for g in profile.groups for c in ([g.instrument_column] if g.instrument_column else [])
                   + [c for tp in g.timepoints.values() for c in tp.values()]]


def _source_cells(profile, fields: dict[str, str | None]) -> dict[str, str | None]:
    """Contract field names (and ``T0_value``, ``T0_date``, ``instrument`` for wide groups) → source columns."""
    out: dict[str, str | None] = {}
    group = profile.groups[0] if profile.groups else None
    for name, value in fields.items():
        if name in profile.columns:
            out[profile.columns[name]] = value
        elif name in profile.long:
            out[profile.long[name]] = value
        elif group is not None and name == "instrument":
            out[group.instrument_column] = value
        elif group is not None and "_" in name and name.split("_")[0] in group.timepoints:
            tp, what = name.split("_", 1)
            out[group.timepoints[tp][what]] = value
        else:
            out[name] = value  # a raw source column name
    return out


def wide_row(i: int = 1, **fields: str | None) -> dict[str, str | None]:
    """A valid generic_sv row (record ``K<i>``, person ``pnr(i)``); keyword fields override cells."""
    base = {
        "municipality": "0180", "record_key": f"K{i}", "person_id": pnr(i), "sex": "K", "birth_year": "",
        "need_area": "Boende", "intervention_code": "FAM", "legal_basis": "SoL", "provider": "Egen regi",
        "started_on": "2024-03-01", "ended_on": "2024-06-01", "end_reason": "Enligt plan", "goal_attainment": "3",
        "instrument": "severity04", "T0_value": "3", "T0_date": "2024-03-01", "T1_value": "1,5",
        "T1_date": "2024-06-01", "T2_value": "", "T2_date": "",
    }
    base.update(fields)
    return _source_cells(WIDE, base)


def long_header() -> list[str]:
    return [c for f, c in LONG.columns.items() if f != "client"] + list(LONG.long.values())


def long_rows(i: int = 1, measurements=(("Start", "3"), ("Avslut", "2")), **fields: str | None) -> list[dict[str, str | None]]:
    """Rows of one record in generic_sv_long shape, one per (timepoint, value)."""
    base = {
        "municipality": "0180", "record_key": f"L{i}", "person_id": pnr(i), "sex": "M", "birth_year": "",
        "need_area": "Alkohol", "intervention_code": "OPV", "legal_basis": "SoL", "provider": "Extern",
        "started_on": "2024-01-15", "ended_on": "", "end_reason": "", "goal_attainment": "",
        "instrument": "severity04", "measured_on": "2024-02-01",
    }
    base.update(fields)
    return [_source_cells(LONG, {**base, "timepoint": tp, "value": v}) for tp, v in measurements]


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None, *, encoding: str = "utf-8",
              bom: bool = False, delimiter: str = ";", newline: str = "\n") -> Path:
    """Write rows (dicts by source column; missing cells empty) as a CSV export."""
    header = header or wide_header()
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in header])
    data = buf.getvalue().encode(encoding)
    Path(path).write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return Path(path)


def write_xlsx(path: Path, rows: list[dict], header: list[str] | None = None, *, typed: dict[str, object] | None = None,
               sheet: str = "Export", before: dict[str, list[list[str]]] | None = None,
               after: dict[str, list[list[str]]] | None = None, at: tuple[int, int] = (0, 0),
               formulas: dict[tuple[int, str], tuple[str, str]] | None = None,
               hidden: dict[str, str] | None = None) -> Path:
    """Write rows as an XLSX sheet; ``typed`` maps a column to a cell converter (numbers, dates);
    ``before``/``after``: other sheets (name → rows of cells) around the export's; ``at``: the
    header's cell (row, column from 0); ``formulas``: (row from 1, column) → (formula, its cached value);
    ``hidden``: sheet name → 'hidden' or 'veryHidden' (the first shown sheet is made the active one)."""
    import xlsxwriter

    header = header or wide_header()
    wb = xlsxwriter.Workbook(str(path))

    def plain(sheets):
        for name, cells in (sheets or {}).items():
            other = wb.add_worksheet(name)
            for i, line in enumerate(cells):
                other.write_row(i, 0, line)

    plain(before)
    ws = wb.add_worksheet(sheet)
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    top, left = at
    ws.write_row(top, left, header)
    for (i, c), (formula, value) in (formulas or {}).items():
        ws.write_formula(top + i, left + header.index(c), formula, None, value)
    for i, r in enumerate(rows, start=1):
        for j, c in enumerate(header):
            v = r.get(c)
            if (i, c) in (formulas or {}):
                continue
            if v in (None, ""):
                continue
            conv = (typed or {}).get(c)
            v = conv(v) if conv else v
            if isinstance(v, date):
                ws.write_datetime(top + i, left + j, v, date_fmt)
            elif isinstance(v, (int, float)):
                ws.write_number(top + i, left + j, v)
            else:
                ws.write_string(top + i, left + j, str(v))
    plain(after)
    if hidden:
        sheets = wb.worksheets()
        shown = next(w for w in sheets if w.get_name() not in hidden)  # Excel hides no active sheet
        shown.activate()
        shown.set_first_sheet()
        for w in sheets:
            if w.get_name() in hidden:
                w.very_hidden() if hidden[w.get_name()] == "veryHidden" else w.hide()
    wb.close()
    return Path(path)


@dataclass
class Workspace:
    """A workspace in a temp folder: DuckDB file, key file and a folder for exports and rejects."""

    dir: Path
    db: Path
    key_file: Path
    key: PoolKey

    def connect(self, **kw) -> duckdb.DuckDBPyConnection:
        return connect(self.db, create=True, **kw)

    def env(self) -> dict[str, str]:
        return {**os.environ, "ISU_DB": str(self.db), "ISU_KEY_FILE": str(self.key_file), "COLUMNS": "200", "NO_COLOR": "1"}

    def import_(self, path, **kw):
        """``import_file`` on a fresh connection that is closed afterwards."""
        from isu.importer import import_file

        kw.setdefault("key", self.key)
        kw.setdefault("rejects_path", self.dir / f"{Path(path).stem}.rejects.csv")
        con = self.connect()
        try:
            return import_file(con, path, **kw)
        finally:
            con.close()


def make_workspace(folder: Path) -> Workspace:
    """A new workspace (DuckDB file created) and pool key in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "pool.key"
    key = new_key(key_file)
    db = folder / "isu.duckdb"
    connect(db, create=True).close()
    return Workspace(folder, db, key_file, key)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return make_workspace(tmp_path)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def isu(monkeypatch, capsys):
    """``isu(*args, env=..., cwd=...)``: the console entry (``isu.cli.main.run``) run in this process
    with its own argv, ISU_* environment and working folder; returns exit code, stdout, stderr.
    The same code path as the shell without paying the CLI's start-up on every test."""

    def invoke(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
        with monkeypatch.context() as m:
            for k, v in (env or {}).items():
                if k.startswith("ISU_") or k == "COLUMNS":
                    m.setenv(k, v)
            m.setenv("COLUMNS", "250")
            if cwd is not None:
                m.chdir(cwd)
            m.setattr(sys, "argv", ["isu", *args])
            capsys.readouterr()
            try:
                from isu.cli.main import run

                run()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            out, err = capsys.readouterr()
        return Ran(code, out, err)

    return invoke


def run_isu(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed ``isu`` console script in a subprocess (exit codes and stderr as a user sees them)."""
    script = shutil.which("isu", path=os.path.dirname(sys.executable)) or shutil.which("isu")
    cmd = [script, *args] if script else [sys.executable, "-c", "from isu.cli.main import run; run()", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def store_state(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent content hash of each microdata table (import times left out)."""
    out = {}
    for t in ("records", "measurements", "imports", "rejects", "meta"):
        src = "(SELECT * EXCLUDE (started_at, finished_at) FROM imports)" if t == "imports" else t
        [(n, h)] = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {src} AS t").fetchall()
        out[t] = (n, str(h))
    return out
