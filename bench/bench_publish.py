"""Benchmark: publication stages on a synthetic regional store, each against a baseline in the same run.

    python bench/bench_publish.py                      # 20,000 records, Södertörn's 10 municipalities, years
    python bench/bench_publish.py --quick              # 3,000 records, 5 municipalities (seconds to a minute)
    python bench/bench_publish.py --records 100000 --municipalities 26 --period half --no-suppress

Stages timed: aggregation in DuckDB (leaf cells, hierarchies, every margin, sums and sums of squares)
against a baseline of one plain ``GROUP BY CUBE`` count over the same records; the statistics
finished vectorised (``isu.stats.finish``) against a per-cell Python loop doing the same arithmetic
with scipy; then (unless ``--no-suppress``) suppression with the records/t0_n link, the audit, and
assembling plus writing ``pub_cells`` and CSV files. The store is written straight into DuckDB
(vectorised numpy, no importer), so only publication is measured. Other processes share the 2 cores:
run twice and read the figures as ranges.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isu.schemas import code_list

from isu import publish as pub
from isu.aggregate import AggregationSpec, aggregate
from isu.stats import finish
from isu.store import connect

CATEGORIES = ["family_support", "contact_person", "foster_care", "residential_care", "supported_housing", "housing_first"]
NEEDS = ["housing", "mental_health", "alcohol", "drugs", "family", "employment"]
INSTRUMENT_OF_NEED = {"alcohol": "asi_alcohol", "drugs": "asi_drugs", "employment": "wellbeing10"}


def make_store(path: Path, records: int, municipalities: list[str], seed: int) -> None:
    """Records and T0/T1 measurements drawn with numpy, inserted with one statement per table."""
    rng = np.random.default_rng(seed)
    n = records
    size = rng.lognormal(0, 1, len(municipalities))
    muni = rng.choice(municipalities, n, p=size / size.sum())
    need = rng.choice(NEEDS, n)
    start = np.datetime64("2022-01-01") + rng.integers(0, 900, n).astype("timedelta64[D]")
    ended = start + rng.integers(30, 500, n).astype("timedelta64[D]")
    ongoing = rng.random(n) < 0.1
    frame = pl.DataFrame({
        "municipality": muni, "record_key": [f"r{i}" for i in range(n)],
        "client": [f"{c:064x}" for c in rng.integers(0, n // 2, n)], "sex": rng.choice(["F", "M", "U"], n, p=[.5, .48, .02]),
        "birth_year": rng.integers(1940, 2015, n).astype(np.int16), "need_area": need, "intervention_code": "X",
        "category": rng.choice(CATEGORIES, n), "started_on": start, "ended_on": np.where(ongoing, np.datetime64("NaT"), ended),
        "goal_attainment": rng.choice(code_list("goal_attainment").codes, n), "import_id": 1,
    }).with_columns(pl.col("started_on", "ended_on").cast(pl.Date))
    instrument = np.array([INSTRUMENT_OF_NEED.get(x, "severity04") for x in need])
    top = np.select([instrument == "severity04", instrument == "wellbeing10"], [4.0, 10.0], 1.0)
    t0 = np.round(rng.random(n) * top, 2)
    t1 = np.clip(np.round(t0 + rng.normal(-0.1, 0.25, n) * top, 2), 0, top)
    has_t0, has_t1 = rng.random(n) < 0.95, rng.random(n) < 0.75
    meas = pl.DataFrame({"municipality": np.tile(muni, 2), "record_key": frame["record_key"].to_list() * 2,
                         "timepoint": ["T0"] * n + ["T1"] * n, "instrument": np.tile(instrument, 2),
                         "value": np.concatenate([t0, t1]), "keep": np.concatenate([has_t0, has_t0 & has_t1])})
    con = connect(path, create=True)
    con.execute("SELECT 1").fetchall()
    con.register("r", frame)
    con.register("m", meas.filter("keep").drop("keep"))
    cols = ", ".join(frame.columns)
    con.execute(f"INSERT INTO records ({cols}) SELECT {cols} FROM r")
    con.execute("INSERT INTO measurements (municipality, record_key, timepoint, instrument, value) "
                "SELECT municipality, record_key, timepoint, instrument, value FROM m")
    con.close()


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def baseline_cube(con) -> int:
    rows = con.execute("""SELECT count(*) FROM (SELECT municipality, category, need_area, sex, count(*)
        FROM records WHERE ended_on IS NOT NULL GROUP BY CUBE (municipality, category, need_area, sex))""").fetchall()
    return rows[0][0]


def loop_statistics(cells: pl.DataFrame) -> int:
    """The same finishing arithmetic, one cell at a time (what the vectorised version replaces)."""
    done = 0
    for row in cells.select("paired_n", "sum_change", "sumsq_change", "improved_n").iter_rows():
        n, s, ss, imp = row
        if n and n > 1:
            mean = s / n
            sd = ((ss - s * mean) / (n - 1)) ** 0.5
            half = sps.t.ppf(0.975, n - 1) * sd / n ** 0.5
            sps.binomtest(int(imp), int(n)).proportion_ci(method="wilson")
            done += bool(np.isfinite(half))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--municipalities", type=int, default=10, help="first N of Södertörn + Stockholms län")
    ap.add_argument("--period", choices=["year", "half"], default="year")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-suppress", action="store_true", help="time aggregation and statistics only")
    args = ap.parse_args()
    if args.quick:
        args.records, args.municipalities = 3_000, 5
    pools = code_list("pools").row("sodertorn")["municipalities"].split()
    county = [c for c in code_list("municipalities").codes if c.startswith("01") and c not in pools]
    munis = (pools + county)[: args.municipalities]
    spec = AggregationSpec(period=args.period)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        _, t_make = timed(make_store, db, args.records, munis, args.seed)
        con = connect(db)
        con.execute("SELECT 1").fetchall()
        print(f"store: {args.records:,} records, {len(munis)} municipalities, period {args.period} (made in {t_make:.1f} s)")
        _, t_base = timed(baseline_cube, con)
        a, t_agg = timed(aggregate, con, spec)
        print(f"aggregate: {t_agg:.2f} s for {a.records_cells.height:,} record cells + {a.outcome_cells.height:,} outcome cells; "
              f"baseline CUBE count {t_base:.2f} s (ratio {t_agg / t_base:.1f}x)")
        _, t_vec = timed(finish, a.outcome_cells)
        sample = a.outcome_cells.head(2_000)
        _, t_loop = timed(loop_statistics, sample)
        per_cell_loop = t_loop / max(sample.height, 1) * a.outcome_cells.height
        print(f"statistics: vectorised {t_vec:.3f} s for {a.outcome_cells.height:,} cells; per-cell loop (extrapolated "
              f"from {sample.height:,}) {per_cell_loop:.1f} s (vectorised is {per_cell_loop / max(t_vec, 1e-9):.0f}x faster)")
        if not args.no_suppress:
            p, _ = timed(pub.plan, a, 5, lp_max_cells=0)
            cells, t_asm = timed(pub.assemble, a, p, 5)
            print(f"suppress: {p.seconds['suppress']:.1f} s ({p.rounds} link round(s)); audit {p.seconds['audit']:.1f} s; "
                  f"assemble {t_asm:.2f} s for {cells.height:,} pub_cells rows")
            counts = cells.filter(pl.col("measure").str.ends_with("_n") | pl.col("measure").is_in(["records", "clients"]))
            status = dict(counts.group_by("status").len().rows())
            print(f"  count cells: {counts.height:,}; shown {status.get('shown', 0):,}, primary {status.get('primary', 0):,}, "
                  f"secondary {status.get('secondary', 0):,}; disclosed {sum(r['disclosed'] for r in p.audits.values())}")
            con.close()
            result, t_pub = timed(pub.publish, db, k=5, out=Path(tmp) / "out", spec=spec, lp_max_cells=0)
            s = result.audit["seconds"]
            write = t_pub - sum(s.values())
            print(f"publish end to end: {t_pub:.1f} s (aggregate {s['aggregate']:.1f}, suppress {s['suppress']:.1f}, "
                  f"audit {s['audit']:.1f}, assemble + write {write:.1f}); share of time in suppression "
                  f"{s['suppress'] / t_pub:.0%}")
        else:
            con.close()
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
