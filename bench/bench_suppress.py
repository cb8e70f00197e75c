"""Benchmark: suppress + audit a national-size linked table; compare with a naive margin baseline.

    python bench/bench_suppress.py                 # 290 municipalities × 40 categories × 10 needs × 3 sexes
    python bench/bench_suppress.py --quick         # 40 municipalities × 12 × 5 × 3 (seconds)
    python bench/bench_suppress.py --records 100000 --k 5 --seed 1 --contributor --no-singletons
    python bench/bench_suppress.py --quick --onesided --weights balanced   # hidden zeros allowed

Data: municipality and county codes from schemas/codes/municipalities.csv; municipality sizes from a
log-normal population-like law; leaf counts negative-binomial around size × category share (Zipf)
× need share × sex share, so small municipalities have many zeros and small counts. One table with
every margin: geography (municipality, county, nation) × category × need × sex, ≈ 560,000 cells.

Baseline (measured in the same run, not safe in general): repeatedly, in every margin relation
(parent and its children along one dimension, others fixed) with exactly one hidden cell, hide the
cheapest other non-zero cell, until no relation has exactly one hidden cell. Printed: times, peak
RSS, cells, primary, secondary, baseline secondary and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from isu.audit import audit
from isu.suppress import Dimension, suppress
from isu.suppress_model import build_model


def municipalities(n: int | None) -> list[tuple[str, str]]:
    with open(ROOT / "schemas" / "codes" / "municipalities.csv", encoding="utf-8") as f:
        rows = [(r["code"], r["county_code"]) for r in csv.DictReader(f)]
    if n is None or n >= len(rows):
        return rows
    keep = np.random.default_rng(0).choice(len(rows), n, replace=False)
    return [rows[i] for i in sorted(keep)]


def make_problem(n_munis: int | None, n_cat: int, n_need: int, records: int, seed: int):
    rng = np.random.default_rng(seed)
    munis = municipalities(n_munis)
    m = len(munis)
    size = np.exp(rng.normal(9.75, 0.95, m))
    share = size / size.sum()
    pc = 1 / np.arange(1, n_cat + 1) ** 1.0
    pn = 1 / np.arange(1, n_need + 1) ** 0.8
    ps = np.array([0.52, 0.46, 0.02])
    mu = records * share[:, None, None, None] * (pc / pc.sum())[None, :, None, None] * \
        (pn / pn.sum())[None, None, :, None] * ps[None, None, None, :]
    r = 0.8
    x = rng.negative_binomial(r, r / (r + mu))
    cats = [f"cat{i:02d}" for i in range(n_cat)]
    needs = [f"need{i:02d}" for i in range(n_need)]
    sexes = ["F", "M", "U"]
    idx = np.nonzero(x)
    codes = [c for c, _ in munis]
    inner = pl.DataFrame({"geo": np.array(codes)[idx[0]], "category": np.array(cats)[idx[1]],
                          "need": np.array(needs)[idx[2]], "sex": np.array(sexes)[idx[3]], "n": x[idx]})
    inner = inner.with_columns(contributor=pl.col("geo"))
    geo = {c: frozenset({c}) for c in codes}
    for c, county in munis:
        geo.setdefault(county, frozenset())
        geo[county] = geo[county] | {c}
    geo["all"] = frozenset(codes)
    dims = [Dimension("geo", geo), Dimension.flat("category", cats), Dimension.flat("need", needs),
            Dimension.flat("sex", sexes)]
    return inner, dims, [("national", ["geo", "category", "need", "sex"])]


def baseline(inner: pl.DataFrame, dims, tables, k: int, weight_out: list | None = None) -> tuple[int, float]:
    """Naive margin rule on the dense table: hide the cheapest cell of each relation with one hidden."""
    t0 = time.perf_counter()
    model = build_model(inner, dims, tables, "n", None)
    t = model.tables[0]
    vals = model.cell_value[t.canon]
    hidden = (vals >= 1) & (vals < k)
    primary = int(hidden.sum())
    relations = []
    for axis, j in enumerate(t.bdims):
        d = model.dims[j]
        for g in range(d.n_leaves, d.n):
            inside = [c for c in range(d.n) if c != g and d.mem[c].any() and not (d.mem[c] & ~d.mem[g]).any()]
            maximal = [c for c in inside if not any(o != c and not (d.mem[c] & ~d.mem[o]).any()
                                                     and d.mem[o].sum() > d.mem[c].sum() for o in inside)]
            relations.append((axis, [g] + maximal))
    cost = np.where(vals > 0, 1.0 + vals, np.inf)
    changed = True
    while changed:
        changed = False
        for axis, members in relations:
            h = np.take(hidden, members, axis=axis)
            c = np.where(h, np.inf, np.take(cost, members, axis=axis))
            exposed = (h.sum(axis=axis, keepdims=True) == 1) & np.isfinite(c.min(axis=axis, keepdims=True))
            if not exposed.any():
                continue
            pick = np.argmin(c, axis=axis, keepdims=True)
            mask = np.zeros_like(h)
            np.put_along_axis(mask, pick, exposed, axis=axis)
            for i, member in enumerate(members):
                sl = [slice(None)] * hidden.ndim
                sl[axis] = member
                src = [slice(None)] * hidden.ndim
                src[axis] = i
                hidden[tuple(sl)] |= mask[tuple(src)]
            changed = True
    if weight_out is not None:
        weight_out.append(int(vals[hidden & ~((vals >= 1) & (vals < k))].sum()))
    return int(hidden.sum()) - primary, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 municipalities × 12 categories × 5 needs")
    ap.add_argument("--records", type=int, default=None, help="records nationally (default 300,000; quick 30,000)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--contributor", action="store_true", help="municipalities as contributors (insider rule)")
    ap.add_argument("--no-singletons", action="store_true", help="do not treat count-1 leaves as insiders")
    ap.add_argument("--onesided", action="store_true", help="allow one-sided certificates (hidden zero cells)")
    ap.add_argument("--weights", default="sqrt", help="cost of hiding a cell: balanced, sqrt, value or count")
    a = ap.parse_args()
    shape = (40, 12, 5) if a.quick else (None, 40, 10)
    records = a.records or (30_000 if a.quick else 300_000)
    inner, dims, tables = make_problem(*shape, records, a.seed)
    print(f"inner: {inner.height:,} non-zero leaf cells, {int(inner['n'].sum()):,} records, k={a.k}")
    c0 = time.process_time()
    res = suppress(inner, dims, tables, k=a.k, contributor="contributor" if a.contributor else None,
                   singletons=not a.no_singletons, onesided=a.onesided, weights=a.weights)
    c1 = time.process_time()
    rep = audit(res)
    c2 = time.process_time()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    base_weight: list[int] = []
    base_sec, base_t = baseline(inner, dims, tables, a.k, base_weight)
    weight = int(res.cells.filter(pl.col("status") == "secondary")["value"].sum())
    print(f"cells            {res.n_cells:,}")
    print(f"primary          {res.primary:,}")
    print(f"secondary        {res.secondary:,} cells, total count {weight:,}   (certificates "
          f"{res.summary()['certificates']:,})")
    print(f"suppress         {res.seconds:.1f} s wall, {c1 - c0:.1f} s CPU")
    print(f"audit            {rep['seconds']:.1f} s wall, {c2 - c1:.1f} s CPU   disclosed={rep['disclosed']} proven_safe="
          f"{rep['proof']['proven_safe']:,} unproven={rep['proof']['unproven']} "
          f"insider_unproven={rep['proof']['insider_unproven']} narrowest LP-width lower bound="
          f"{rep['proof']['narrowest_width_lower_bound']} rank_test={rep['rank_test']['ran']} lp={rep['lp']['ran']}")
    print(f"total            {res.seconds + rep['seconds']:.1f} s wall, {c2 - c0:.1f} s CPU   peak RSS {rss1:,.0f} MiB"
          f"   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other work inflates wall time)")
    print(f"baseline         secondary {base_sec:,} cells, total count {base_weight[0]:,}, in {base_t:.1f} s "
          "(naive margin rule: no insiders, not safe in general)")
    print(f"ratio            {res.secondary / max(base_sec, 1):.2f} × baseline secondary cells, "
          f"{weight / max(base_weight[0], 1):.2f} × their total count")


if __name__ == "__main__":
    main()
