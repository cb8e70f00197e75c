"""The page's data: published cells reshaped into a compact, JSON-ready view model.

Python does everything that needs judgement or statistics (which areas, which periods, labels,
funnel control limits); the page's script only picks the numbers for the chosen filters and hands
them to Plotly. Values are rounded for display; hidden and undefined cells are ``None``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import polars as pl
from isu.schemas import code_list

from .data import Publication
from .funnel import limit_table
from .labels import Labels
from .scope import Scope

__all__ = ["FUNNEL_MEASURES", "OUTCOME_MEASURES", "TREND_MEASURES", "build_model", "general_measures", "goal_levels"]

#: Measures about records whatever the instrument (cells with instrument ``all``).
GENERAL_MEASURES_BASE = ["records", "clients"]
#: Measures about one instrument, those the trend needs first (comparison areas carry only these).
#: The confidence intervals of the means are used when published.
TREND_MEASURES = ["paired_n", "share_improved", "share_improved_ci_low", "share_improved_ci_high"]
OUTCOME_MEASURES = TREND_MEASURES + [
    "t0_n", "attrition_n", "attrition_rate", "mean_t0", "mean_t1", "mean_change", "change_ci_low", "change_ci_high",
    "improved_n", "unchanged_n", "deteriorated_n", "share_unchanged", "share_deteriorated",
    "completers_mean_t0", "dropouts_mean_t0",
    "mean_t0_ci_low", "mean_t0_ci_high", "mean_t1_ci_low", "mean_t1_ci_high",
]  # fmt: skip
FUNNEL_MEASURES = ["paired_n", "share_improved"]


def goal_levels() -> list[str]:
    """Goal-attainment codes, best first; ``not_assessed`` (no rank) last."""
    rows = code_list("goal_attainment").rows
    ranked = sorted((r for r in rows if r.get("rank")), key=lambda r: -int(r["rank"]))
    return [r["code"] for r in ranked] + [r["code"] for r in rows if not r.get("rank")]


def general_measures() -> list[str]:
    """Measures of cells with instrument ``all``: record counts and goal-attainment counts."""
    return GENERAL_MEASURES_BASE + [f"goal_{code}_n" for code in goal_levels()]


def _round(measure: str, value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if measure.endswith("_n") or measure in ("records", "clients"):
        return round(value)
    value = round(float(value), 3)
    return int(value) if value.is_integer() else value


def _trim(values: list[Any]) -> list[Any]:
    while values and values[-1] is None:
        values.pop()
    return values


def _period_kind(code: str) -> int:
    return 0 if re.fullmatch(r"\d{4}", code) else 1 if "H" in code else 2


def _trend_periods(periods: list[str]) -> list[str]:
    """The finest kind of period (year, half, quarter) with the most periods; ties go to the coarser."""
    kinds: dict[int, list[str]] = {}
    for p in periods:
        if p != "all":
            kinds.setdefault(_period_kind(p), []).append(p)
    if not kinds:
        return []
    best = max(sorted(kinds), key=lambda k: len(kinds[k]))
    return sorted(kinds[best])


def _ordered(codes: set[str], list_name: str, labels: Labels) -> list[list[str]]:
    known = [c for c in code_list(list_name).codes if c in codes]
    return [[c, labels.code(list_name, c)] for c in known + sorted(codes - set(known) - {"all"})]


def _instruments(codes: set[str], wide: pl.DataFrame, labels: Labels) -> list[dict[str, Any]]:
    table = code_list("instruments")
    out = []
    for code in sorted(codes - {"all"}):
        row = table.row(code) if code in table else {}
        better = {"true": "higher", "false": "lower"}.get(row.get("higher_is_better", ""), "")
        paired = wide.filter(pl.col("instrument") == code)["paired_n"].drop_nulls() if "paired_n" in wide else []
        out.append({
            "code": code,
            "label": labels.code("instruments", code),
            "better": better,
            "min": float(row["min"]) if row.get("min") else None,
            "max": float(row["max"]) if row.get("max") else None,
            "weight": float(sum(paired)) if len(paired) else 0.0,
        })  # fmt: skip
    return sorted(out, key=lambda i: -i["weight"])


def _cells(wide: pl.DataFrame, geo_index: dict[str, int], measures: dict[str, list[str]]) -> dict[str, list]:
    out: dict[str, list] = {}
    for row in wide.iter_rows(named=True):
        geo = geo_index.get(f"{row['geo_level']}:{row['geo_code']}")
        if geo is None:
            continue
        wanted = measures["all" if row["instrument"] == "all" else "instrument"]
        values = _trim([_round(m, row.get(m)) for m in wanted])
        key = f"{geo}|{row['period']}|{row['category']}|{row['need_area']}|{row['instrument']}"
        out[key] = values
    return out


def _funnels(members: pl.DataFrame, reference: pl.DataFrame, member_index: dict[str, int]) -> dict[str, Any]:
    """Per filter combination: the reference share and the members' points; plus the limit table."""
    keys = ["period", "category", "need_area", "instrument"]
    if members.is_empty() or reference.is_empty() or "share_improved" not in members.columns:
        return {"combos": {}, "limits": None}
    points = members.drop_nulls(["paired_n", "share_improved"]).filter(pl.col("paired_n") > 0)
    ref = reference.drop_nulls(["share_improved"]).select(keys + [pl.col("share_improved").alias("p0")])
    joined = points.join(ref, on=keys, how="inner").sort([*keys, "geo_code"])
    if joined.is_empty():
        return {"combos": {}, "limits": None}
    combos: dict[str, Any] = {}
    for row in joined.iter_rows(named=True):
        key = "|".join(row[k] for k in keys)
        entry = combos.setdefault(key, {"p0": _round("share", row["p0"]), "points": []})
        idx = member_index[f"{row['geo_level']}:{row['geo_code']}"]
        entry["points"].append([idx, int(row["paired_n"]), _round("share_improved", row["share_improved"])])
    return {"combos": combos, "limits": limit_table(float(joined["paired_n"].max()))}


