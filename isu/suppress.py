"""Small-number suppression of linked frequency tables: primary rule, secondary suppression, certificates.

API (generic; knows nothing of the store)::

    suppress(inner, dims, tables, *, value="n", k=5, contributor=None, forced=None,
             weights="sqrt", singletons=True, box_width=12, polish=1000, onesided=False,
             keep=None, unpublished=None) -> SuppressionResult
    audit(result, *, lp_max_cells=2000, rank_max_unknowns=1500, insider_rank_max=30) -> dict  # isu.audit

* ``inner``: one row per leaf cell (a leaf code in every ``Dimension`` column) with a non-negative
  integer count ``value``; missing combinations are zeros. Optional ``contributor`` column: who
  supplied the leaf (e.g. the municipality); it knows all of its own cells.
* ``dims``: :class:`Dimension` (code → leaf set; groups may overlap, e.g. pools across counties).
* ``tables``: ``[(name, [broken-down dims])]``; a table publishes every combination of every code of
  its broken-down dims, the other dims at their total. Cells with equal coordinates are one cell.
* ``forced``: cells (dim columns; a missing column means the total) to hide as primary.
* ``keep``: cells (same form) the caller wants published, e.g. every period × geography total. They
  cost ``KEEP`` (10⁹) times an optional ``priority`` column (≥ 1: which kept cell to give up last),
  so a certificate touches them only when no other is found; when every box
  touches one (or none exists), an LP certificate (:mod:`isu.suppress_lp`, tau-Argus' single-cell
  model, within an iteration budget) looks for a general cycle of positive inner cells that avoids them.
  Without it, sparse linked tables lose their totals: one single-cell box hides every margin up to
  the grand total, which then costs nothing to use again. A kept cell that is small is still primary.
* ``unpublished``: {dimension: codes} that no table publishes: a cell with such a code is neither
  shown nor protected (free for certificates to change, left out of ``cells`` and so of the audit).
  Such codes exist only so that groups can sum them, e.g. the leaf of a record measured on two
  instruments, which each instrument's group contains.
* ``weights``: cost of hiding a cell, to minimise in total: ``"sqrt"`` (1 + √count, default: few
  and small suppressions), ``"balanced"`` (1 + √count + (count / 20k)²: large margins and totals
  become very costly, so boxes that avoid them win; a hidden zero costs 3k, as each one can demand
  further certificates), ``"value"`` (1 + count), ``"count"`` (1: fewest cells) or a function of
  the count array. ``box_width``: candidates per dimension in the box search (more: better, slower).
* ``polish``: how many secondary cells (costliest first) to try to swap for cheaper ones afterwards.
* ``onesided`` (only without ``contributor``): certificates may raise zero inner cells that no
  published cell shows to be zero, so zero cells can be secondary suppressions. In sparse data this
  is what lets totals stay published: a box then needs positive cells only at the corners it lowers.

Rules: a published count 1..k−1 is *primary* (0 is never primary; without ``onesided`` it is never
hidden either, which keeps every inner cell under a hidden cell positive). *Secondary* cells are added until every hidden cell h
has a certificate: an integer change z of positive inner cells that keeps every published cell and
changes h. Then h cannot be recomputed by any linear combination of published cells, and (as x ± εz,
or for a one-sided z that raises zero cells x + εz, stays non-negative) its LP interval has positive
width. When the cheapest box would change the grand total (Σz ≠ 0), a leaf pair e_a − e_b (b just
outside h, a its nearest leaf under h) is priced too: it leaves every margin holding both alone. Insiders: a contributor knows its own leaves,
and the one person of a count-1 leaf knows that leaf (``singletons``); every hidden cell that is not
wholly an insider's own needs, for each insider, a certificate that leaves that insider's leaves
alone — so two single-contributor cells in one margin never reveal each other. Certificates are
found by :mod:`isu.suppress_box` (cheapest "box" by cost; inner loop compiled by numba in
:mod:`isu.suppress_kernel`, numpy fallback) or by :mod:`isu.suppress_lp`, kept by :mod:`isu.suppress_plan`, and returned for the
independent audit (:mod:`isu.audit`).

What is and is not guaranteed: every hidden cell has a verified certificate, so it is not exactly
recomputable by any linear combination of published cells, nor by LP with non-negativity, nor by any
single insider. The pattern is greedy, not minimal: product boxes need positive corners, so in sparse
data margins (up to national totals) get hidden where a general null vector would be cheaper;
integrality of counts is not used by the attacker model.

Result: ``cells`` has one row per table and cell: ``table``, every dim column (codes, total for
margins), ``value`` (the true count; the caller blanks hidden ones) and ``status`` in
``shown|primary|secondary``; plus counts, seconds and the certificates.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from isu.errors import IsuError
from isu.suppress_box import BIG, KEEP, BoxSearch
from isu.suppress_model import Dimension, Model, build_model
from isu.suppress_plan import Insiders, Plan

__all__ = ["STATUS", "Dimension", "SuppressionResult", "audit", "suppress"]

STATUS = ("shown", "primary", "secondary")
#: Engine status of a cell with an unpublished code (never in the result's cells).
UNPUBLISHED = 3


@dataclass
class SuppressionResult:
    cells: pl.DataFrame
    certificates: pl.DataFrame          # cert, one column per dim (leaf codes), z
    k: int
    n_cells: int                        # distinct cells over all tables
    primary: int
    secondary: int
    seconds: float
    inner: pl.DataFrame = field(repr=False)
    dims: list[Dimension] = field(repr=False)
    tables: list[tuple[str, list[str]]] = field(repr=False)
    value: str = "n"
    contributor: str | None = None
    singletons: bool = True
    forced: pl.DataFrame | None = field(default=None, repr=False)

    def summary(self) -> dict:
        return {"k": self.k, "cells": self.n_cells, "rows": self.cells.height, "primary": self.primary,
                "secondary": self.secondary, "certificates": int(self.certificates["cert"].n_unique()),
                "seconds": round(self.seconds, 3)}


def audit(result: SuppressionResult, **options) -> dict:
    """Independent audit of a result (see :func:`isu.audit.audit`)."""
    from isu.audit import audit as _audit

    return _audit(result, **options)


def _cell_ids(model: Model, frame: pl.DataFrame | None) -> np.ndarray:
    """Canonical ids of the published cells listed in ``frame`` (unpublished ones are ignored)."""
    pos, found = _positions(model, frame)
    return np.unique(pos[found])


def _positions(model: Model, frame: pl.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``frame``: its cell id, and whether that cell is published at all."""
    if frame is None or frame.is_empty():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    key = np.zeros(frame.height, dtype=np.int64)
    stride = 1
    codes = model.cell_codes
    all_keys = np.zeros(model.n_cells, dtype=np.int64)
    for j in reversed(range(len(model.dims))):
        d = model.dims[j]
        if d.name in frame.columns:
            col = frame[d.name].cast(pl.String)
            bad = col.filter(~col.is_in(d.codes)).unique().to_list()
            if bad:
                raise IsuError(f"forced cells have {d.name}={bad[:5]}, which are not codes of that dimension")
            idx = col.replace_strict(d.index, return_dtype=pl.Int64).to_numpy()
        elif d.total >= 0:
            idx = np.full(frame.height, d.total, dtype=np.int64)
        else:
            raise IsuError(f"forced cells lack column {d.name!r}, which has no total code")
        key += idx * stride
        all_keys += codes[:, j] * stride
        stride *= d.n
    pos = np.minimum(np.searchsorted(all_keys, key), model.n_cells - 1)
    return pos, all_keys[pos] == key


