"""Benchmark: building the before/after dashboard (time and file size).

Run: ``python bench/bench_dashboard.py`` (a synthetic Södertörn publication) or
``python bench/bench_dashboard.py --db PATH`` (the latest publication in a real workspace, e.g.
one made by ``isu demo``). Budgets: build <= 3 s for the sample region, file <= 6 MB.

The synthetic publication has the shape ``isu publish`` gives: 10 Södertörn municipalities +
county + pool + all × 12 intervention categories and 14 need areas (each on its own, as published)
× six half-years, three years and all × four instruments, with small cells hidden. The baseline,
measured in the same run, is the floor of any self-contained Plotly page: reading plotly.js and
writing it into an HTML file. The machine has 2 cores shared with other work: times are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from plotly.offline import get_plotlyjs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from isu.dashboards import build_dashboard, report

BUDGET_SECONDS = 3.0
BUDGET_BYTES = 6_000_000
PERIODS = ("2023H1", "2023H2", "2024H1", "2024H2", "2025H1", "2025H2")
INSTRUMENTS = ("severity04", "asi_alcohol", "asi_drugs", "wellbeing10")


def synthetic_workspace(folder: Path) -> Path:
    from test_dashboards_support import make_workspace, synthetic_cells

    cells = synthetic_cells(size=6, density=0.6, periods=PERIODS, instruments=INSTRUMENTS, seed=2026)
    print(f"synthetic publication: {cells.height:,} cells, {int((cells['status'] != 'shown').sum()):,} hidden or n/a")
    return make_workspace(folder / "bench.duckdb", cells)


def baseline(out: Path) -> float:
    """Seconds to write a page that holds nothing but plotly.js (read afresh)."""
    started = time.perf_counter()
    out.write_text(f"<!DOCTYPE html><html><head><script>{get_plotlyjs()}</script></head><body></body></html>", "utf-8")
    return time.perf_counter() - started


def cold_build(db: Path, out: Path, **kwargs):
    """A build as the command line does it: no asset read in an earlier build is reused."""
    report._asset.cache_clear()
    report._plotly_js.cache_clear()
    return build_dashboard(db, out, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a workspace with a publication (default: a synthetic one)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--municipality", default=None, help="municipality for the focused run (default: first published)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = args.db or synthetic_workspace(folder)
        base = statistics.median(baseline(folder / "baseline.html") for _ in range(args.repeat))
        base_bytes = (folder / "baseline.html").stat().st_size
        muni = args.municipality or _first_municipality(db)
        scopes = {"whole publication": {}, f"municipality {muni}": {"municipality": muni}}
        if _has_geo(db, "pool", "sodertorn"):
            scopes["region sodertorn"] = {"region": "sodertorn"}
        print(f"baseline (plotly.js only): {base:.3f} s, {base_bytes / 1e6:.2f} MB")
        print(f"{'scope':28} {'median s':>9} {'max s':>7} {'x base':>7} {'MB':>6} {'data MB':>8}  budget")
        ok = True
        for name, kwargs in scopes.items():
            runs = [cold_build(db, folder / "d.html", **kwargs) for _ in range(args.repeat)]
            times = [r.seconds for r in runs]
            size = runs[-1].bytes
            within = statistics.median(times) <= BUDGET_SECONDS and size <= BUDGET_BYTES
            ok &= within
            print(
                f"{name:28} {statistics.median(times):9.3f} {max(times):7.3f} {statistics.median(times) / base:7.1f}"
                f" {size / 1e6:6.2f} {(size - base_bytes) / 1e6:8.2f}  {'ok' if within else 'OVER'}"
            )
    print(f"budgets: build <= {BUDGET_SECONDS} s, file <= {BUDGET_BYTES / 1e6:.0f} MB (2 shared cores; medians of {args.repeat})")
    return 0 if ok else 1


def _first_municipality(db: Path) -> str:
    from isu.store import connect

    con = connect(db, read_only=True)
    try:
        rows = con.execute("SELECT min(geo_code) FROM pub_cells WHERE geo_level = 'municipality'").fetchall()
    finally:
        con.close()
    return rows[0][0]


def _has_geo(db: Path, level: str, code: str) -> bool:
    from isu.store import connect

    con = connect(db, read_only=True)
    try:
        rows = con.execute("SELECT count(*) FROM pub_cells WHERE geo_level = ? AND geo_code = ?", [level, code]).fetchall()
    finally:
        con.close()
    return rows[0][0] > 0


if __name__ == "__main__":
    raise SystemExit(main())
