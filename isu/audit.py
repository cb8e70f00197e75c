"""Independent audit of a suppression result: values, primary rule, exact non-disclosure, LP intervals.

Why independent: the audit rebuilds every published cell from the inner cells and the dimension
definitions with its own code (Kronecker products of membership matrices), trusting nothing from
the engine except the claims it checks:

1. Values and the primary rule: every published value equals the sum of its inner cells; every count
   1..k−1 and every forced cell is hidden; a cell in several tables has one status.
2. Certificates (all sizes): each is an integer change z of positive inner cells, or (one-sided, only
   without contributors) one that also raises zero inner cells: then x + εz ≥ 0 with ε bounded by the
   lowered cells only, and since X·z = 0 on shown cells while z ≥ 0 on zeros, no shown cell reveals
   those zeros; the width bound is ε|(X·z)_h|. With exact integer
   arithmetic the audit checks X·z = 0 on every shown cell; then every hidden cell h with (X·z)_h ≠ 0
   is *proven* not recomputable by any linear combination of published cells, and since x ± εz ≥ 0
   for ε = min x_i/|z_i|, its LP interval is at least 2ε|(X·z)_h| wide (reported as a lower bound).
   Insiders (a contributor's own leaves; the person of a count-1 leaf): each hidden cell that is not
   wholly the insider's must have a valid certificate that does not touch that insider's leaves.
3. Rank test (small problems, ≤ ``rank_max_unknowns`` leaf combinations): independent of any
   certificate, a hidden cell is disclosed iff its indicator is in the row space of the shown cells
   over the inner cells not known to be zero (modular elimination, see :mod:`isu.audit_exact`);
   repeated with each contributor's (and count-1 leaf's) cells known, up to ``insider_rank_max``.
4. LP intervals (≤ ``lp_max_cells`` distinct cells): min and max of every hidden cell; width 0 is a
   disclosure.

``disclosed`` counts hidden cells found recomputable or not proven safe by any method, plus shown
cells that break the primary rule; publication must refuse unless it is 0. The report is a plain
JSON-serialisable dict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import reduce

import numpy as np
import polars as pl
from scipy import sparse

from isu.audit_exact import in_row_space, lp_intervals

__all__ = ["audit"]


@dataclass(frozen=True)
class _Dim:
    name: str
    leaves: list[str]
    lidx: dict[str, int]
    codes: list[str]
    cidx: dict[str, int]
    mem: sparse.csr_matrix     # codes × leaves
    total: str | None


def _dims(result) -> list[_Dim]:
    out = []
    for d in result.dims:
        groups = {str(c): frozenset(map(str, g)) for c, g in d.groups.items()}
        leaves = sorted(c for c, g in groups.items() if g == {c})
        lidx = {x: i for i, x in enumerate(leaves)}
        codes = sorted(groups)
        mem = sparse.csr_matrix(np.array([[x in groups[c] for x in leaves] for c in codes], dtype=np.int64))
        total = next((c for c in codes if len(groups[c]) == len(leaves) and (c not in lidx or len(leaves) == 1)), None)
        out.append(_Dim(d.name, leaves, lidx, codes, {c: i for i, c in enumerate(codes)}, mem, total))
    return out


def _inner(result, dims):
    names = [d.name for d in dims]
    agg = [pl.col(result.value).cast(pl.Int64).sum().alias("_x")]
    if result.contributor:
        agg.append(pl.col(result.contributor).cast(pl.String).first().alias("_c"))
    df = result.inner.with_columns(*(pl.col(n).cast(pl.String) for n in names))
    return df.group_by(names).agg(*agg).filter(pl.col("_x") > 0).sort(names)


def _incidence(cells: pl.DataFrame, inner: pl.DataFrame, dims, tables) -> sparse.csr_matrix:
    """X (distinct cells × positive inner cells): X[c, i] = 1 iff inner cell i is summed in cell c."""
    names = [d.name for d in dims]
    parts, order = [], []
    todo = cells.with_row_index("_row")
    for _, tdims in tables:
        bd = [j for j, n in enumerate(names) if n in set(tdims)]
        mine = todo
        for j, d in enumerate(dims):
            if j not in bd:
                mine = mine.filter(pl.col(d.name) == d.total)
        if mine.is_empty():
            continue
        todo = todo.join(mine.select("_row"), on="_row", how="anti")
        kron = reduce(lambda a, b: sparse.kron(a, b, format="csr"), [dims[j].mem for j in bd]) if bd else \
            sparse.csr_matrix(np.ones((1, 1), dtype=np.int64))
        rows = np.zeros(mine.height, dtype=np.int64)
        cols = np.zeros(inner.height, dtype=np.int64)
        for j in bd:
            d = dims[j]
            rows = rows * len(d.codes) + mine[d.name].replace_strict(d.cidx, return_dtype=pl.Int64).to_numpy()
            cols = cols * len(d.leaves) + inner[d.name].replace_strict(d.lidx, return_dtype=pl.Int64).to_numpy()
        parts.append(kron[rows][:, cols])
        order.append(mine["_row"].to_numpy())
    if not todo.is_empty():
        raise ValueError(f"{todo.height} published cells fit no table")
    x = sparse.vstack(parts, format="csr")
    perm = np.empty(cells.height, dtype=np.int64)
    perm[np.concatenate(order)] = np.arange(cells.height)
    return x[perm]


def _certificates(result, inner, names, x, vals, shown, hidden, rep, per=None, dims=None):
    """Check every certificate; one touching zero inner cells must raise all of them (one-sided)."""
    certs = result.certificates.with_columns(*(pl.col(n).cast(pl.String) for n in names))
    leaf = inner.select(names).with_row_index("_leaf")
    joined = certs.join(leaf, on=names, how="left")
    n_cert = int(certs["cert"].max()) + 1 if certs.height else 0
    bad = np.zeros(n_cert, dtype=bool)
    zrows = joined.filter(pl.col("_leaf").is_null())
    onesided = np.zeros(n_cert, dtype=bool)
    onesided[zrows["cert"].unique().to_numpy()] = True
    if result.contributor or per is None:  # a contributor knows its zeros: only two-sided certificates
        bad |= onesided
    else:
        bad[zrows.filter(pl.col("z") <= 0)["cert"].unique().to_numpy()] = True
    ok = joined.filter(pl.col("_leaf").is_not_null())
    z = sparse.csc_matrix((ok["z"].to_numpy(), (ok["_leaf"].to_numpy(), ok["cert"].to_numpy())),
                          shape=(inner.height, n_cert), dtype=np.int64)
    y = (x @ z).tocsr()
    if zrows.height and not result.contributor and per is not None:
        zl = zrows.select(names).unique(maintain_order=True).with_row_index("_z")
        x0 = _incidence(per, zl.drop("_z"), dims, result.tables)
        zr = zrows.join(zl, on=names)
        z0 = sparse.csc_matrix((zr["z"].to_numpy(), (zr["_z"].to_numpy(), zr["cert"].to_numpy())),
                               shape=(zl.height, n_cert), dtype=np.int64)
        y = (y + x0 @ z0).tocsr()
    y.eliminate_zeros()
    viol = y[shown]
    bad[np.unique(viol.indices)] = True
    z = z[:, ~bad] if n_cert else z
    y = y[:, ~bad] if n_cert else y
    one = onesided[~bad] if n_cert else onesided
    eps = np.full(z.shape[1], np.inf)
    zc = z.tocsc()
    for b in range(z.shape[1]):
        s = slice(zc.indptr[b], zc.indptr[b + 1])
        lower = zc.data[s] < 0 if one[b] else np.ones(zc.indptr[b + 1] - zc.indptr[b], dtype=bool)
        if lower.any():  # x + εz ≥ 0 (one-sided: only the lowered cells bound ε; width ≥ ε|δ|, not 2ε|δ|)
            eps[b] = float(np.min(vals[zc.indices[s]][lower] / np.abs(zc.data[s][lower]))) * (0.5 if one[b] else 1.0)
    rep["certificates"] = {"given": n_cert, "valid": int(z.shape[1]), "invalid": int(bad.sum())}
    yh = y[hidden]
    covered = np.diff(yh.indptr) > 0
    bound = np.zeros(len(hidden))
    if yh.nnz:
        scaled = abs(yh).multiply(2 * eps[None, :]).tocsr()
        bound = np.asarray(scaled.max(axis=1).todense()).ravel()
    return covered, bound, yh, zc


def _insiders(result, inner, cells, hidden, yh, zc):
    """Hidden cells (indices into ``hidden``) for which some insider touches every covering certificate.

    Counted as a sparse product, covering (hidden × certificates) @ insiders (certificates ×
    insiders), in blocks of hidden rows: the pairs (h, a) whose count equals h's number of covering
    certificates. Blocks keep memory bounded (a join of all pairs took 8 GB on the demo).
    """
    empty = pl.DataFrame(schema={"h": pl.Int64, "a": pl.Int64})
    cid = _contributor_ids(inner, result)
    if not (result.contributor or result.singletons) or zc.shape[1] == 0:
        return empty, 0
    nc = int(cid.max()) + 1 if len(cid) else 0
    n_cert = zc.shape[1]
    b_of = np.repeat(np.arange(n_cert, dtype=np.int64), np.diff(zc.indptr))
    rows, cols = [], []
    if result.contributor:
        c = cid[zc.indices]
        rows.append(b_of[c >= 0])
        cols.append(c[c >= 0])
    if result.singletons:
        ones = inner["_x"].to_numpy()[zc.indices] == 1
        rows.append(b_of[ones])
        cols.append(zc.indices[ones].astype(np.int64) + nc)
    r, c = np.concatenate(rows), np.concatenate(cols)
    ins = sparse.csr_matrix((np.ones(len(r), dtype=np.int32), (r, c)), shape=(n_cert, nc + inner.height))
    ins.sum_duplicates()
    ins.data[:] = 1
    cover = (yh != 0).astype(np.int32).tocsr()
    deg = np.diff(cover.indptr)
    hs, as_ = [], []
    for lo in range(0, cover.shape[0], _INSIDER_BLOCK):
        n = (cover[lo:lo + _INSIDER_BLOCK] @ ins).tocsr()
        h = np.repeat(np.arange(lo, lo + n.shape[0], dtype=np.int64), np.diff(n.indptr))
        hit = n.data == deg[h]
        hs.append(h[hit])
        as_.append(n.indices[hit].astype(np.int64))
    if not hs:
        return empty, nc
    return pl.DataFrame({"h": np.concatenate(hs), "a": np.concatenate(as_)}), nc


#: Hidden rows per block in :func:`_insiders` (bounds the memory of the sparse product).
_INSIDER_BLOCK = 2048


def _contributor_ids(inner, result) -> np.ndarray:
    if not result.contributor:
        return np.full(inner.height, -1, dtype=np.int64)
    ids = {c: i for i, c in enumerate(sorted(inner["_c"].unique().to_list()))}
    return inner["_c"].replace_strict(ids, return_dtype=pl.Int64).to_numpy()


def audit(result, *, lp_max_cells: int = 2000, rank_max_unknowns: int = 1500, insider_rank_max: int = 30) -> dict:
    """Audit ``result`` (a :class:`isu.suppress.SuppressionResult`); returns a JSON-serialisable report."""
    t0 = time.perf_counter()
    dims = _dims(result)
    names = [d.name for d in dims]
    inner = _inner(result, dims)
    per = result.cells.group_by(names).agg(pl.col("status").n_unique().alias("_ns"), pl.col("status").first(),
                                           pl.col("value").first(), pl.col("value").n_unique().alias("_nv")).sort(names)
    inconsistent = int(per.filter((pl.col("_ns") > 1) | (pl.col("_nv") > 1)).height)
    x = _incidence(per, inner, dims, result.tables)
    vals = inner["_x"].to_numpy()
    true = x @ vals
    value = per["value"].to_numpy()
    status = per["status"].to_numpy()
    hid_mask = status != "shown"
    shown, hidden = np.flatnonzero(~hid_mask), np.flatnonzero(hid_mask)
    k = result.k
    rule = (~hid_mask) & (true >= 1) & (true < k)
    if result.forced is not None and not result.forced.is_empty():
        f = result.forced.with_columns(*(pl.col(n).cast(pl.String) for n in names if n in result.forced.columns))
        f = f.with_columns(*(pl.lit(d.total).alias(d.name) for d in dims if d.name not in f.columns)).select(names)
        forced_rows = per.with_row_index("_r").join(f.unique(), on=names)["_r"].to_numpy()
        rule[forced_rows] |= ~hid_mask[forced_rows]
    rep: dict = {"k": k, "cells": per.height, "rows": result.cells.height, "hidden": len(hidden),
                 "primary": int((status == "primary").sum()), "secondary": int((status == "secondary").sum()),
                 "value_mismatches": int((true != value).sum()), "inconsistent_cells": inconsistent,
                 "primary_rule_violations": int(rule.sum())}
    covered, bound, yh, zc = _certificates(result, inner, names, x, vals, shown, hidden, rep, per, dims)
    always, nc = _insiders(result, inner, per, hidden, yh, zc)
    insider_bad = np.zeros(len(hidden), dtype=bool)
    if always.height:
        own = _own_insiders(x, inner, hidden, nc, result)
        a = always.join(own, on=["h", "a"], how="anti")
        insider_bad[a["h"].unique().to_numpy()] = True
    unproven = ~covered
    lab = lambda i: {n: per[n][int(i)] for n in names}
    ok_bound = bound[covered]
    rep["proof"] = {"method": "integer certificates, exact arithmetic", "proven_safe": int(covered.sum()),
                    "unproven": int(unproven.sum()), "insider_unproven": int(insider_bad.sum()),
                    "narrowest_width_lower_bound": (float(ok_bound.min()) if len(ok_bound) else None),
                    "narrowest_cell": (lab(hidden[covered][np.argmin(ok_bound)]) if len(ok_bound) else None)}
    rank_disc, lp_disc = _small_checks(result, dims, per, inner, hidden, shown, true, lp_max_cells,
                                       rank_max_unknowns, insider_rank_max, rep, lab)
    if rep["rank_test"]["ran"]:
        unproven = rank_disc
        insider_bad = rep["rank_test"].pop("_insider_bad") if rep["rank_test"].get("insider_complete") else insider_bad
        insider_bad = np.asarray(insider_bad, dtype=bool)
    disclosed = (unproven | lp_disc | insider_bad).sum() + rule.sum() + rep["value_mismatches"] + inconsistent
    rep["disclosed"] = int(disclosed)
    rep["rank_test"].pop("_insider_bad", None)
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    return rep


def _own_insiders(x, inner, hidden, nc, result) -> pl.DataFrame:
    """(h, insider) pairs where hidden cell h is wholly that insider's own cell."""
    xh = x[hidden].tocoo()
    df = pl.DataFrame({"h": xh.row.astype(np.int64), "leaf": xh.col.astype(np.int64)})
    out = []
    if result.contributor:
        cid = _contributor_ids(inner, result)
        c = df.with_columns(a=pl.Series(cid[xh.col])).group_by("h").agg(pl.col("a").n_unique().alias("n"), pl.col("a").first())
        out.append(c.filter(pl.col("n") == 1).select("h", "a"))
    if result.singletons:
        s = df.group_by("h").agg(pl.col("leaf").n_unique().alias("n"), pl.col("leaf").first())
        vals = inner["_x"].to_numpy()
        s = s.filter((pl.col("n") == 1) & pl.Series(vals[s["leaf"].to_numpy()] == 1) if s.height else pl.lit(False))
        out.append(s.select("h", a=pl.col("leaf") + nc))
    return pl.concat(out) if out else pl.DataFrame(schema={"h": pl.Int64, "a": pl.Int64})


