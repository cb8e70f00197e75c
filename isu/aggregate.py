"""Inner cells and per-cell sums from the store, in portable SQL (joins + GROUP BY GROUPING SETS).

Why two outputs: suppression needs the *leaf* counts (one row per combination of leaf codes) and
the hierarchy of every dimension, while statistics need sums and sums of squares per *published*
cell. Both come from DuckDB; the statistics are finished vectorised in :mod:`isu.stats`.

Period: a record belongs to the half-year (``2024H1``) or year of its intervention's end date
(``ended_on``); half-years sum to years, years to ``all``. Records without an end date are ongoing,
have no outcome yet and belong to no period, so nothing published counts them.
Geography: municipality → county (län) and → pool (``pools.csv``; a pool is published only when all
its member municipalities hold records) → ``all``. Hierarchies are applied by joining leaf rows to
small mapping tables (leaf → every code that contains it), which keeps the SQL portable.
Outcomes use T0 and T1 of one instrument; later follow-ups (T2…) are not aggregated yet. Values are
summed as DECIMAL(18, 6) (exact, so two runs give identical statistics): finer decimals are rounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import duckdb
import polars as pl

from isu.age_bands import DEFAULT_AGE_BANDS, AgeBand, parse_age_bands  # noqa: F401 - part of this module's API
from isu.errors import IsuError
from isu.schemas import code_list
from isu.stats import RCI_Z, rci_s_diff

__all__ = [
    "CELL_KEYS",
    "CROSS_DIMS",
    "DEFAULT_BREAKDOWNS",
    "NO_T0",
    "RESULT_GROUPS",
    "RESULT_MEASURES",
    "AgeBand",
    "Aggregates",
    "AggregationSpec",
    "Breakdown",
    "aggregate",
    "outcome_groups",
    "parse_age_bands",
]

CROSS_DIMS = ("category", "need_area", "sex", "age_band")
CELL_KEYS = ("period", "geo_code", *CROSS_DIMS)
#: Outcome of one record on one instrument: no T1 (attrition) or the reliable-change class.
RESULT_GROUPS = {
    "no_t1": frozenset({"no_t1"}), "improved": frozenset({"improved"}),
    "unchanged": frozenset({"unchanged"}), "deteriorated": frozenset({"deteriorated"}),
    "paired": frozenset({"improved", "unchanged", "deteriorated"}),
    "all": frozenset({"no_t1", "improved", "unchanged", "deteriorated"}),
}
RESULT_MEASURES = {"all": "t0_n", "paired": "paired_n", "no_t1": "attrition_n", "improved": "improved_n",
                   "unchanged": "unchanged_n", "deteriorated": "deteriorated_n"}
#: Codes of the joint ``outcome`` dimension: a record's leaf is NO_T0 or ``instrument|result`` per
#: baseline instrument (several joined by JOIN); the group ``instrument|<RESULT_GROUPS key>`` sums them.
NO_T0, SEP, JOIN = "none", "|", "+"


@dataclass(frozen=True)
class Breakdown:
    """One published cross-classification: ``dims`` (a subset of ``CROSS_DIMS``) × period × geography."""

    name: str
    dims: tuple[str, ...]


DEFAULT_BREAKDOWNS = (Breakdown("category", ("category",)), Breakdown("need_area", ("need_area",)),
                      Breakdown("sex_age", ("sex", "age_band")))


@dataclass(frozen=True)
class AggregationSpec:
    age_bands: tuple[AgeBand, ...] = field(default_factory=lambda: parse_age_bands(DEFAULT_AGE_BANDS))
    period: Literal["half", "year"] = "half"
    breakdowns: tuple[Breakdown, ...] = DEFAULT_BREAKDOWNS


@dataclass
class Aggregates:
    """Everything publication needs from the microdata (no microdata rows themselves)."""

    groups: dict[str, dict[str, frozenset[str]]]  # dimension → published code → leaf codes it sums
    geo_levels: dict[str, str]                      # geo code → municipality / county / pool / all
    records_inner: pl.DataFrame                     # leaf dims + goal + n
    outcomes_inner: pl.DataFrame                    # leaf dims + instrument + result + n
    inner: pl.DataFrame                             # leaf dims + goal + outcome + n (one row per record's leaf)
    records_cells: pl.DataFrame                     # CELL_KEYS + records, clients (every margin)
    outcome_cells: pl.DataFrame                     # CELL_KEYS + instrument + counts and sums
    spec: AggregationSpec


def _age_sql(bands: tuple[AgeBand, ...]) -> str:
    age = "(EXTRACT(YEAR FROM ended_on) - birth_year)"
    whens = " ".join(f"WHEN {age} <= {b.hi} THEN '{b.label}'" for b in bands[:-1])
    return f"CASE WHEN birth_year IS NULL OR {age} < 0 THEN 'unknown' {whens} ELSE '{bands[-1].label}' END"


def _period_sql(period: str) -> str:
    year = "CAST(EXTRACT(YEAR FROM ended_on) AS VARCHAR)"
    if period == "year":
        return year
    return f"{year} || CASE WHEN EXTRACT(MONTH FROM ended_on) <= 6 THEN 'H1' ELSE 'H2' END"


def _leaf_sql(spec: AggregationSpec) -> list[str]:
    rec = f"""CREATE OR REPLACE TEMP TABLE _isu_rec AS
        SELECT municipality, record_key, client, {_period_sql(spec.period)} AS period, municipality AS geo_code,
               category, need_area, COALESCE(sex, 'U') AS sex, {_age_sql(spec.age_bands)} AS age_band,
               COALESCE(goal_attainment, 'not_assessed') AS goal
        FROM records WHERE ended_on IS NOT NULL"""
    out = f"""CREATE OR REPLACE TEMP TABLE _isu_out AS
        SELECT r.municipality, r.record_key, r.period, r.geo_code, r.category, r.need_area, r.sex, r.age_band, m0.instrument,
               CAST(m0.value AS DECIMAL(18, 6)) AS t0, CAST(m1.value AS DECIMAL(18, 6)) AS t1,
               CASE WHEN m1.value IS NULL THEN 'no_t1'
                    WHEN (m1.value - m0.value) * i.direction / i.s_diff > {RCI_Z} THEN 'improved'
                    WHEN (m1.value - m0.value) * i.direction / i.s_diff < -{RCI_Z} THEN 'deteriorated'
                    ELSE 'unchanged' END AS result
        FROM _isu_rec r
        JOIN measurements m0 ON m0.municipality = r.municipality AND m0.record_key = r.record_key AND m0.timepoint = 'T0'
        JOIN _isu_instr i ON i.code = m0.instrument
        LEFT JOIN measurements m1 ON m1.municipality = r.municipality AND m1.record_key = r.record_key
                                 AND m1.timepoint = 'T1' AND m1.instrument = m0.instrument"""
    # one outcome leaf per record: 'none' (no baseline), or 'instrument|result' per baseline instrument joined by '+'
    joint = f"""CREATE OR REPLACE TEMP TABLE _isu_joint AS
        SELECT r.period, r.geo_code, r.category, r.need_area, r.sex, r.age_band, r.goal, COALESCE(o.leaf, '{NO_T0}') AS outcome
        FROM _isu_rec r LEFT JOIN (SELECT municipality, record_key,
                                          string_agg(instrument || '{SEP}' || result, '{JOIN}' ORDER BY instrument) AS leaf
                                   FROM _isu_out GROUP BY municipality, record_key) o
          ON o.municipality = r.municipality AND o.record_key = r.record_key"""
    return [rec, out, joint]


def _instrument_table(con: duckdb.DuckDBPyConnection) -> None:
    """Per instrument: direction (+1 higher is better, −1 lower) and S_diff for the RCI."""
    instruments = code_list("instruments")
    used = [r[0] for r in con.execute("SELECT DISTINCT instrument FROM measurements WHERE timepoint = 'T0'").fetchall()]
    rows = []
    for code in sorted(used):
        if code not in instruments:
            raise IsuError(f"instrument {code!r} in the store is not in the code list instruments.csv; add it there")
        if SEP in code or JOIN in code:
            raise IsuError(f"instrument code {code!r} may not contain {SEP!r} or {JOIN!r}; rename it in instruments.csv")
        r = instruments.row(code)
        try:
            s_diff = rci_s_diff(float(r["reference_sd"]), float(r["reliability"]))
        except ValueError:
            s_diff = math.nan
        if not s_diff > 0:
            raise IsuError(f"instrument {code!r} needs reference_sd > 0 and 0 <= reliability < 1 in instruments.csv "
                           "for the reliable change index; fill them in")
        rows.append((code, 1.0 if r["higher_is_better"].lower() == "true" else -1.0, s_diff))
    frame = pl.DataFrame(rows, schema={"code": pl.String, "direction": pl.Float64, "s_diff": pl.Float64}, orient="row")
    con.register("_isu_instr_src", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE _isu_instr AS SELECT * FROM _isu_instr_src")
    con.unregister("_isu_instr_src")


def _hierarchies(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, dict[str, frozenset[str]]], dict[str, str]]:
    def present(column: str, table: str = "_isu_rec") -> list[str]:
        return sorted(r[0] for r in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall())

    def flat(leaves: list[str], with_all: bool = True) -> dict[str, frozenset[str]]:
        out = {leaf: frozenset({leaf}) for leaf in leaves}
        return out | {"all": frozenset(leaves)} if with_all else out

    periods = present("period")
    period_groups = flat(periods)
    for p in periods:
        if "H" in p:
            period_groups.setdefault(p[:4], frozenset())
            period_groups[p[:4]] |= {p}
    munis = present("geo_code")
    geo = flat(munis)
    levels = {m: "municipality" for m in munis} | {"all": "all"}
    municipalities = code_list("municipalities")
    for m in munis:
        county = municipalities.row(m).get("county_code") if m in municipalities else ""
        county = county or m[:2]
        geo[county] = geo.get(county, frozenset()) | {m}
        levels[county] = "county"
    for pool in code_list("pools").rows:
        members = frozenset(pool.get("municipalities", "").split())
        if members and members <= set(munis) and pool["code"] not in geo:
            geo[pool["code"]] = members
            levels[pool["code"]] = "pool"
    goals = list(code_list("goal_attainment").codes)
    goals += [g for g in present("goal") if g not in goals]
    groups = {"period": period_groups, "geo_code": geo, "goal": flat(goals)}
    groups |= {d: flat(present(d)) for d in CROSS_DIMS}
    groups["instrument"] = flat(present("instrument", "_isu_out"), with_all=False)
    groups["result"] = dict(RESULT_GROUPS)
    groups["outcome"], rename = outcome_groups(groups["instrument"], present("outcome", "_isu_joint"))
    for old, new in rename.items():
        con.execute("UPDATE _isu_joint SET outcome = ? WHERE outcome = ?", [new, old])
    return groups, levels


def outcome_groups(instruments, leaves: list[str]) -> tuple[dict[str, frozenset[str]], dict[str, str]]:
    """The joint ``outcome`` dimension: records (``all``), records without a baseline (NO_T0), and per
    instrument and result group (``severity04|paired``) the leaves with that instrument's result in it.

    Every ``instrument|result`` leaf exists even without data (stable codes; zeros are published). A
    record with several baseline instruments has a combined leaf (``a|improved+b|no_t1``); a single
    leaf that such a combination also contains is renamed (``a|improved|1``) so that the group code
    ``a|improved`` can sum both. Returns the groups and that renaming (old → new leaf code).
    """
    atomic = [r for r, g in RESULT_GROUPS.items() if g == {r}]
    singles = {f"{i}{SEP}{r}" for i in instruments for r in atomic}
    combos = sorted(x for x in leaves if JOIN in x)
    in_combos = {part for c in combos for part in c.split(JOIN)}
    rename = {x: f"{x}{SEP}1" for x in sorted(singles & in_combos)}
    all_leaves = sorted({NO_T0, *(rename.get(x, x) for x in singles), *combos})
    groups: dict[str, frozenset[str]] = {x: frozenset({x}) for x in all_leaves}
    for i in instruments:
        for name, results in RESULT_GROUPS.items():
            parts = {f"{i}{SEP}{r}" for r in results}
            members = {x for x in all_leaves if x.removesuffix(f"{SEP}1") in parts or (JOIN in x and parts & set(x.split(JOIN)))}
            groups[f"{i}{SEP}{name}"] = frozenset(members)
    groups["all"] = frozenset(all_leaves)
    return groups, rename


def _map_table(con: duckdb.DuckDBPyConnection, name: str, groups: dict[str, frozenset[str]]) -> None:
    pairs = sorted((leaf, code) for code, leaves in groups.items() for leaf in leaves)
    frame = pl.DataFrame(pairs, schema={"leaf": pl.String, "code": pl.String}, orient="row")
    con.register(f"{name}_src", frame)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_src")
    con.unregister(f"{name}_src")


def _grouping_sets(breakdowns: tuple[Breakdown, ...], fixed: tuple[str, ...]) -> str:
    sets: list[tuple[str, ...]] = []
    for b in breakdowns:
        for size in range(len(b.dims) + 1):
            for subset in combinations(b.dims, size):
                s = fixed + subset
                if s not in sets:
                    sets.append(s)
    return ", ".join("(" + ", ".join(s) + ")" for s in sets)


def _cells_sql(source: str, payload: tuple[str, ...], measures: str, breakdowns: tuple[Breakdown, ...],
               extra: tuple[str, ...] = ()) -> str:
    """Every cell of every breakdown (all margins), hierarchies applied through the map tables."""
    used = {d for b in breakdowns for d in b.dims}
    cols = ", ".join(f"COALESCE({d}, 'all') AS {d}" if d in used else f"'all' AS {d}" for d in CROSS_DIMS)
    fixed = ("period", "geo_code", *extra)
    inner = ", ".join(f"s.{c}" for c in (*(d for d in CROSS_DIMS if d in used), *extra, *payload))
    return f"""SELECT period, geo_code, {cols}{''.join(', ' + e for e in extra)}, {measures}
        FROM (SELECT pm.code AS period, gm.code AS geo_code, {inner}
              FROM {source} s JOIN _isu_pmap pm ON pm.leaf = s.period JOIN _isu_gmap gm ON gm.leaf = s.geo_code) x
        GROUP BY GROUPING SETS ({_grouping_sets(breakdowns, fixed)})"""


#: Exact sums (DECIMAL: the same result whatever the order of a parallel aggregation), as DOUBLE.
OUTCOME_SUMS = """COUNT(*) AS t0_n, COUNT(t1) AS paired_n,
    SUM(CASE WHEN t1 IS NULL THEN 1 ELSE 0 END) AS attrition_n,
    SUM(CASE WHEN result = 'improved' THEN 1 ELSE 0 END) AS improved_n,
    SUM(CASE WHEN result = 'unchanged' THEN 1 ELSE 0 END) AS unchanged_n,
    SUM(CASE WHEN result = 'deteriorated' THEN 1 ELSE 0 END) AS deteriorated_n,
    CAST(SUM(CASE WHEN t1 IS NOT NULL THEN t0 END) AS DOUBLE) AS paired_sum_t0,
    CAST(SUM(t1) AS DOUBLE) AS paired_sum_t1,
    CAST(SUM(CASE WHEN t1 IS NOT NULL THEN t0 * t0 END) AS DOUBLE) AS paired_sumsq_t0,
    CAST(SUM(t1 * t1) AS DOUBLE) AS paired_sumsq_t1,
    CAST(SUM(t1 - t0) AS DOUBLE) AS sum_change,
    CAST(SUM((t1 - t0) * (t1 - t0)) AS DOUBLE) AS sumsq_change,
    CAST(SUM(CASE WHEN t1 IS NULL THEN t0 END) AS DOUBLE) AS dropouts_sum_t0"""


def aggregate(con: duckdb.DuckDBPyConnection, spec: AggregationSpec | None = None) -> Aggregates:
    """Leaf counts, hierarchies and per-cell sums of the ended records in the store."""
    spec = spec or AggregationSpec()
    unknown = {d for b in spec.breakdowns for d in b.dims} - set(CROSS_DIMS)
    if unknown:
        raise IsuError(f"breakdown dimensions {sorted(unknown)} are unknown; use some of {list(CROSS_DIMS)}")
    _instrument_table(con)
    for sql in _leaf_sql(spec):
        con.execute(sql)
    try:
        groups, levels = _hierarchies(con)
        _map_table(con, "_isu_pmap", groups["period"])
        _map_table(con, "_isu_gmap", groups["geo_code"])
        leaf = ", ".join(CELL_KEYS)
        order = lambda cols: "ORDER BY " + ", ".join(cols)
        records_inner = con.sql(f"SELECT {leaf}, goal, COUNT(*) AS n FROM _isu_rec GROUP BY {leaf}, goal "
                                + order((*CELL_KEYS, "goal"))).pl()
        outcomes_inner = con.sql(f"SELECT {leaf}, instrument, result, COUNT(*) AS n FROM _isu_out "
                                 f"GROUP BY {leaf}, instrument, result " + order((*CELL_KEYS, "instrument", "result"))).pl()
        inner = con.sql(f"SELECT {leaf}, goal, outcome, COUNT(*) AS n FROM _isu_joint GROUP BY {leaf}, goal, outcome "
                        + order((*CELL_KEYS, "goal", "outcome"))).pl()
        records_cells = con.sql(_cells_sql("_isu_rec", ("client",), "COUNT(*) AS records, COUNT(DISTINCT client) AS clients",
                                           spec.breakdowns) + " " + order(CELL_KEYS)).pl()
        outcome_cells = con.sql(_cells_sql("_isu_out", ("t0", "t1", "result"), OUTCOME_SUMS, spec.breakdowns, ("instrument",)) + " "
                                + order((*CELL_KEYS, "instrument"))).pl()
    finally:
        for t in ("_isu_rec", "_isu_out", "_isu_joint", "_isu_instr", "_isu_pmap", "_isu_gmap"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    ints = [c for c in outcome_cells.columns if c.endswith("_n")]
    outcome_cells = outcome_cells.with_columns(pl.col(ints).cast(pl.Int64))
    records_inner = records_inner.with_columns(pl.col("n").cast(pl.Int64))
    outcomes_inner = outcomes_inner.with_columns(pl.col("n").cast(pl.Int64))
    inner = inner.with_columns(pl.col("n").cast(pl.Int64))
    records_cells = records_cells.with_columns(pl.col("records", "clients").cast(pl.Int64))
    return Aggregates(groups, levels, records_inner, outcomes_inner, inner, records_cells, outcome_cells, spec)
