"""A synthetic publication for dashboard tests and the dashboard benchmark.

It writes ``publications`` and ``pub_cells`` in the documented long form, with counts that add up
over municipalities, county, pool and all, statistics hidden where paired n < k (primary) and a
sibling hidden next to each lone hidden cell (secondary). Hidden cells hold NULL in ``value``
(or, with ``leak_values=True``, their true value, to prove the dashboard ignores it); the true
values stay in the returned frame for the privacy tests. No tests live here.
"""

from __future__ import annotations

import json
from datetime import datetime
from itertools import product
from pathlib import Path

import numpy as np
import polars as pl
from isu.schemas import code_list

from isu.store import connect

__all__ = ["SODERTORN", "make_workspace", "synthetic_cells", "write_publication"]

SODERTORN = code_list("pools").row("sodertorn")["municipalities"].split()
KEYS = ["geo_level", "geo_code", "period", "category", "need_area", "instrument"]
#: Rough relative size of each Södertörn municipality (population), so the funnel looks like a region's.
WEIGHTS = {"0126": 1.0, "0127": 0.8, "0181": 0.9, "0136": 0.8, "0182": 0.9, "0138": 0.4,
           "0120": 0.4, "0192": 0.25, "0128": 0.15, "0140": 0.1}  # fmt: skip
GOALS = ["goal_met", "improved", "no_change", "worse", "not_assessed"]




def _instrument_for(need: str, instruments: tuple[str, ...]) -> str:
    """Each need area is followed with one instrument (ASI for alcohol and drugs where given)."""
    special = {"alcohol": "asi_alcohol", "drugs": "asi_drugs", "mental_health": "wellbeing10"}
    return special[need] if special.get(need) in instruments else instruments[0]


def _inner(rng, munis, periods, categories, needs, instruments, density, size) -> pl.DataFrame:
    """Sums per municipality × period × category × need area (the finest cells)."""
    table = code_list("instruments")
    rows = []
    for muni, period, cat, need in product(munis, periods, categories, needs):
        if rng.random() > density:
            continue
        t0 = int(rng.poisson(size * WEIGHTS.get(muni, 0.5) * rng.uniform(0.2, 1.6))) + 1
        paired = int(rng.binomial(t0, 0.78))
        p_imp = float(np.clip(rng.normal(0.42, 0.08) + (0.12 if muni == munis[-1] else 0.0), 0.05, 0.9))
        imp, unch, det = rng.multinomial(paired, [p_imp, (1 - p_imp) * 0.75, (1 - p_imp) * 0.25])
        goals = rng.multinomial(t0, [0.25, 0.3, 0.25, 0.1, 0.1])
        instrument = _instrument_for(need, instruments)
        spec = table.row(instrument)
        lo, span, sign = float(spec["min"]), float(spec["max"]) - float(spec["min"]), 1 if spec["higher_is_better"] == "true" else -1
        m0 = lo + span * (rng.normal(0.67, 0.07) if sign < 0 else rng.normal(0.35, 0.07))
        drop0 = m0 - sign * span * rng.normal(0.05, 0.04)
        change = sign * span * rng.normal(0.17, 0.06)
        rows.append({
            "municipality": muni, "period": period, "category": cat, "need_area": need, "instrument": instrument,
            "records": t0, "clients": max(1, int(t0 * 0.9)), "t0_n": t0, "paired_n": paired, "attrition_n": t0 - paired,
            "improved_n": imp, "unchanged_n": unch, "deteriorated_n": det,
            **{f"goal_{g}_n": int(c) for g, c in zip(GOALS, goals)},
            "s_t0": m0 * paired, "s_t1": (m0 + change) * paired, "s_drop": drop0 * (t0 - paired),
        })  # fmt: skip
    return pl.DataFrame(rows)