def _dense_rows(per, dims):
    rows = np.ones((per.height, 1), dtype=np.int64)
    for d in dims:
        m = d.mem.toarray()[per[d.name].replace_strict(d.cidx, return_dtype=pl.Int64).to_numpy()]
        rows = (rows[:, :, None] * m[:, None, :]).reshape(per.height, -1)
    return rows


def _small_checks(result, dims, per, inner, hidden, shown, true, lp_max, rank_max, ins_max, rep, lab):
    size = int(np.prod([len(d.leaves) for d in dims]))
    none = np.zeros(len(hidden), dtype=bool)
    rep["rank_test"] = {"ran": False, "unknowns": size, "limit": rank_max}
    rep["lp"] = {"ran": False, "cells": per.height, "limit": lp_max}
    if size > rank_max:
        return none, none
    rows = _dense_rows(per, dims)
    known0 = rows[shown][true[shown] == 0].any(axis=0)
    keep = ~known0
    pub, hid = rows[shown][:, keep], rows[hidden][:, keep]
    disc = in_row_space(pub, hid)
    rep["rank_test"].update(ran=True, disclosed=int(disc.sum()), method="modular elimination, two 31-bit primes")
    full = np.zeros(size, dtype=np.int64)
    leaf_flat = np.zeros(inner.height, dtype=np.int64)
    for d in dims:
        leaf_flat = leaf_flat * len(d.leaves) + inner[d.name].replace_strict(d.lidx, return_dtype=pl.Int64).to_numpy()
    full[leaf_flat] = inner["_x"].to_numpy()
    insiders = []
    if result.contributor:
        for c in sorted(inner["_c"].unique().to_list()):
            insiders.append(("contributor", c, _contributor_columns(result, dims, inner, c, leaf_flat, size)))
    if result.singletons:
        insiders += [("singleton", int(i), np.isin(np.arange(size), [i])) for i in np.flatnonzero(full == 1)]
    bad = np.zeros(len(hidden), dtype=bool)
    for kind, who, cols in insiders[:ins_max]:
        k2 = keep & ~cols
        hrows = rows[hidden][:, k2]
        mine = ~hrows.any(axis=1)
        d = in_row_space(rows[shown][:, k2], hrows) & ~mine
        bad |= d
    rep["rank_test"].update(insiders_checked=min(len(insiders), ins_max), insiders=len(insiders),
                            insider_disclosed=int(bad.sum()), insider_complete=len(insiders) <= ins_max,
                            _insider_bad=bad)
    lp_disc = none.copy()
    if per.height <= lp_max and len(hidden):
        lo, hi = lp_intervals(rows[shown][:, keep], true[shown], rows[hidden][:, keep])
        width = hi - lo
        lp_disc = np.isfinite(width) & (width <= 1e-6 * np.maximum(1.0, np.abs(lo)))
        i = int(np.argmin(width))
        rep["lp"].update(ran=True, disclosed=int(lp_disc.sum()), narrowest_width=float(width[i]), unbounded=int(np.isinf(width).sum()),
                         narrowest_cell=lab(hidden[i]))
    return disc, lp_disc


def _contributor_columns(result, dims, inner, c, leaf_flat, size) -> np.ndarray:
    """Leaf combinations contributor c knows: its positive cells, and its zeros when one dim names it."""
    cols = np.zeros(size, dtype=bool)
    cols[leaf_flat[(inner["_c"] == c).to_numpy()]] = True
    names = [d.name for d in dims]
    for j, name in enumerate(names):
        m = inner.group_by(name).agg(pl.col("_c").n_unique().alias("n"), pl.col("_c").first())
        if m.height and (m["n"] == 1).all():
            leaves = set(m.filter(pl.col("_c") == c)[name].to_list())
            shape = [len(d.leaves) for d in dims]
            idx = np.unravel_index(np.arange(size), shape)[j]
            cols |= np.isin(idx, [dims[j].lidx[x] for x in leaves])
            break
    return cols