def build_model(
    publication: Publication, scope: Scope, wide: pl.DataFrame, funnel_cells: pl.DataFrame, labels: Labels
) -> dict[str, Any]:
    """The JSON the page draws from. ``wide`` holds the scope's areas, ``funnel_cells`` its members."""
    for m in [*OUTCOME_MEASURES, *general_measures()]:
        if m not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(m))
    geo_index = {g.key: i for i, g in enumerate(scope.geos)}
    member_index = {g.key: i for i, g in enumerate(scope.members)}
    focus = wide.filter((pl.col("geo_level") == scope.focus.level) & (pl.col("geo_code") == scope.focus.code))
    periods = sorted(set(wide["period"].to_list()), key=lambda p: (p == "all", p))
    measures = {"all": general_measures(), "instrument": OUTCOME_MEASURES}
    instruments = _instruments(set(focus["instrument"].to_list()), focus, labels)
    is_ref = (pl.col("geo_level") == scope.reference.level) & (pl.col("geo_code") == scope.reference.code)
    reference = funnel_cells.filter(is_ref) if not funnel_cells.is_empty() else funnel_cells
    members = funnel_cells.filter(pl.col("geo_level") == "municipality") if not funnel_cells.is_empty() else funnel_cells
    return {
        "lang": labels.lang,
        "locale": {"sv": "sv-SE", "en": "en-GB"}[labels.lang],
        "text": labels.texts(),
        "meta": {
            "publication_id": publication.publication_id,
            "created_at": publication.created_at.strftime("%Y-%m-%d %H:%M"),
            "threshold": publication.threshold,
            "toolkit_version": publication.toolkit_version,
        },
        "geos": [{"key": g.key, "level": g.level, "label": g.label} for g in scope.geos],
        "members": [{"key": g.key, "label": g.label} for g in scope.members],
        "focus": 0,
        "reference": scope.reference.label,
        "dims": {
            "periods": [[p, labels.period(p)] for p in periods],
            "trend_periods": [[p, labels.period(p)] for p in _trend_periods(periods)],
            "categories": _ordered(set(focus["category"].to_list()), "intervention_categories", labels),
            "needs": _ordered(set(focus["need_area"].to_list()), "need_areas", labels),
            "instruments": instruments,
            "goal_levels": [[c, labels.code("goal_attainment", c)] for c in goal_levels()],
        },
        "default": {"period": "all" if "all" in periods else (periods[-1] if periods else "all")},
        "measures": measures,
        "cells": _cells(wide, geo_index, measures),
        "funnel": _funnels(members, reference, member_index),
    }
