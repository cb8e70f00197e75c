"""Publication: aggregate → primary + secondary suppression → audit → ``pub_cells`` and files, in one run.

Why it is shaped like this:

* Every table in one engine call. Its inner cells are the records' leaves: period × municipality ×
  the breakdowns × goal level × ``outcome``, where a record's outcome leaf is ``none`` (no baseline
  measurement) or its result on its baseline instrument (``severity04|improved``; several instruments
  give one combined leaf, which only its instruments' groups publish: the engine is told that
  no table shows it, so it is neither shown nor protected). The records tables break down ``goal``; the outcome tables break down
  ``outcome``, whose groups give ``t0_n`` (``severity04|all``), ``paired_n`` and the result counts
  per instrument, and ``no_t0_n`` (``none``). So the relation between the two kinds of table,
  records = Σ t0_n over instruments + no_t0_n (exact wherever no record has two baseline
  instruments), is a linear identity over the engine's inner cells: every certificate respects it,
  and no hidden cell can be recomputed through it. (Earlier versions ran two calls and forced cells
  where the relation exposed one; that guarded single hidden members, not every linear
  combination.) ``link_check`` re-verifies, as part of the audit, that no such sum has exactly one
  hidden member.
* Totals are kept where possible: every period × geography total (records; per instrument t0_n and
  paired_n) is passed to the engine as ``keep``, so certificates avoid them and an LP finds a cycle of
  small cells instead (see :mod:`isu.suppress`). Without it the demo hid even the national totals.
* Distinct clients are not additive (a client has several records): ``clients`` is hidden when it is
  1..k−1 and whenever the matching ``records`` cell is hidden.
* A statistic is shown only when its n ≥ k and every count it is computed from is shown (a share
  next to a shown denominator would otherwise give back a hidden numerator).
* Audit before any write: if a hidden cell can be recomputed, ``DisclosureError`` and nothing is
  written. Files are written to a temporary folder and moved in before the transaction commits.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl

from isu import __version__
from isu.aggregate import (
    CELL_KEYS,
    CROSS_DIMS,
    JOIN,
    NO_T0,
    RESULT_MEASURES,
    SEP,
    Aggregates,
    AggregationSpec,
    aggregate,
)
from isu.errors import DisclosureError, IsuError, UsageError
from isu.paths import unwritable_folder
from isu.query import DIM_COLUMNS, write_files
from isu.stats import STATISTICS, finish
from isu.store import connect, transaction
from isu.suppress import Dimension, audit, suppress

__all__ = ["Plan", "PublicationResult", "assemble", "audit_summary", "link_check", "plan", "publish"]

PUB_COLUMNS = ("publication_id", "table_name", *DIM_COLUMNS, "measure", "value", "status")
HIDDEN = ("primary", "secondary")


@dataclass
class PublicationResult:
    publication_id: int
    threshold: int
    cells: pl.DataFrame                       # this publication's pub_cells rows
    audit: dict
    files: list[Path] = field(default_factory=list)


@dataclass
class Plan:
    """Suppression outcome of the engine call plus the audit reports (before anything is written)."""

    cells: pl.DataFrame     # engine cells of all tables
    audits: dict            # engine audit ("joint"), plus "link" once assembled
    seconds: dict


def _call(a: Aggregates):
    """Engine input: the joint inner cells (leaf dims + goal + outcome) and every table of both kinds."""
    bd = a.spec.breakdowns
    keys = ["period", "geo_code", *(d for d in CROSS_DIMS if any(d in b.dims for b in bd))]
    names = [*keys, "goal", "outcome"]
    inner = a.inner.group_by(names).agg(pl.col("n").sum()).sort(names)
    tables = [(f"{kind}_{b.name}", ["period", "geo_code", *b.dims, extra])
              for kind, extra in (("records", "goal"), ("outcomes", "outcome")) for b in bd]
    return inner, [Dimension(n, a.groups[n]) for n in names], tables


def _keep(dims: list[Dimension], instruments: list[str]) -> pl.DataFrame:
    """Cells to keep published where any certificate can avoid them: every period × geography total
    (records; per instrument, records with a baseline and paired records)."""
    by = {d.name: d for d in dims}
    frame = _ranked(by["period"]).join(_ranked(by["geo_code"]), how="cross")
    # the more aggregated, the later given up: nation and all periods last (priority 4^rank, 1..256)
    frame = frame.select("period", "geo_code", priority=4.0 ** (pl.col("period_rank") + pl.col("geo_code_rank")))
    totals = ["all", *(f"{i}{SEP}{r}" for i in instruments for r in ("all", "paired"))]
    return frame.join(pl.DataFrame({"outcome": totals}), how="cross")


def _ranked(d: Dimension) -> pl.DataFrame:
    """Codes of a dimension with their level: 0 a leaf, 2 the total, 1 a group between."""
    n = max(len(g) for g in d.groups.values())
    rank = {c: 0 if g == {c} else 2 if len(g) == n else 1 for c, g in d.groups.items()}
    return pl.DataFrame({d.name: sorted(rank), f"{d.name}_rank": [rank[c] for c in sorted(rank)]})


def _links(rec: pl.DataFrame, out: pl.DataFrame) -> pl.DataFrame:
    """Record cells whose count equals Σ t0_n over instruments + records without a baseline (which holds
    exactly where no record of the cell has two baseline instruments), with their hidden members."""
    keys = [c for c in CELL_KEYS if c in rec.columns]
    hid = pl.col("status").is_in(HIDDEN)
    r = rec.filter(pl.col("measure") == "records").select(*keys, r_value="value_true", r_hidden=hid)
    o = out.filter(pl.col("measure").is_in(["t0_n", "no_t0_n"])).select(*keys, o_value="value_true", o_hidden=hid)
    og = o.group_by(keys).agg(t0_sum=pl.col("o_value").sum(), o_hidden_n=(pl.col("o_hidden") & (pl.col("o_value") > 0)).sum())
    links = r.join(og, on=keys).filter((pl.col("r_value") == pl.col("t0_sum")) & (pl.col("r_value") > 0))
    return links.with_columns(hidden_n=pl.col("o_hidden_n") + pl.col("r_hidden").cast(pl.UInt32))


def link_check(rec: pl.DataFrame, out: pl.DataFrame) -> dict:
    """Independent check of the relation between the records and outcome tables (one engine call
    protects it by construction): no link may have exactly one hidden member.
    ``rec``/``out``: long cells (``measure``, ``value_true``, ``status``) of records and outcome tables."""
    links = _links(rec, out)
    return {"relation": "records = sum of t0_n over instruments + no_t0_n", "links": links.height,
            "with_hidden": int((links["hidden_n"] > 0).sum()), "disclosed": int((links["hidden_n"] == 1).sum())}


def plan(a: Aggregates, k: int, *, lp_max_cells: int = 2000, municipal_insiders: bool = False) -> Plan:
    """One engine call over the records and outcome tables together, then its audit.

    ``municipal_insiders`` tells the engine that each municipality knows its own cells (regional
    publications), so no hidden cell of another may be recomputable with that knowledge.
    """
    inner, dims, tables = _call(a)
    t0 = time.perf_counter()
    published = set(_outcome_codes(sorted(a.groups["outcome"]))["outcome"]) | {"all"}
    res = suppress(inner, dims, tables, value="n", k=k, contributor="geo_code" if municipal_insiders else None,
                   keep=_keep(dims, sorted(a.groups["instrument"])), unpublished={"outcome": sorted(set(a.groups["outcome"]) - published)})
    t1 = time.perf_counter()
    audits = {"joint": audit(res, lp_max_cells=lp_max_cells)}
    seconds = {"suppress": round(t1 - t0, 3), "audit": round(time.perf_counter() - t1, 3)}
    return Plan(res.cells, audits, seconds)


def _long(cells: pl.DataFrame, measure: pl.Expr, instrument: pl.Expr, levels: dict[str, str], k: int) -> pl.DataFrame:
    """Engine cells → pub_cells rows. Status is re-derived: 1..k−1 is primary, any other hidden cell
    is secondary. ``value_true`` keeps the count for the link check (dropped before anything is written)."""
    hidden = pl.col("status").is_in(HIDDEN)
    status = (pl.when(pl.col("value").is_between(1, k - 1)).then(pl.lit("primary"))
              .when(hidden).then(pl.lit("secondary")).otherwise(pl.lit("shown")))
    return cells.select(
        table_name="table", period="period", geo_level=pl.col("geo_code").replace_strict(levels, return_dtype=pl.String),
        geo_code="geo_code", **{d: pl.col(d) if d in cells.columns else pl.lit("all") for d in CROSS_DIMS},
        instrument=instrument, measure=measure,
        value=pl.when(hidden).then(None).otherwise(pl.col("value")).cast(pl.Float64), status=status,
        value_true=pl.col("value"))


def _clients(rec_long: pl.DataFrame, a: Aggregates, k: int) -> pl.DataFrame:
    base = rec_long.filter(pl.col("measure") == "records").drop("value", "measure")
    j = base.join(a.records_cells.select(*CELL_KEYS, "clients"), on=list(CELL_KEYS), how="left").with_columns(
        pl.col("clients").fill_null(0))
    status = (pl.when(pl.col("clients").is_between(1, k - 1)).then(pl.lit("primary"))
              .when(pl.col("status").is_in(HIDDEN)).then(pl.col("status")).otherwise(pl.lit("shown")))
    return j.with_columns(measure=pl.lit("clients"), status=status).with_columns(
        value=pl.when(pl.col("status") == "shown").then(pl.col("clients").cast(pl.Float64))).select(
        *PUB_COLUMNS[1:])


def _statistics(out_long: pl.DataFrame, a: Aggregates, k: int) -> pl.DataFrame:
    """One row per outcome cell and statistic; status from the counts it depends on."""
    keys = ["table_name", *DIM_COLUMNS]
    counts = out_long.filter(pl.col("instrument") != "all").pivot(on="measure", index=keys, values=["value", "status"])
    raw = a.outcome_cells.select(*CELL_KEYS, "instrument", *(pl.col(m).alias(f"raw_{m}") for m in RESULT_MEASURES.values()))
    stats = finish(a.outcome_cells).select(*CELL_KEYS, "instrument", *STATISTICS)
    j = counts.join(raw, on=[*CELL_KEYS, "instrument"], how="left").join(stats, on=[*CELL_KEYS, "instrument"], how="left")
    shown_mismatch = j.filter((pl.col("status_paired_n") == "shown") & (pl.col("value_paired_n") != pl.col("raw_paired_n")))
    if not shown_mismatch.is_empty():
        raise RuntimeError("suppression engine and aggregation disagree on paired_n; this is a bug")
    frames = []
    for name, s in STATISTICS.items():
        statuses = [pl.col(f"status_{c}") for c in s.shown]
        small = pl.any_horizontal(pl.col(f"raw_{c}").fill_null(0) < k for c in s.at_least_k)
        status = (pl.when(pl.any_horizontal(st == "primary" for st in statuses)).then(pl.lit("primary"))
                  .when(pl.any_horizontal(st.is_in(HIDDEN) for st in statuses)).then(pl.lit("secondary"))
                  .when(pl.col(name).is_null()).then(pl.lit("na"))
                  .when(small).then(pl.lit("primary")).otherwise(pl.lit("shown")))
        frames.append(j.select(*keys, measure=pl.lit(name), status=status, raw=pl.col(name)))
    long = pl.concat(frames)
    return long.with_columns(value=pl.when(pl.col("status") == "shown").then(pl.col("raw"))).select(*PUB_COLUMNS[1:])


def _outcome_codes(codes: list[str]) -> pl.DataFrame:
    """Outcome codes published as (instrument, measure): ``i|r`` per instrument and result group, and
    records without a baseline. The total (the records count itself, published in the records tables),
    combined leaves of records with several instruments and renamed single leaves are not published."""
    rows = [(NO_T0, "all", "no_t0_n")]
    for c in codes:
        parts = c.split(SEP)
        if len(parts) == 2 and JOIN not in c and parts[1] in RESULT_MEASURES:
            rows.append((c, parts[0], RESULT_MEASURES[parts[1]]))
    return pl.DataFrame(rows, schema={"outcome": pl.String, "instrument": pl.String, "measure": pl.String}, orient="row")


def assemble(a: Aggregates, p: Plan, k: int) -> pl.DataFrame:
    """pub_cells rows (without publication_id) from the aggregation and the suppression plan; records
    the link check in ``p.audits``."""
    goal = pl.when(pl.col("goal") == "all").then(pl.lit("records")).otherwise(pl.lit("goal_") + pl.col("goal") + pl.lit("_n"))
    engine = p.cells
    rec = _long(engine.filter(pl.col("table").str.starts_with("records_")), goal, pl.lit("all"), a.geo_levels, k)
    codes = _outcome_codes(sorted(a.groups["outcome"]))
    out_cells = engine.filter(pl.col("table").str.starts_with("outcomes_")).join(codes, on="outcome", how="inner")
    out = _long(out_cells, pl.col("measure"), pl.col("instrument"), a.geo_levels, k)
    p.audits["link"] = link_check(rec, out)
    rec, out = rec.drop("value_true"), out.drop("value_true")
    cells = pl.concat([rec, _clients(rec, a, k), out, _statistics(out, a, k)])
    return cells.sort("table_name", *DIM_COLUMNS, "measure")


def _narrowest(audits: dict) -> dict | None:
    """The narrowest interval any audit reports: exact LP width where it ran, else the proven lower bound."""
    found = []
    for name, rep in audits.items():
        lp, proof = rep.get("lp") or {}, rep.get("proof") or {}
        if lp.get("ran") and lp.get("narrowest_width") is not None:
            found.append((lp["narrowest_width"], name, "lp", lp.get("narrowest_cell")))
        elif proof.get("narrowest_width_lower_bound") is not None:
            found.append((proof["narrowest_width_lower_bound"], name, "lower_bound", proof.get("narrowest_cell")))
    if not found:
        return None
    width, name, kind, cell = min(found, key=lambda f: (f[0], f[1]))
    return {"width": width, "kind": kind, "call": name, "cell": cell}


def audit_summary(cells: pl.DataFrame, p: Plan, k: int, created_at: datetime) -> dict:
    counts = dict(cells.group_by("status").len().rows())
    by_table = dict(cells.group_by("table_name").len().sort("table_name").rows())
    return {"created_at": created_at.isoformat(timespec="seconds"), "threshold": k, "cells": cells.height,
            **{s: int(counts.get(s, 0)) for s in ("shown", "primary", "secondary", "na")},
            "disclosed": sum(int(r.get("disclosed", 0)) for r in p.audits.values()),
            "narrowest_interval": _narrowest({n: r for n, r in p.audits.items() if n != "link"}),
            "tables": by_table, "seconds": p.seconds, "checks": p.audits}


def _check_out(out: Path) -> None:
    """Before any work: ``out`` must be a folder, or one that can be made, in a folder this user can write in."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder for the published tables (it is created if missing)")
    if (folder := unwritable_folder(out)) is not None:
        raise UsageError(f"cannot write the publication to {out}: {folder} is not a writable folder; "
                         "choose another --out")


