"""Benchmark: ``isu pool import`` of many packages against DuckDB reading the same Parquet files.

    python bench/bench_pool.py                   # 100 packages, 5,000,000 records in all
    python bench/bench_pool.py --records 200000  # a quick run

Packages are generated synthetically and fast (DuckDB writes each package's records and
measurements Parquet directly, with realistic columns and movers between municipalities; not
through the importer), rows in key order and zipped with their manifest as ``isu pool export``
writes them. Timed, each as a whole process: ``isu pool import`` of all packages in one command
(every check: SHA-256, manifest, contract, key fingerprint, one transaction) against a bare
``CREATE TABLE AS SELECT * FROM read_parquet(...)`` of the same Parquet files in a fresh DuckDB
file. Target: ratio <= 2.0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from isu.schemas import code_list

from isu.pool_export import build_manifest, parquet_source
from isu.pool_package import member_name, write_package

__all__ = ["main", "make_packages"]

FINGERPRINT = "0123456789abcdef"


def _records_sql(code: str, n: int, seed: int, people: int) -> str:
    """n records of one municipality; clients are drawn from one population (so some move)."""
    def pick(options, salt):
        opts = "[" + ", ".join(f"'{o}'" for o in options) + "]"
        return f"{opts}[1 + (hash(i, {seed}, {salt}) % {len(options)})::INTEGER]"

    h = lambda salt, mod: f"(hash(i, {seed}, {salt}) % {mod})::INTEGER"
    return f"""
        SELECT '{code}' AS municipality,
               '{code}-' || lpad(i::VARCHAR, 7, '0') || ':1' AS record_key,
               sha256('person-' || {h(1, people)}) AS client,
               {pick(['F', 'M', 'U'], 2)} AS sex,
               (1940 + {h(3, 80)})::SMALLINT AS birth_year,
               {pick(code_list('need_areas').codes, 4)} AS need_area,
               {pick(['FAM', 'MST', 'KP'], 5)} AS intervention_code,
               {pick(code_list('intervention_categories').codes, 6)} AS category,
               {pick(code_list('legal_bases').codes, 7)} AS legal_basis,
               {pick(code_list('providers').codes, 8)} AS provider,
               DATE '2021-01-01' + {h(9, 1200)} AS started_on,
               CASE WHEN {h(10, 10)} < 8 THEN DATE '2021-01-01' + {h(9, 1200)} + 30 + {h(11, 300)} END AS ended_on,
               CASE WHEN {h(10, 10)} < 8 THEN {pick(code_list('end_reasons').codes, 12)} END AS end_reason,
               CASE WHEN {h(10, 10)} < 8 THEN {pick(code_list('goal_attainment').codes, 13)} END AS goal_attainment
        FROM range({n}) t(i)
        ORDER BY record_key"""


def _measurements_sql(records: Path) -> str:
    """T0 always, T1 when the record has ended: problem severity (0-4) on every record."""
    return f"""
        SELECT municipality, record_key, tp AS timepoint, 'severity04' AS instrument,
               CASE tp WHEN 'T0' THEN started_on ELSE ended_on END AS measured_on,
               (hash(record_key, tp) % 5)::DOUBLE AS value
        FROM {parquet_source(records)}, (VALUES ('T0'), ('T1')) v(tp)
        WHERE tp = 'T0' OR ended_on IS NOT NULL
        ORDER BY municipality, record_key, timepoint, instrument"""


def make_packages(folder: Path, packages: int, records: int, seed: int = 1) -> list[Path]:
    """Write ``packages`` zips (and their Parquet members in subfolders); return the zips."""
    codes = code_list("municipalities").codes[:packages]
    if len(codes) < packages:
        raise SystemExit(f"at most {len(code_list('municipalities').codes)} packages (one per municipality)")
    con = duckdb.connect()
    out = []
    for k, code in enumerate(codes):
        n = records // packages + (1 if k < records % packages else 0)
        d = folder / code
        d.mkdir(parents=True, exist_ok=True)
        members = {t: d / member_name(t) for t in ("records", "measurements")}
        con.execute(f"COPY ({_records_sql(code, n, seed + k, max(records * 7 // 10, 1))}) "
                    f"TO '{members['records']}' (FORMAT parquet, COMPRESSION zstd)")
        con.execute(f"COPY ({_measurements_sql(members['records'])}) "
                    f"TO '{members['measurements']}' (FORMAT parquet, COMPRESSION zstd)")
        manifest = build_manifest(con, members, FINGERPRINT)
        write_package(folder / f"{code}.isupool.zip", manifest, members)
        out.append(folder / f"{code}.isupool.zip")
    con.close()
    return out


BASELINE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE records AS SELECT * FROM read_parquet($f)", {"f": sys.argv[2].split(",")})
con.execute("CREATE TABLE measurements AS SELECT * FROM read_parquet($f)", {"f": sys.argv[3].split(",")})
con.close()
"""