def _rollup(inner: pl.DataFrame, county: str, pool: str, crossed: bool) -> pl.DataFrame:
    """Margins as ``isu.publish`` makes them: period (half-year → year → all), area (municipality,
    county, pool, all), and category and need area each on its own (both only when ``crossed``).
    Each row says which published table it belongs to; a margin shared by tables is in each of them.
    """
    counts = [c for c in inner.columns if c.endswith("_n") or c in ("records", "clients") or c.startswith("s_")]
    geo = {
        "municipality": pl.col("municipality"), "county": pl.lit(county), "pool": pl.lit(pool), "all": pl.lit("all"),
    }  # fmt: skip
    periods = {"half": pl.col("period"), "year": pl.col("period").str.slice(0, 4), "all": pl.lit("all")}
    tables = {"category": (True, False), "need_area": (False, True)}
    if crossed:
        tables["crossed"] = (True, True)
    parts = []
    for (level, code), period, (table, (by_cat, by_need)), margin in product(
        geo.items(), periods.values(), tables.items(), (False, True)
    ):
        if margin and not (by_cat or by_need):
            continue
        keys = {
            "period": period,
            "category": pl.col("category") if by_cat and not margin else pl.lit("all"),
            "need_area": pl.col("need_area") if by_need and not margin else pl.lit("all"),
        }
        frame = inner.with_columns(geo_level=pl.lit(level), geo_code=code, table=pl.lit(table), **keys)
        parts.append(frame.group_by(KEYS + ["table"]).agg([pl.col(c).sum() for c in counts]))
    return pl.concat(parts).unique(KEYS + ["table"])


