"""Benchmark: what the import's ratio target leaves for validation, measured as a ladder of plain
DuckDB processes over the same CSV, each doing one more of the things ``isu import`` must do.

    python bench/bench_floor.py [--rows N] [--repeat N] [--keep DIR]

Rungs (each its own ``python -c`` process, like the baseline of ``bench_import.py``):

1. baseline: ``CREATE TABLE t AS SELECT * FROM read_csv(...)``, types sniffed (``bench_import``'s baseline);
2. text: the same with every field read as text (``all_varchar``), as isu reads an export;
3. pseudonym: the person id column replaced by HMAC-SHA256 under a key, computed as isu computes it
   (DuckDB's ``sha256``, four blocks a row);
4. two tables: and the export's measurement slots written as a second table, one row per
   measurement (what ``records`` and ``measurements`` hold), with no trimming, typing or checks;
5. ``isu import``: all of that plus cleaning, typing, the checks, duplicate keys and the rejects.

Rung 4 is the least any import into the store's two tables with a pseudonym can do; its ratio
to the baseline is the floor under ``bench_import.py``'s ratio, and the distance from rung 4 to
rung 5 is what cleaning and validation cost. Runs alternate; medians are compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench_import import RATIO_TARGET, _baseline_cmd, _isu_import, _load, _write, measure, work_folder

__all__ = ["rungs", "main"]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rungs(csv: Path, db: Path) -> dict[str, list[str]]:
    """Rung name → command (rungs 2-4; the baseline and isu come from ``bench_import``)."""
    from isu.schemas import load_profile

    prof = load_profile("generic_sv")  # the profile ``write_benchmark_csv`` writes
    text = f"read_csv({str(csv)!r}, delim=';', header=true, all_varchar=true)"
    pid = _q(prof.columns["person_id"])
    hmac = f"sha256($opad || unhex(sha256($ipad || encode({pid}))))"
    records = f"CREATE TABLE r AS SELECT * EXCLUDE ({pid}), {hmac} AS client FROM {text}"
    keys = f"{_q(prof.columns['municipality'])} AS municipality, {_q(prof.columns['record_key'])} AS record_key"
    slots = []
    for group in prof.groups:
        inst = _q(group.instrument_column) if group.instrument_column else repr(group.instrument)
        for tp, spec in group.timepoints.items():
            slots.append(f"SELECT {keys}, '{tp}' AS timepoint, {inst} AS instrument, {_q(spec['date'])} AS measured_on, "
                         f"{_q(spec['value'])} AS value FROM r WHERE {_q(spec['value'])} IS NOT NULL")
    measurements = "CREATE TABLE m AS " + " UNION ALL ".join(slots)

    def cmd(*statements: str) -> list[str]:
        code = (f"import duckdb, os; c = duckdb.connect({str(db)!r}); p = dict(ipad=os.urandom(64), opad=os.urandom(64)); "
                f"[c.execute(s, p if '$ipad' in s else None) for s in {list(statements)!r}]; c.close()")
        return [sys.executable, "-c", code]

    return {
        "text": cmd(f"CREATE TABLE t AS SELECT * FROM {text}"),
        "pseudonym": cmd(records),
        "two tables": cmd(records, measurements),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the export (default 1,000,000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each rung, alternating; medians compared (default 3)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary folder)")
    a = ap.parse_args(argv)
    with work_folder(a.keep, "isu-floor-") as work:
        print(f"load average before: {_load()} (other processes share this machine)")
        csv = work / "export.csv"
        _write(csv, a.rows, "utf-8")
        times: dict[str, list[float]] = {}
        for i in range(max(1, a.repeat)):
            db = work / f"rung{i}.duckdb"
            db.unlink(missing_ok=True)
            times.setdefault("baseline", []).append(_timed(_baseline_cmd(csv, db, "utf-8")))
            for name, cmd in rungs(csv, db).items():
                db.unlink(missing_ok=True)
                times.setdefault(name, []).append(_timed(cmd))
            times.setdefault("isu import", []).append(_isu_import(csv, work / f"ws{i}")[0].seconds)
        base = statistics.median(times["baseline"])
        for n, (name, xs) in enumerate(times.items(), 1):
            m = statistics.median(xs)
            print(f"{n}. {name:12s} {m:6.2f} s   ratio {m / base:4.2f}   (runs: {', '.join(f'{x:.2f}' for x in xs)})")
        floor = statistics.median(times["two tables"]) / base
        print(f"floor under the ratio (rung 4): {floor:.2f}; target {RATIO_TARGET} leaves "
              f"{(RATIO_TARGET - floor) * base:.2f} s for cleaning and validation, which take "
              f"{statistics.median(times['isu import']) - statistics.median(times['two tables']):.2f} s")
        print(f"load average after: {_load()}")
    return 0


def _timed(cmd: list[str]) -> float:
    run = measure(cmd)
    if run.returncode:
        raise SystemExit(f"{cmd[-1][:80]}... failed: {run.stderr.strip()[-400:]}")
    return run.seconds


if __name__ == "__main__":
    sys.exit(main())
