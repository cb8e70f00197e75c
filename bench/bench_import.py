"""Benchmark: ``isu import`` against DuckDB reading the same CSV into a table, as whole processes.

    python bench/bench_import.py [--rows N] [--repeat N] [--big] [--encoding utf-8|cp1252] [--keep DIR]

Writes a generic_sv wide semicolon export (``isu.sample_data.write_benchmark_csv``, a few rows
spoilt) into a temporary folder, then measures in the same run, each as its own process (wall
time, and peak RSS from ``os.wait4``):

(a) baseline: ``python -c`` that creates a fresh DuckDB file and runs
    ``CREATE TABLE t AS SELECT * FROM read_csv(path, delim=';', header=true)``;
(b) ``isu import FILE --json`` into a fresh workspace with a fresh pool key (``isu init`` and
    ``isu key new`` are not timed).

Each is run ``--repeat`` times (default 3), alternating, and the medians are compared.

It prints both, the ratio (target <= 2.0) and peak memory; ``--big`` adds a 10,000,000-row import
(target: peak RSS <= 1.5 GB). The CLI's own start-up (``isu --version``) is shown separately,
and the load average before and after, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Run", "measure", "main", "work_folder"]

RATIO_TARGET = 2.0
BIG_ROWS = 10_000_000
BIG_RSS_TARGET_MB = 1536


@dataclass
class Run:
    seconds: float
    peak_mb: float
    cpu_seconds: float  # user + system, all threads
    returncode: int
    stdout: str
    stderr: str


def measure(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None) -> Run:
    """Run ``cmd`` to its end: wall seconds and the peak resident memory of that process alone."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, proc.returncode, out.read().decode(errors="replace"),
                   err.read().decode(errors="replace"))


def _isu() -> list[str]:
    script = shutil.which("isu", path=os.path.dirname(sys.executable)) or shutil.which("isu")
    return [script] if script else [sys.executable, "-c", "from isu.cli.main import run; run()"]


def _baseline_cmd(csv: Path, db: Path, encoding: str) -> list[str]:
    enc = ", encoding='latin-1'" if encoding == "cp1252" else ""
    code = (f"import duckdb; duckdb.connect({str(db)!r}).execute(\"CREATE TABLE t AS SELECT * FROM "
            f"read_csv({str(csv)!r}, delim=';', header=true{enc})\")")
    return [sys.executable, "-c", code]


def _isu_import(csv: Path, folder: Path) -> tuple[Run, dict]:
    """Fresh workspace and key in ``folder``, then the timed ``isu import``."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ISU_DB": str(folder / "isu.duckdb"), "ISU_KEY_FILE": str(folder / "pool.key")}
    for args in (["init"], ["key", "new"]):
        r = measure(_isu() + args, env=env, cwd=folder)
        if r.returncode:
            raise SystemExit(f"isu {' '.join(args)} failed: {r.stderr}")
    run = measure(_isu() + ["import", str(csv), "--json", "--rejects", str(folder / "rejects.csv")], env=env, cwd=folder)
    if run.returncode not in (0, 10):
        raise SystemExit(f"isu import failed ({run.returncode}): {run.stderr.strip()}")
    return run, json.loads(run.stdout)


def _write(path: Path, rows: int, encoding: str):
    from isu.sample_data import write_benchmark_csv

    t0 = time.perf_counter()
    bf = write_benchmark_csv(path, rows, seed=2026, encoding=encoding)
    print(f"wrote {rows:,} rows, {bf.bytes / 1e6:,.0f} MB ({encoding}) in {time.perf_counter() - t0:.1f} s: {path}")
    return bf


def _check(res: dict, bf) -> str:
    ok = res["rows_read"] == bf.rows and res["rows_accepted"] == bf.accepted_rows and res["errors_by_type"] == bf.rejected
    return "as planted" if ok else f"NOT as planted (expected {bf.accepted_rows:,} accepted, {bf.rejected})"


def _median(runs: list, key):
    """The run with the median time (the lower one of an even count)."""
    return sorted(runs, key=key)[(len(runs) - 1) // 2]


@contextmanager
def work_folder(keep: Path | None, prefix: str) -> Iterator[Path]:
    """``keep`` (made if missing, and kept), else a temporary folder removed afterwards."""
    work = keep or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the main comparison (default 1,000,000)")
    ap.add_argument("--big", action="store_true", help=f"also import {BIG_ROWS:,} rows (peak RSS target {BIG_RSS_TARGET_MB} MB)")
    ap.add_argument("--encoding", choices=["utf-8", "cp1252"], default="utf-8", help="encoding of the generated export")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, alternating; the medians are compared (default 3)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    a = ap.parse_args(argv)
    with work_folder(a.keep, "isu-bench-") as work:
        print(f"cores: {os.cpu_count()}, load average before: {_load()} (other processes share this machine)")
        csv = work / "export.csv"
        bf = _write(csv, a.rows, a.encoding)
        start = measure(_isu() + ["--version"])
        bases, runs = [], []
        for i in range(max(1, a.repeat)):  # alternating, so that a busy spell of the machine hits both
            bases.append(measure(_baseline_cmd(csv, work / f"baseline{i}.duckdb", a.encoding)))
            if bases[-1].returncode:
                raise SystemExit(f"baseline failed: {bases[-1].stderr.strip()}")
            runs.append(_isu_import(csv, work / f"ws{i}"))
        base = _median(bases, key=lambda r: r.seconds)
        run, res = _median(runs, key=lambda r: r[0].seconds)
        ratio = run.seconds / base.seconds
        spread = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
        print(f"(a) baseline DuckDB read_csv -> table : {base.seconds:7.2f} s   peak RSS {base.peak_mb:7.0f} MB   (runs: {spread(r.seconds for r in bases)})")
        print(f"(b) isu import                         : {run.seconds:7.2f} s   peak RSS {run.peak_mb:7.0f} MB   (runs: {spread(r[0].seconds for r in runs)})")
        print(f"    of which CLI start-up ~{start.seconds:.2f} s; the import itself {res['seconds']:.2f} s")
        print(f"    CPU (user + system): baseline {base.cpu_seconds:.2f} s ({base.cpu_seconds / base.seconds:.2f} cores busy), "
              f"isu {run.cpu_seconds:.2f} s ({run.cpu_seconds / run.seconds:.2f} cores busy)")
        print(f"    rows read {res['rows_read']:,}, accepted {res['rows_accepted']:,}, rejected {res['rows_rejected']:,}: {_check(res, bf)}")
        print(f"ratio isu/baseline: {ratio:.2f} (target <= {RATIO_TARGET}) -> {'OK' if ratio <= RATIO_TARGET else 'over target'}")
        if a.big:
            big = work / "export_10m.csv"
            csv.unlink()
            bbf = _write(big, BIG_ROWS, a.encoding)
            brun, bres = _isu_import(big, work / "ws_big")
            ok = brun.peak_mb <= BIG_RSS_TARGET_MB
            print(f"(c) isu import {BIG_ROWS:,} rows         : {brun.seconds:7.2f} s   peak RSS {brun.peak_mb:7.0f} MB "
                  f"(target <= {BIG_RSS_TARGET_MB} MB) -> {'OK' if ok else 'over target'}; {_check(bres, bbf)}")
        print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