def _keep_costs(model: Model, keep: pl.DataFrame | None, primaries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells to keep (not primary) and their cost: KEEP times the row's ``priority`` (default 1)."""
    pos, found = _positions(model, keep)
    prio = keep["priority"].cast(pl.Float64).to_numpy() if keep is not None and "priority" in keep.columns \
        else np.ones(len(pos))
    cost = np.zeros(model.n_cells)
    np.maximum.at(cost, pos[found], KEEP * np.maximum(prio[found], 1.0))
    kept = np.setdiff1d(np.flatnonzero(cost), primaries)
    return kept, cost[kept]


def _costs(values: np.ndarray, weights: str | Callable, k: int, zeros: bool = False) -> np.ndarray:
    if callable(weights):
        cost = np.asarray(weights(values), dtype=np.float64)
    elif weights == "balanced":
        cost = np.where(values > 0, 1.0 + np.sqrt(values) + (values / (20.0 * k)) ** 2, 3.0 * k)
    elif weights == "sqrt":
        cost = 1.0 + np.sqrt(values)
    elif weights == "value":
        cost = 1.0 + values
    elif weights == "count":
        cost = np.ones(len(values))
    else:
        raise IsuError(f"weights must be 'balanced', 'sqrt', 'value', 'count' or a function, not {weights!r}")
    return cost if zeros else np.where(values > 0, cost, BIG)


def suppress(inner: pl.DataFrame, dims: list[Dimension], tables: list[tuple[str, list[str]]], *, value: str = "n",
             k: int = 5, contributor: str | None = None, forced: pl.DataFrame | None = None,
             weights: str | Callable = "sqrt", singletons: bool = True, box_width: int = 12,
             polish: int = 1000, onesided: bool = False, keep: pl.DataFrame | None = None,
             unpublished: dict[str, list[str]] | None = None) -> SuppressionResult:
    """Primary + secondary suppression of all ``tables`` in one consistent pattern (see module doc)."""
    t0 = time.perf_counter()
    if k < 1:
        raise IsuError(f"threshold k must be at least 1, not {k}")
    model = build_model(inner, dims, tables, value, contributor)
    onesided = bool(onesided) and contributor is None
    vals = model.cell_value
    status = np.zeros(model.n_cells, dtype=np.int8)
    status[(vals >= 1) & (vals < k)] = 1
    status[_cell_ids(model, forced)] = 1
    hidden_codes = _unpublished(model, unpublished)
    status[hidden_codes] = UNPUBLISHED
    primaries = np.flatnonzero(status == 1)
    base = _costs(vals.astype(np.float64), weights, k, onesided)
    kept, keep_cost = _keep_costs(model, keep, primaries)
    base[kept] = np.maximum(base[kept], keep_cost)
    base[hidden_codes] = 0.0
    cost = base.copy()
    cost[primaries] = 0.0
    search = BoxSearch(model, cost, len(model.contributors), box_width, onesided)
    plan = Plan(model, status, base, search, Insiders(model, singletons))
    level = (model.cell_codes >= np.array([d.n_leaves for d in model.dims])).sum(1)
    # most aggregated first (fewest ways to protect), then larger values; ids make the order total
    plan.protect(primaries[np.lexsort((primaries, -vals[primaries], -level[primaries]))])
    plan.polish(polish)
    certs = plan.certificates()
    return SuppressionResult(
        cells=_cells_frame(model, status), certificates=_cert_frame(model, certs), k=k,
        n_cells=int((status != UNPUBLISHED).sum()),
        primary=int((status == 1).sum()), secondary=int((status == 2).sum()), seconds=time.perf_counter() - t0,
        inner=inner, dims=list(dims), tables=[(n, list(t)) for n, t in tables], value=value, contributor=contributor,
        singletons=singletons, forced=forced)


def _unpublished(model: Model, codes: dict[str, list[str]] | None) -> np.ndarray:
    """Canonical ids of the cells with a code that no table publishes."""
    mask = np.zeros(model.n_cells, dtype=bool)
    pos = {d.name: j for j, d in enumerate(model.dims)}
    for name, values in (codes or {}).items():
        if name not in pos:
            raise IsuError(f"unpublished codes name an unknown dimension {name!r}")
        j = pos[name]
        d = model.dims[j]
        unknown = sorted(set(values) - set(d.codes))
        if unknown:
            raise IsuError(f"unpublished codes {unknown[:5]} are not codes of dimension {name!r}")
        if d.total >= 0 and d.codes[d.total] in set(values):
            raise IsuError(f"the total of dimension {name!r} cannot be unpublished")
        mask |= np.isin(model.cell_codes[:, j], [d.index[c] for c in values])
    return np.flatnonzero(mask)


def _cells_frame(model: Model, status: np.ndarray) -> pl.DataFrame:
    frames = []
    labels = pl.Series(STATUS)
    for t in model.tables:
        ids = t.canon.ravel()
        ids = ids[status[ids] != UNPUBLISHED]
        cols = {"table": pl.Series([t.name]).gather(np.zeros(len(ids), dtype=np.int64))}
        for j, d in enumerate(model.dims):
            cols[d.name] = pl.Series(d.codes).gather(model.cell_codes[ids, j])
        cols["value"] = pl.Series(model.cell_value[ids])
        cols["status"] = labels.gather(status[ids].astype(np.int64))
        frames.append(pl.DataFrame(cols))
    return pl.concat(frames)


def _cert_frame(model: Model, certs: list[tuple[np.ndarray, np.ndarray]]) -> pl.DataFrame:
    sizes = [len(leaves) for leaves, _ in certs]
    leaves = np.concatenate([c[0] for c in certs]) if certs else np.zeros(0, dtype=np.int64)
    z = np.concatenate([c[1] for c in certs]).astype(np.int64) if certs else np.zeros(0, dtype=np.int64)
    cols = {"cert": pl.Series(np.repeat(np.arange(len(certs)), sizes), dtype=pl.Int64)}
    for j, d in enumerate(model.dims):
        cols[d.name] = pl.Series(d.codes[: d.n_leaves], dtype=pl.String).gather(model.leaf_coords[leaves, j])
    cols["z"] = pl.Series(z, dtype=pl.Int64)
    return pl.DataFrame(cols)