def _write(con: duckdb.DuckDBPyConnection, cells: pl.DataFrame, summary: dict, k: int, created_at: datetime,
           out: Path | None, fmt: str) -> tuple[int, pl.DataFrame, list[Path]]:
    try:
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".isu-publish-", dir=out.parent)) if out is not None else None
    except OSError as e:  # checked before the work began; changed since
        raise UsageError(f"cannot write the publication to {out}: {e.strerror or e}; choose another --out") from None
    moved: list[Path] = []
    try:
        with transaction(con):
            pid = con.execute("SELECT nextval('publication_seq')").fetchall()[0][0]
            summary["publication_id"] = pid
            con.execute("INSERT INTO publications (publication_id, created_at, threshold, toolkit_version, audit) "
                        "VALUES (?, ?, ?, ?, ?)", [pid, created_at, k, __version__, json.dumps(summary)])
            rows = cells.select(pl.lit(pid, dtype=pl.Int32).alias("publication_id"), *PUB_COLUMNS[1:])
            con.register("_isu_pub_src", rows)
            con.execute(f"INSERT INTO pub_cells ({', '.join(PUB_COLUMNS)}) SELECT {', '.join(PUB_COLUMNS)} FROM _isu_pub_src")
            con.unregister("_isu_pub_src")
            if out is not None:
                written = write_files(tmp, rows, summary, fmt)
                out.mkdir(parents=True, exist_ok=True)
                for f in written:
                    os.replace(f, out / f.name)
                    moved.append(out / f.name)
    except BaseException:
        for f in moved:
            f.unlink(missing_ok=True)
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return pid, rows, moved


