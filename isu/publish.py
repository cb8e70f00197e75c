"""Publication: aggregate → primary + secondary suppression → audit → ``pub_cells`` and files, in one run.

Why it is shaped like this:

* Linked tables in one engine call. Every table about records (by category, need area, sex × age)
  goes to one suppression call with a ``goal`` dimension (``records`` = all goal levels); every
  outcome table goes to a second call with ``instrument`` and a ``result`` dimension whose leaves are
  ``no_t1``, ``improved``, ``unchanged``, ``deteriorated`` (``t0_n`` and ``paired_n`` are its margins).
  So every linear relation between published counts of one kind is inside one call.
* Across the two calls, ``records`` equals Σ ``t0_n`` over instruments wherever each record has one
  baseline instrument (with one instrument: the same number twice). Wherever that sum holds in the
  data and exactly one member of it is hidden, its smallest shown member is forced hidden too and the
  call concerned reruns with every cell it hid before forced: the hidden set only grows, so the loop
  ends (a few rounds in practice). Hiding every member instead cascades into hidden national totals.
  ``link_check`` then verifies, as part of the audit, that no such sum has exactly one hidden member. Forced cells are published as ``secondary``.
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
    RESULT_MEASURES,
    Aggregates,
    AggregationSpec,
    aggregate,
)
from isu.errors import DisclosureError, IsuError
from isu.query import DIM_COLUMNS, write_files
from isu.stats import STATISTICS, finish
from isu.store import connect, transaction
from isu.suppress import Dimension, audit, suppress

__all__ = ["Plan", "PublicationResult", "assemble", "audit_summary", "link_check", "plan", "publish"]

PUB_COLUMNS = ("publication_id", "table_name", *DIM_COLUMNS, "measure", "value", "status")
HIDDEN = ("primary", "secondary")
MAX_LINK_ROUNDS = 20


@dataclass
class PublicationResult:
    publication_id: int
    threshold: int
    cells: pl.DataFrame                       # this publication's pub_cells rows
    audit: dict
    files: list[Path] = field(default_factory=list)


@dataclass
class Plan:
    """Suppression outcome of both engine calls plus the audit reports (before anything is written)."""

    records: pl.DataFrame   # engine cells of the records tables
    outcomes: pl.DataFrame  # engine cells of the outcome tables
    audits: dict            # engine audit per call, plus "link" (records = Σ t0_n check)
    rounds: int
    seconds: dict


def _calls(a: Aggregates):
    """Engine inputs per call: inner cells over the dimensions some table breaks down, and the tables."""
    bd = a.spec.breakdowns
    keys = ["period", "geo_code", *(d for d in CROSS_DIMS if any(d in b.dims for b in bd))]

    def call(inner: pl.DataFrame, extra: list[str], prefix: str):
        names = [*keys, *extra]
        inner = inner.group_by(names).agg(pl.col("n").sum()).sort(names)
        tables = [(f"{prefix}_{b.name}", ["period", "geo_code", *b.dims, *extra]) for b in bd]
        return inner, [Dimension(n, a.groups[n]) for n in names], tables

    return {"records": call(a.records_inner, ["goal"], "records"),
            "outcomes": call(a.outcomes_inner, ["instrument", "result"], "outcomes")}


def _keep(dims: list[Dimension], name: str) -> pl.DataFrame:
    """Cells to keep published where any certificate can avoid them: every period × geography total
    (records of all goal levels; per instrument, records with a baseline and paired records)."""
    by = {d.name: d for d in dims}
    frame = _ranked(by["period"]).join(_ranked(by["geo_code"]), how="cross")
    # the more aggregated, the later given up: nation and all periods last (priority 4^rank, 1..256)
    frame = frame.select("period", "geo_code", priority=4.0 ** (pl.col("period_rank") + pl.col("geo_code_rank")))
    if name == "outcomes":
        frame = frame.join(pl.DataFrame({"instrument": sorted(by["instrument"].groups)}), how="cross").join(
            pl.DataFrame({"result": ["all", "paired"]}), how="cross")
    return frame


def _ranked(d: Dimension) -> pl.DataFrame:
    """Codes of a dimension with their level: 0 a leaf, 2 the total, 1 a group between."""
    n = max(len(g) for g in d.groups.values())
    rank = {c: 0 if g == {c} else 2 if len(g) == n else 1 for c, g in d.groups.items()}
    return pl.DataFrame({d.name: sorted(rank), f"{d.name}_rank": [rank[c] for c in sorted(rank)]})


def _links(rec: pl.DataFrame, out: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Record cells whose count equals Σ t0_n over instruments (r), their t0_n cells (o), per link counts."""
    keys = [c for c in CELL_KEYS if c in rec.columns]
    hid = pl.col("status").is_in(HIDDEN)
    r = rec.filter(pl.col("goal") == "all").select(*keys, r_value="value", r_hidden=hid).unique(keys)
    o = out.filter(pl.col("result") == "all").select(*keys, "instrument", o_value="value", o_hidden=hid).unique(
        [*keys, "instrument"])
    og = o.group_by(keys).agg(t0_sum=pl.col("o_value").sum(),
                              o_hidden_n=(pl.col("o_hidden") & (pl.col("o_value") > 0)).sum())
    links = r.join(og, on=keys).filter((pl.col("r_value") == pl.col("t0_sum")) & (pl.col("r_value") > 0))
    links = links.with_columns(hidden_n=pl.col("o_hidden_n") + pl.col("r_hidden").cast(pl.UInt32))
    return r, o, links