def _statistics(cells: pl.DataFrame) -> pl.DataFrame:
    n = pl.col("paired_n").cast(pl.Float64)
    z = 1.96
    share = pl.col("improved_n") / n
    centre = (share + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * (share * (1 - share) / n + z**2 / (4 * n**2)).sqrt() / (1 + z**2 / n)
    change = (pl.col("s_t1") - pl.col("s_t0")) / n
    return cells.with_columns(
        attrition_rate=pl.col("attrition_n") / pl.col("t0_n"),
        mean_t0=pl.col("s_t0") / n, mean_t1=pl.col("s_t1") / n, mean_change=change,
        change_ci_low=change - 1.96 * 0.9 / n.sqrt(), change_ci_high=change + 1.96 * 0.9 / n.sqrt(),
        d_z=change / 0.9 * (1 - 3 / (4 * (n - 1) - 1)),
        share_improved=share, share_unchanged=pl.col("unchanged_n") / n, share_deteriorated=pl.col("deteriorated_n") / n,
        share_improved_ci_low=centre - half, share_improved_ci_high=centre + half,
        completers_mean_t0=pl.col("s_t0") / n, dropouts_mean_t0=pl.col("s_drop") / pl.col("attrition_n"),
    ).drop("s_t0", "s_t1", "s_drop")  # fmt: skip


STATS = [
    "attrition_rate", "mean_t0", "mean_t1", "mean_change", "change_ci_low", "change_ci_high", "d_z",
    "share_improved", "share_unchanged", "share_deteriorated", "share_improved_ci_low", "share_improved_ci_high",
    "completers_mean_t0",
]  # fmt: skip


def _long(cells: pl.DataFrame, k: int) -> pl.DataFrame:
    """Long form with status: counts 1..k-1 and statistics of paired n < k are primary."""
    general = ["records", "clients"] + [f"goal_{g}_n" for g in GOALS]
    outcome = ["t0_n", "paired_n", "attrition_n", "improved_n", "unchanged_n", "deteriorated_n", *STATS, "dropouts_mean_t0"]
    records = cells.with_columns(instrument=pl.lit("all")).group_by(KEYS + ["table"]).agg(pl.col(general).sum())
    parts = []
    for table, frame, measures in (("records", records, general), ("outcomes", cells, outcome)):
        frame = frame.select(KEYS + ["table"] + [pl.col(m).cast(pl.Float64) for m in measures])
        frame = frame.unpivot(index=KEYS + ["table"], on=measures, variable_name="measure")
        parts.append(frame.with_columns(table_name=pl.lit(table) + "_" + pl.col("table")).drop("table"))
    pn = cells.select(KEYS + ["paired_n", "attrition_n"]).unique(KEYS)
    long = pl.concat(parts).join(pn.rename({"paired_n": "_pn", "attrition_n": "_an"}), on=KEYS, how="left")
    is_count = pl.col("measure").str.ends_with("_n") | pl.col("measure").is_in(["records", "clients"])
    small = pl.col("value").is_between(1, k - 1) if k > 1 else pl.lit(False)
    stat_hidden = (pl.col("_pn") < k) | ((pl.col("measure") == "dropouts_mean_t0") & (pl.col("_an") < k))
    undefined = pl.col("value").is_null() | pl.col("value").is_nan()
    status = (
        pl.when(~is_count & undefined).then(pl.lit("na"))
        .when(is_count & small).then(pl.lit("primary"))
        .when(~is_count & stat_hidden.fill_null(True)).then(pl.lit("primary"))
        .otherwise(pl.lit("shown"))
    )  # fmt: skip
    return long.with_columns(status=status, value=pl.when(undefined).then(None).otherwise(pl.col("value"))).drop("_pn", "_an")


def _secondary(long: pl.DataFrame) -> pl.DataFrame:
    """Where a group of sibling municipality cells has exactly one hidden paired_n, hide the next smallest."""
    siblings = ["geo_level", "geo_code", "period", "need_area", "instrument", "measure"]
    pn = long.filter(
        (pl.col("measure") == "paired_n") & (pl.col("geo_level") == "municipality") & (pl.col("category") != "all")
    ).unique(KEYS)
    lone = pn.group_by(siblings).agg((pl.col("status") == "primary").sum().alias("hidden")).filter(pl.col("hidden") == 1)
    victims = (
        pn.join(lone, on=siblings).filter(pl.col("status") == "shown").sort("value")
        .group_by(siblings).first().select(KEYS).with_columns(_victim=pl.lit(True))
    )  # fmt: skip
    marked = long.join(victims, on=KEYS, how="left")
    return marked.with_columns(
        status=pl.when(pl.col("_victim").fill_null(False) & (pl.col("status") == "shown")).then(pl.lit("secondary"))
        .otherwise(pl.col("status"))
    ).drop("_victim")  # fmt: skip


def synthetic_cells(
    munis: list[str] | None = None,
    *,
    periods: tuple[str, ...] = ("2023H2", "2024H1", "2024H2"),
    categories: list[str] | None = None,
    needs: list[str] | None = None,
    instruments: tuple[str, ...] = ("severity04",),
    density: float = 0.5,
    size: float = 14.0,
    k: int = 5,
    seed: int = 7,
    crossed: bool = False,
) -> pl.DataFrame:
    """Long cells with columns KEYS, sex, age_band, table_name, measure, value (true), status."""
    rng = np.random.default_rng(seed)
    munis = munis or SODERTORN
    categories = categories or list(code_list("intervention_categories").codes)
    needs = needs or list(code_list("need_areas").codes)
    inner = _inner(rng, munis, periods, categories, needs, instruments, density, size)
    cells = _statistics(_rollup(inner, munis[0][:2], "sodertorn", crossed))
    return _secondary(_long(cells, k)).with_columns(sex=pl.lit("all"), age_band=pl.lit("all"))


def write_publication(con, cells: pl.DataFrame, *, threshold: int = 5, leak_values: bool = False) -> int:
    """Store ``cells`` as a new publication; hidden values become NULL unless ``leak_values``."""
    pid = con.execute("SELECT coalesce(max(publication_id), 0) + 1 FROM publications").fetchone()[0]
    audit = {"hidden_primary": int((cells["status"] == "primary").sum()), "ok": True}
    con.execute(
        "INSERT INTO publications VALUES (?, ?, ?, ?, ?)",
        [pid, datetime(2025, 3, 1, 9, 30), threshold, "0.1.0", json.dumps(audit)],
    )
    value = pl.col("value") if leak_values else pl.when(pl.col("status") == "shown").then(pl.col("value"))
    out = cells.with_columns(publication_id=pl.lit(pid, dtype=pl.Int32), value=value).select(
        "publication_id", "table_name", "period", "geo_level", "geo_code", "category", "need_area",
        "sex", "age_band", "instrument", "measure", "value", "status",
    )  # fmt: skip
    con.register("_cells", out.to_arrow())
    con.execute("INSERT INTO pub_cells SELECT * FROM _cells")
    con.unregister("_cells")
    return int(pid)


def make_workspace(path: Path, cells: pl.DataFrame | None = None, **kwargs) -> Path:
    """A workspace at ``path`` holding one synthetic publication."""
    con = connect(path, create=True)
    try:
        write_publication(con, synthetic_cells() if cells is None else cells, **kwargs)
    finally:
        con.close()
    return path