def publish(con_or_path: duckdb.DuckDBPyConnection | str | Path, *, k: int = 5, out: str | Path | None = None,
            fmt: Literal["csv", "xlsx", "parquet"] = "csv", spec: AggregationSpec | None = None,
            lp_max_cells: int = 2000, municipal_insiders: bool = False, now: datetime | None = None) -> PublicationResult:
    """Aggregate the store, suppress, audit and (only if the audit passes) write the publication."""
    if k < 2:
        raise UsageError(f"threshold {k} is too low: counts 1..k−1 are hidden, so k must be at least 2 (default 5)")
    if fmt not in ("csv", "xlsx", "parquet"):
        raise UsageError(f"unknown format {fmt!r}; use csv, xlsx or parquet")
    if out is not None:
        _check_out(Path(out))
    own = not isinstance(con_or_path, duckdb.DuckDBPyConnection)
    con = connect(con_or_path) if own else con_or_path
    try:
        con.execute("SELECT 1").fetchall()
        t0 = time.perf_counter()
        a = aggregate(con, spec)
        aggregate_seconds = round(time.perf_counter() - t0, 3)
        if a.records_inner.is_empty():
            raise IsuError("nothing to publish: the workspace holds no ended follow-up records; import data first")
        p = plan(a, k, lp_max_cells=lp_max_cells, municipal_insiders=municipal_insiders)
        p.seconds = {"aggregate": aggregate_seconds, **p.seconds}
        cells = assemble(a, p, k)
        disclosed = {name: rep.get("disclosed", 0) for name, rep in p.audits.items()}
        if any(disclosed.values()):
            raise DisclosureError(f"audit found {sum(disclosed.values())} hidden cell(s) recomputable from published "
                                  f"cells ({disclosed}); nothing was published. Report this as a bug")
        created_at = (now or datetime.now()).replace(microsecond=0)
        summary = audit_summary(cells, p, k, created_at)
        pid, rows, files = _write(con, cells, summary, k, created_at, Path(out) if out is not None else None, fmt)
        return PublicationResult(pid, k, rows, summary, files)
    finally:
        if own:
            con.close()