#: The floor the store's own schema sets: the same rows into a fresh workspace's tables, one
#: transaction, no checks (the tables carry no primary keys: the importers keep keys unique).
STORE_FLOOR = """
import sys
from isu.pool_contract import measurement_columns, record_columns
from isu.store import connect
con = connect(sys.argv[1], create=True)
con.execute("SET enable_progress_bar = false")
con.execute("BEGIN")
rc = ", ".join(record_columns())
con.execute(f"INSERT INTO records ({rc}, import_id) SELECT *, 1 FROM read_parquet($f)", {"f": sys.argv[2].split(",")})
con.execute(f"INSERT INTO measurements ({', '.join(measurement_columns())}) SELECT * FROM read_parquet($f)",
            {"f": sys.argv[3].split(",")})
con.execute("COMMIT")
con.close()
"""


def _timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:6])} … failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    return took


def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=5_000_000, help="records in all packages together")
    ap.add_argument("--packages", type=int, default=100)
    ap.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one, removed)")
    a = ap.parse_args(argv)
    work = a.dir or Path(tempfile.mkdtemp(prefix="bench-pool-"))
    try:
        t = time.perf_counter()
        zips = make_packages(work / "packages", a.packages, a.records)
        size = sum(z.stat().st_size for z in zips)
        print(f"generated {len(zips)} packages, {a.records:,} records, {size / 1e6:.1f} MB "
              f"in {time.perf_counter() - t:.1f} s")
        files = {t: ",".join(str(z.parent / z.name.split(".")[0] / member_name(t)) for z in zips)
                 for t in ("records", "measurements")}
        isu = [sys.executable, "-c", "from isu.cli.main import run; run()"]
        startup = _timed(isu + ["--version"])
        members = [files["records"], files["measurements"]]
        base = _timed([sys.executable, "-c", BASELINE, str(work / "baseline.duckdb"), *members])
        floor = _timed([sys.executable, "-c", STORE_FLOOR, str(work / "floor.duckdb"), *members])
        ours = _timed(isu + ["--db", str(work / "region.duckdb"), "pool", "import", *map(str, zips)])
        con = duckdb.connect(str(work / "region.duckdb"), read_only=True)
        held = con.execute("SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM measurements)").fetchone()
        con.close()
        assert held[0] == a.records, held
        ratio = ours / base
        print(f"duckdb CREATE TABLE AS read_parquet, fresh file (process):     {base:7.2f} s")
        print(f"duckdb INSERT into a fresh isu store's tables (process):       {floor:7.2f} s")
        print(f"isu pool import, {len(zips)} packages, one command (process):   {ours:7.2f} s  "
              f"({held[0]:,} records, {held[1]:,} measurements; CLI start-up alone {startup:.2f} s)")
        print(f"ratio to CREATE TABLE AS: {ratio:.2f} (target <= 2.0); to the store floor: {ours / floor:.2f}")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (shared)")
        return ratio
    finally:
        if a.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