def _link_forcing(rec: pl.DataFrame, out: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cells to force hidden: in every link with exactly one hidden member, its smallest shown non-zero
    member (ties: a t0_n cell before the records cell), so that no link has a lone hidden member."""
    keys = [c for c in CELL_KEYS if c in rec.columns]
    r, o, links = _links(rec, out)
    lone = links.filter(pl.col("hidden_n") == 1).select(keys)
    members = pl.concat([
        r.join(lone, on=keys).filter(~pl.col("r_hidden")).select(*keys, instrument=pl.lit(None, pl.String),
                                                                   value="r_value", rank=pl.lit(1)),
        o.join(lone, on=keys).filter(~pl.col("o_hidden") & (pl.col("o_value") > 0)).select(
            *keys, "instrument", value="o_value", rank=pl.lit(0))])
    pick = members.sort([*keys, "value", "rank", "instrument"], nulls_last=True).unique(keys, keep="first")
    force_r = pick.filter(pl.col("instrument").is_null()).select(*keys, goal=pl.lit("all"))
    force_o = pick.filter(pl.col("instrument").is_not_null()).select(*keys, "instrument", result=pl.lit("all"))
    return force_r, force_o


def link_check(rec: pl.DataFrame, out: pl.DataFrame) -> dict:
    """Independent check of the cross-call relation: no link may have exactly one hidden member."""
    _, _, links = _links(rec, out)
    return {"relation": "records = sum of t0_n over instruments", "links": links.height,
            "with_hidden": int((links["hidden_n"] > 0).sum()), "disclosed": int((links["hidden_n"] == 1).sum())}


def plan(a: Aggregates, k: int, *, lp_max_cells: int = 2000, municipal_insiders: bool = False) -> Plan:
    """Run both engine calls until the cross-call link is consistent, then audit both.

    ``municipal_insiders`` tells the engine that each municipality knows its own cells (regional
    publications), so no hidden cell of another may be recomputable with that knowledge.
    """
    calls = _calls(a)
    contributor = "geo_code" if municipal_insiders else None
    forced: dict[str, pl.DataFrame | None] = {"records": None, "outcomes": None}
    keep = {name: _keep(dims, name) for name, (_, dims, _) in calls.items()}
    res, dirty, t0 = {}, set(calls), time.perf_counter()
    for rounds in range(1, MAX_LINK_ROUNDS + 1):
        for name in sorted(dirty):
            inner, dims, tables = calls[name]
            res[name] = suppress(inner, dims, tables, value="n", k=k, contributor=contributor, forced=forced[name],
                                 keep=keep[name])
        extra = dict(zip(("records", "outcomes"), _link_forcing(res["records"].cells, res["outcomes"].cells)))
        dirty = {name for name, f in extra.items() if not f.is_empty()}
        if not dirty:
            break
        for name in dirty:  # keep every hidden cell hidden and add the new ones: the hidden set only grows
            dim_cols = [d.name for d in calls[name][1]]
            hidden = res[name].cells.filter(pl.col("status").is_in(HIDDEN)).select(dim_cols)
            forced[name] = pl.concat([hidden, extra[name].select(dim_cols)]).unique().sort(dim_cols)
    else:
        raise RuntimeError("records/t0_n link did not settle; this is a bug in isu.publish")
    t1 = time.perf_counter()
    audits = {name: audit(res[name], lp_max_cells=lp_max_cells) for name in calls}
    audits["link"] = link_check(res["records"].cells, res["outcomes"].cells)
    seconds = {"suppress": round(t1 - t0, 3), "audit": round(time.perf_counter() - t1, 3)}
    return Plan(res["records"].cells, res["outcomes"].cells, audits, rounds, seconds)


def _long(cells: pl.DataFrame, measure: pl.Expr, instrument: pl.Expr, levels: dict[str, str], k: int) -> pl.DataFrame:
    """Engine cells → pub_cells rows. Status is re-derived: 1..k−1 is primary, any other hidden cell
    (the engine's secondary ones and the cells forced by the records/t0_n link) is secondary."""
    hidden = pl.col("status").is_in(HIDDEN)
    status = (pl.when(pl.col("value").is_between(1, k - 1)).then(pl.lit("primary"))
              .when(hidden).then(pl.lit("secondary")).otherwise(pl.lit("shown")))
    return cells.select(
        table_name="table", period="period", geo_level=pl.col("geo_code").replace_strict(levels, return_dtype=pl.String),
        geo_code="geo_code", **{d: pl.col(d) if d in cells.columns else pl.lit("all") for d in CROSS_DIMS},
        instrument=instrument, measure=measure,
        value=pl.when(hidden).then(None).otherwise(pl.col("value")).cast(pl.Float64), status=status)


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
    counts = out_long.pivot(on="measure", index=keys, values=["value", "status"])
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


def assemble(a: Aggregates, p: Plan, k: int) -> pl.DataFrame:
    """pub_cells rows (without publication_id) from the aggregation and the suppression plan."""
    goal = pl.when(pl.col("goal") == "all").then(pl.lit("records")).otherwise(pl.lit("goal_") + pl.col("goal") + pl.lit("_n"))
    rec = _long(p.records, goal, pl.lit("all"), a.geo_levels, k)
    out = _long(p.outcomes, pl.col("result").replace_strict(RESULT_MEASURES, return_dtype=pl.String), pl.col("instrument"),
                a.geo_levels, k)
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
            "tables": by_table, "link_rounds": p.rounds, "seconds": p.seconds, "checks": p.audits}


def _write(con: duckdb.DuckDBPyConnection, cells: pl.DataFrame, summary: dict, k: int, created_at: datetime,
           out: Path | None, fmt: str) -> tuple[int, pl.DataFrame, list[Path]]:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".isu-publish-", dir=out.parent)) if out is not None else None
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
        raise IsuError(f"threshold {k} is too low: counts 1..k−1 are hidden, so k must be at least 2 (default 5)")
    if fmt not in ("csv", "xlsx", "parquet"):
        raise IsuError(f"unknown format {fmt!r}; use csv, xlsx or parquet")
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
        disclosed = {name: rep.get("disclosed", 0) for name, rep in p.audits.items()}
        if any(disclosed.values()):
            raise DisclosureError(f"audit found {sum(disclosed.values())} hidden cell(s) recomputable from published "
                                  f"cells ({disclosed}); nothing was published. Report this as a bug")
        cells = assemble(a, p, k)
        created_at = (now or datetime.now()).replace(microsecond=0)
        summary = audit_summary(cells, p, k, created_at)
        pid, rows, files = _write(con, cells, summary, k, created_at, Path(out) if out is not None else None, fmt)
        return PublicationResult(pid, k, rows, summary, files)
    finally:
        if own:
            con.close()
