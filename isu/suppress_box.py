"""Box search: the cheapest protecting perturbation ("certificate") for one hidden cell.

Why boxes: a hidden cell h cannot be recomputed from published cells iff some change z of the inner
cells leaves every published cell unchanged but changes h. Per dimension take a signed leaf vector
u (one leaf ``e_l``, or two ``e_l - e_l'``); its effect on that dimension's codes is v = M·u, non-zero
exactly on the codes that contain l but not l' (or l alone). The product z = ⊗u changes exactly the
cells in the "box" ∏ supp(v): hiding every published cell of the box protects all of them at once,
in every linked table and at every level of every hierarchy (this is tau-Argus' hypercube idea,
generalised to overlapping groups and made exact). Costs of all K₁×…×K_d candidate boxes come from
one tensor contraction of the live cost array; dimensions a table does not break down are
"realised" by choosing positive leaf cells under each corner so that other tables cancel out.
z touches positive inner cells, so x ± εz stays non-negative: the certificate also proves that
every LP interval has positive width. With ``onesided`` (no contributors), z may also raise zero
inner cells that no published cell shows to be zero (only the corners of one sign need positive
cells): x + εz ≥ 0 still proves an interval of positive width, and sparse data no longer forces
single-leaf boxes that hide every margin up to the grand total. The exact effect of z is always recomputed from the
leaf → cell incidence, so the heuristic costs never decide safety, only price.
"""

from __future__ import annotations

import numpy as np

from isu import suppress_kernel as kernel
from isu.suppress_lp import LPCertificates
from isu.suppress_model import DimIndex, Model

__all__ = ["BIG", "KEEP", "BoxSearch"]

BIG = 1e15
KEEP = 1e9  # cost of a cell the caller wants published: only hidden when no certificate avoids it
MAX_PAIRS = 20_000
MAX_BOXES = 40_000


def _contract(t: np.ndarray, mats: list[np.ndarray]) -> np.ndarray:
    for m in mats:
        t = np.tensordot(t, m, axes=([0], [1]))
    return t


def _align(options: list[tuple[np.ndarray, np.ndarray]], chosen: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Pick a realisation key for each open corner: the key most of its box neighbours (corners one
    flip away) already use, else the key most corners could use; ties to the smaller key."""
    allr, counts = np.unique(np.concatenate([o[1] for o in options]), return_counts=True)
    shape = tuple(sizes) if sizes else (1,)
    for i in range(len(options)):
        if chosen[i] >= 0:
            continue
        rk = options[i][1]
        idx = np.unravel_index(i, shape)
        votes = np.zeros(len(rk))
        for a, n in enumerate(shape):
            if n == 2:
                nb = list(idx)
                nb[a] = 1 - nb[a]
                other = chosen[np.ravel_multi_index(tuple(nb), shape)]
                votes += rk == other
        chosen[i] = rk[np.lexsort((rk, -counts[np.searchsorted(allr, rk)], -votes))[0]]
    return chosen


class DimCandidates:
    """Per code: signed leaf vectors u whose effect v = M·u is non-zero on that code."""

    def __init__(self, d: DimIndex, width: int):
        self.d = d
        self.width = width
        self.cache: dict[int, tuple[np.ndarray, ...]] = {}
        m = d.mem.astype(np.int64)
        self.symdiff = m.sum(0)[:, None] + m.sum(0)[None, :] - 2 * (m.T @ m)

    def get(self, code: int) -> tuple[np.ndarray, ...]:
        got = self.cache.get(code)
        if got is not None:
            return got
        d = self.d
        inside = np.flatnonzero(d.mem[code])
        outside = np.flatnonzero(~d.mem[code])
        lp = [inside, np.repeat(inside, len(outside))]
        lm = [np.full(len(inside), -1), np.tile(outside, len(inside))]
        if len(lp[1]) > MAX_PAIRS:
            order = np.lexsort((lm[1], lp[1], self.symdiff[lp[1], lm[1]]))[:MAX_PAIRS]
            lp[1], lm[1] = lp[1][order], lm[1][order]
        lp, lm = np.concatenate(lp), np.concatenate(lm)
        v = d.mem[:, lp].astype(np.int8) - np.where(lm >= 0, d.mem[:, np.maximum(lm, 0)], False).astype(np.int8)
        nz = v != 0
        sup = np.argsort(~nz, axis=0, kind="stable")[: self.width].T
        sup = np.where(np.take_along_axis(nz.T, sup, axis=1), sup, d.n)
        sup = np.pad(sup, ((0, 0), (0, self.width - sup.shape[1])), constant_values=d.n)
        got = (lp, lm, np.ascontiguousarray(sup), np.flatnonzero(lm < 0), nz.sum(0).astype(np.int64))
        self.cache[code] = got
        return got


class TableSearch:
    """Live cost array and realisation index of one table (arrays padded by one neutral slot per axis)."""

    def __init__(self, model: Model, ti: int, cost: np.ndarray):
        t = model.tables[ti]
        self.t = t
        self.shape_p = tuple(n + 1 for n in t.shape)
        inner = tuple(slice(0, n) for n in t.shape)
        self.w = np.zeros(self.shape_p)
        self.w[inner] = cost[t.canon]
        self.pos = np.full(model.n_cells, -1, dtype=np.int64)
        self.pos[t.canon.ravel()] = np.ravel_multi_index(np.indices(t.shape).reshape(len(t.shape), -1), self.shape_p) \
            if t.shape else 0
        self.rdims = tuple(j for j in range(len(model.dims)) if j not in t.bdims)
        lshape = tuple(model.dims[j].n_leaves for j in t.bdims)
        coords = model.leaf_coords
        tkey = np.ravel_multi_index(tuple(coords[:, j] for j in t.bdims), lshape) if t.bdims else np.zeros(len(coords), np.int64)
        rshape = tuple(model.dims[j].n_leaves for j in self.rdims)
        rkey = np.ravel_multi_index(tuple(coords[:, j] for j in self.rdims), rshape) if self.rdims else np.zeros(len(coords), np.int64)
        order = np.lexsort((rkey, tkey))
        self.tkey, self.rkey, self.leaf = tkey[order], rkey[order], order
        self.lshape = lshape
        self.lstride = np.array([int(np.prod(lshape[a + 1:], dtype=np.int64)) for a in range(len(lshape))], dtype=np.int64)
        size = int(np.prod(lshape, dtype=np.int64))
        cmax = np.full(size, -1, dtype=np.int64)
        np.maximum.at(cmax, tkey, model.leaf_contrib)
        cmin = np.full(size, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(cmin, tkey, model.leaf_contrib)
        contrib = np.where(cmax < 0, -1, np.where(cmin == cmax, cmax, -2))
        single = np.full(size, -1, dtype=np.int64)
        ones = model.leaf_value == 1
        single[tkey[ones]] = np.flatnonzero(ones)
        single[t.leaf_value.ravel() != 1] = -1
        lpad = tuple(n + 1 for n in lshape)
        inner_l = tuple(slice(0, n) for n in lshape)
        self.zero = np.zeros(lpad, dtype=bool)
        self.zero[inner_l] = t.leaf_value == 0
        self.corner_contrib = np.full(lpad, -1, dtype=np.int64)
        self.corner_contrib[inner_l] = contrib.reshape(lshape)
        self.corner_single = np.full(lpad, -1, dtype=np.int64)
        self.corner_single[inner_l] = single.reshape(lshape)
        self.wstr = np.array(self.w.strides, dtype=np.int64) // self.w.itemsize
        self.zstr = np.array([int(np.prod(lpad[a + 1:], dtype=np.int64)) for a in range(len(lpad))], dtype=np.int64)

    def leaves_under(self, tk: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = np.searchsorted(self.tkey, [tk, tk + 1])
        return self.leaf[a:b], self.rkey[a:b]


class BoxSearch:
    """Finds certificates; ``hide`` keeps the per-table cost arrays in step with the engine."""

    def __init__(self, model: Model, cost: np.ndarray, n_contrib: int, k_per_dim: int = 6, onesided: bool = False):
        self.m = model
        self.onesided = onesided
        self.npos = len(model.leaf_value)
        self.nleaf = self.npos
        self.zero_ids: dict[tuple, int] = {}
        self.zero_inc: list[np.ndarray] = []
        self._pos_ids: dict[tuple, int] | None = None
        self.lp: LPCertificates | None = None
        width = max(2 * d.anc.shape[1] for d in model.dims)
        self.cands = [DimCandidates(d, width) for d in model.dims]
        self.use_kernel = kernel.AVAILABLE
        self.tabs = [TableSearch(model, i, cost) for i in range(len(model.tables))]
        self.cost = cost
        self.n_contrib = n_contrib
        self.k = k_per_dim
        sets = [set(t.bdims) for t in model.tables]
        self.cancel_axes = []
        for i, t in enumerate(model.tables):
            seen = [s for s in sets if not s <= sets[i]]
            self.cancel_axes.append([a for a, j in enumerate(t.bdims) if not any(j in s for s in seen)]
                                    if seen else None)
        order = np.argsort(model.inc_cells, kind="stable")
        leaf_of = np.repeat(np.arange(len(model.leaf_value)), np.diff(model.inc_ptr))
        self.cell_leaves = leaf_of[order]
        self.cell_ptr = np.searchsorted(model.inc_cells[order], np.arange(model.n_cells + 1))
        deg = np.diff(model.inc_ptr)
        width = int(deg.max()) if len(deg) else 0
        self.inc_pad = np.full((len(deg), width), -1, dtype=np.int64)
        self.inc_pad[leaf_of, np.arange(len(leaf_of)) - model.inc_ptr[leaf_of]] = model.inc_cells

    def set_cost(self, cells: np.ndarray, value) -> None:
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), cells.shape)
        self.cost[cells] = value
        for ts in self.tabs:
            p = ts.pos[cells]
            ok = p >= 0
            ts.w.ravel()[p[ok]] = value[ok]

    def hide(self, cells: np.ndarray) -> None:
        self.set_cost(cells, 0.0)

    def zero_leaf(self, coords: tuple[int, ...]) -> int:
        """Id of a zero inner cell (appended after the positive ones; the model's leaf arrays grow)."""
        got = self.zero_ids.get(coords)
        if got is not None:
            return got
        m = self.m
        if self.nleaf == len(m.leaf_value):
            extra = max(256, len(m.leaf_value) // 2)
            m.leaf_coords = np.vstack([m.leaf_coords, np.zeros((extra, len(m.dims)), dtype=np.int64)])
            m.leaf_value = np.concatenate([m.leaf_value, np.zeros(extra, dtype=np.int64)])
            m.leaf_contrib = np.concatenate([m.leaf_contrib, np.full(extra, -1, dtype=np.int64)])
        i = self.nleaf
        self.nleaf += 1
        m.leaf_coords[i] = coords
        cells = []
        for t in m.tables:
            anc = [m.dims[j].anc[coords[j]] for j in t.bdims]
            cells.append(t.canon[np.ix_(*[a[a >= 0] for a in anc])].ravel() if t.bdims else t.canon.ravel())
        self.zero_inc.append(np.unique(np.concatenate(cells)))
        self.zero_ids[coords] = i
        return i

    def effect(self, leaves: np.ndarray, signs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact δ = X·z on canonical cells: (cells with δ ≠ 0, δ there)."""
        signs = np.asarray(signs, dtype=np.float64)
        pos = leaves < self.npos
        cells = self.inc_pad[leaves[pos]]
        w = np.broadcast_to(signs[pos][:, None], cells.shape)
        ok = cells >= 0
        flat, wt = cells[ok], w[ok]
        if not pos.all():
            zc = [self.zero_inc[i - self.npos] for i in leaves[~pos].tolist()]
            flat = np.concatenate([flat, *zc])
            wt = np.concatenate([wt, *(np.full(len(c), s) for c, s in zip(zc, signs[~pos].tolist()))])
        u, inv = np.unique(flat, return_inverse=True)
        d = np.rint(np.bincount(inv, weights=wt)).astype(np.int64)
        return u[d != 0], d[d != 0]

    def forbidden_leaves(self, leaves: np.ndarray, forbid: set[int]) -> np.ndarray:
        if not forbid:
            return np.zeros(len(leaves), dtype=bool)
        contrib = self.m.leaf_contrib[leaves].tolist()
        single = (self.m.leaf_value[leaves] == 1).tolist()
        nc = self.n_contrib
        return np.array([c in forbid or (s and l + nc in forbid)
                         for c, s, l in zip(contrib, single, leaves.tolist())], dtype=bool)

    def certificate(self, h: int, forbid: set[int]):
        """(leaves, signs, cells, δ) of the cheapest certificate found for cell h avoiding ``forbid``."""
        tis = [i for i, ts in enumerate(self.tabs) if ts.pos[h] >= 0]
        ti = min(tis, key=lambda i: (len(self.m.tables[i].bdims), i))
        exact_price = self.cancel_axes[ti] is not None  # other tables see the realisation: compare exactly
        found = []
        for box in self._boxes(h, ti, forbid):
            z = self._realise(ti, box, forbid)
            if z is None:
                continue
            cells, delta = self.effect(*z)
            at = np.searchsorted(cells, h)
            if at < len(cells) and cells[at] == h:
                found.append((float(self.cost[cells].sum()), len(found), (*z, cells, delta)))
                if not exact_price or len(found) == 3:
                    break
        best = min(found) if found else None
        if self.onesided and (best is None or abs(best[2][1].sum()) > 0.5):  # it changes the grand total: try pairs
            pair = self._pair(h, forbid)
            if pair is not None and (best is None or pair[0] < best[0]):
                return pair[1]
        if not self.onesided and (best is None or best[0] >= KEEP):  # no box spares the cells to keep: try the LP
            if self.lp is None:
                self.lp = LPCertificates(self)
            def price(f) -> float:
                return float(self.cost[f[2]].sum())

            found = None if self.lp.exhausted else self.lp.certificate(h, forbid)
            if (found is None or price(found) >= KEEP) and not self.lp.wide_exhausted:
                # still through a cell to keep: look one dimension further (cycles across goal levels
                # and outcomes of the same records need leaves two steps away)
                wider = self.lp.certificate(h, forbid, wide=True)
                if wider is not None and (found is None or price(wider) < price(found)):
                    found = wider
            if found is not None and (best is None or price(found) < best[0]):
                return found
        if best is not None:
            return best[2]
        return self._fallback(h, forbid)

    def _pair(self, h: int, forbid: set[int], tries: int = 48):
        """Cheapest z = e_a − e_b: b a positive leaf just outside h, a the leaf under h nearest to it.
        Σz = 0, so unlike a single leaf it leaves every margin containing both (the grand total) alone;
        a may be a zero cell (raised) when ``onesided``."""
        m = self.m
        coords = m.leaf_coords[: self.npos]
        codes = m.cell_codes[h]
        near, dist = [], np.zeros(len(coords), dtype=np.int64)
        for j, (d, c) in enumerate(zip(m.dims, codes)):
            g = np.flatnonzero(d.mem[c])
            sd = self.cands[j].symdiff[:, g]
            nj = g[np.argmin(sd, axis=1)]   # the leaf of h's group sharing most groups with each leaf
            near.append(nj)
            dist += sd.min(axis=1)[coords[:, j]]
        ok = np.flatnonzero(dist > 0)
        ok = ok[~self.forbidden_leaves(ok, forbid)]
        if not len(ok):
            return None
        cand = ok[np.lexsort((ok, dist[ok]))[: tries]]
        if self._pos_ids is None:
            self._pos_ids = {tuple(r): i for i, r in enumerate(coords.tolist())}
        best = None
        for b in cand.tolist():
            a_coords = tuple(int(near[j][x]) for j, x in enumerate(coords[b].tolist()))
            a = self._pos_ids.get(a_coords)
            if a is None:
                if not self.onesided:
                    continue
                a = self.zero_leaf(a_coords)
            elif self.forbidden_leaves(np.array([a]), forbid)[0]:
                continue
            leaves, signs = np.array([a, b]), np.array([1.0, -1.0])
            cells, delta = self.effect(leaves, signs)
            if h not in set(cells.tolist()):
                continue
            price = float(self.cost[cells].sum())
            if best is None or price < best[0]:
                best = (price, (leaves, signs, cells, delta))
        return best

    def _axis(self, ts: TableSearch, at: tuple, a: int, k: int):
        """Top-k candidate leaf vectors on one axis, scored by their cost along h's own fibre."""
        lp, lm, sup, singles, _ = self.cands[ts.t.bdims[a]].get(int(at[a]))
        idx = list(at)
        idx[a] = slice(None)
        score = ts.w[tuple(idx)][sup].sum(1)
        if len(score) > k:
            top = np.argpartition(score, k - 1)[:k]
            sel = top[np.lexsort((top, score[top]))]
            if len(singles) and not (lm[sel] < 0).any():
                sel = np.append(sel, singles[np.argmin(score[singles])])
        else:
            sel = np.lexsort((np.arange(len(score)), score))
        return lp[sel], lm[sel], sup[sel]

    def _boxes(self, h: int, ti: int, forbid: set[int]):
        if self.use_kernel and self.tabs[ti].t.bdims:
            return self._boxes_kernel(h, ti, forbid)
        return self._boxes_numpy(h, ti, forbid)

    def _boxes_kernel(self, h: int, ti: int, forbid: set[int]):
        ts = self.tabs[ti]
        at = np.array(np.unravel_index(ts.pos[h], ts.shape_p), dtype=np.int64)
        got = [self.cands[j].get(int(at[a])) for a, j in enumerate(ts.t.bdims)]
        lp = np.concatenate([g[0] for g in got])
        lm = np.concatenate([g[1] for g in got])
        off = np.concatenate([[0], np.cumsum([len(g[0]) for g in got])]).astype(np.int64)
        f = np.array(sorted(forbid), dtype=np.int64)
        rows, costs = kernel.best_boxes(ts.w.ravel(), ts.wstr, at, lp, lm, np.concatenate([g[2] for g in got]),
                                        np.concatenate([g[4] for g in got]), off, self.k, ts.zero.ravel(), ts.zstr,
                                        f, ts.corner_contrib.ravel(), ts.corner_single.ravel(), self.n_contrib,
                                        1 if self.cancel_axes[ti] is None and not ts.rdims else 8, self.onesided)
        for r, c in zip(rows, costs):
            if r[0] < 0 or c >= BIG:
                break
            yield [(int(lp[i]), int(lm[i])) for i in r]

    def _boxes_numpy(self, h: int, ti: int, forbid: set[int]):
        ts = self.tabs[ti]
        t = ts.t
        at = np.unravel_index(ts.pos[h], ts.shape_p)
        k = [self.k] * len(t.bdims)
        while np.prod(k) > MAX_BOXES and max(k) > 1:
            k[int(np.argmax(k))] -= 1
        mats_w, mats_v, rsets, qsets, picks = [], [], [], [], []
        for a in range(len(t.bdims)):
            p_lp, p_lm, p_sup = self._axis(ts, at, a, k[a])
            rows = np.arange(len(p_lp))
            pm = np.zeros((len(p_lp), ts.shape_p[a]))
            pm[rows[:, None], p_sup] = 1.0
            r = np.flatnonzero(pm.any(0))
            um = np.zeros((len(p_lp), ts.lshape[a] + 1))
            um[rows, p_lp] = 1.0
            um[rows, p_lm] = 1.0  # -1 (no second leaf) is the neutral pad slot
            q = np.flatnonzero(um.any(0))
            mats_w.append(pm[:, r]), mats_v.append(um[:, q]), rsets.append(r), qsets.append(q)
            picks.append((p_lp, p_lm))
        total = _contract(ts.w[np.ix_(*rsets)], mats_w)
        qix = np.ix_(*qsets)
        corner_bad = ts.zero[qix]
        if forbid:
            f = np.array(sorted(forbid), dtype=np.int64)
            corner_bad = corner_bad | np.isin(ts.corner_contrib[qix], f)
            cs = ts.corner_single[qix]
            corner_bad |= (cs >= 0) & np.isin(cs + self.n_contrib, f)
        if corner_bad.any():
            total = total + BIG * (_contract(corner_bad.astype(np.float64), mats_v) > 0)
        flat = total.ravel()
        best = np.argpartition(flat, 7)[:8] if flat.size > 8 else np.arange(flat.size)
        best = best[np.lexsort((best, flat[best]))]
        for b in best:
            if flat[b] >= BIG:
                break
            ks = np.unravel_index(b, total.shape)
            yield [(int(picks[a][0][kk]), int(picks[a][1][kk])) for a, kk in enumerate(ks)]

    def _realise(self, ti: int, box: list[tuple[int, int]], forbid: set[int]):
        """Inner leaves and signs of z for a box, or None when no realisation avoids ``forbid``.

        Corners that z raises may be zero inner cells when ``onesided``; then z is oriented so that
        every zero corner is raised, and those corners take the realisation their neighbours use."""
        ts = self.tabs[ti]
        tks, signs = np.zeros(1, dtype=np.int64), np.ones(1)
        for a, (lp, lm) in enumerate(box):
            lv = np.array([lp, lm] if lm >= 0 else [lp], dtype=np.int64) * ts.lstride[a]
            tks = np.add.outer(tks, lv).ravel()
            signs = np.multiply.outer(signs, np.array([1.0, -1.0] if lm >= 0 else [1.0])).ravel()
        options = []
        for tk in tks.tolist():
            leaves, rk = ts.leaves_under(tk)
            keep = ~self.forbidden_leaves(leaves, forbid)
            options.append((leaves[keep], rk[keep], len(leaves) > 0))
        empty = np.array([not o[2] for o in options])
        if empty.any():
            if not self.onesided or (empty & (signs > 0)).any() and (empty & (signs < 0)).any():
                return None
            if (empty & (signs < 0)).any():
                signs = -signs
        flex = (signs > 0) if self.onesided else np.zeros(len(tks), dtype=bool)
        if any(len(o[0]) == 0 and not f for o, f in zip(options, flex)):
            return None
        if not ts.rdims:
            return np.array([o[0][0] if len(o[0]) else self._zero_at(ts, tk, 0) for o, tk in
                             zip(options, tks.tolist())], dtype=np.int64), signs
        axes = self.cancel_axes[ti]
        cancel = next((a for a in (axes or []) if box[a][1] >= 0), None)
        chosen = np.full(len(tks), -1, dtype=np.int64)
        if axes is not None and cancel is not None:
            group = tks - (tks // ts.lstride[cancel] % ts.lshape[cancel]) * ts.lstride[cancel]
            for g in np.unique(group):
                members = np.flatnonzero(group == g)
                fixed = [i for i in members if not flex[i]] or [i for i in members if len(options[i][1])]
                if not fixed:
                    continue
                common = options[fixed[0]][1]
                for i in fixed[1:]:
                    common = np.intersect1d(common, options[i][1], assume_unique=True)
                if len(common):
                    chosen[members] = common[0]
        open_fixed = (chosen < 0) & ~flex
        if open_fixed.any():  # the other tables see these corners: align neighbours so margins cancel
            sub = np.flatnonzero(open_fixed | (chosen >= 0))
            if len(sub) == len(tks):
                chosen = _align([o[:2] for o in options], chosen, [2 if lm >= 0 else 1 for _, lm in box])
            else:
                chosen = self._align_partial(options, chosen, open_fixed, box)
        if (chosen < 0).any():
            chosen = self._align_flex(options, chosen, box)
        leaves = []
        for i, o in enumerate(options):
            j = np.searchsorted(o[1], chosen[i])
            if j < len(o[1]) and o[1][j] == chosen[i]:
                leaves.append(int(o[0][j]))
                continue
            _, rk_all = ts.leaves_under(int(tks[i]))
            if np.isin(chosen[i], rk_all):  # a positive leaf the insider knows: not a zero cell
                return None
            leaves.append(self._zero_at(ts, int(tks[i]), int(chosen[i])))
        return np.array(leaves, dtype=np.int64), signs

    def _align_partial(self, options, chosen, todo, box):
        """_align restricted to the corners in ``todo`` (flexible corners are settled afterwards)."""
        sizes = [2 if lm >= 0 else 1 for _, lm in box]
        tmp = chosen.copy()
        tmp[~todo & (tmp < 0)] = -2
        out = _align([o[:2] if t else (np.array([0]), np.array([max(c, 0)])) for o, t, c in zip(options, todo, tmp)],
                     np.where(tmp == -2, np.iinfo(np.int64).max, tmp), sizes)
        out[~todo & (chosen < 0)] = -1
        return out

    def _align_flex(self, options, chosen, box):
        """Flexible corners (may be zero cells) take a neighbour's realisation key so margins cancel."""
        shape = tuple(2 if lm >= 0 else 1 for _, lm in box) or (1,)
        for i in np.flatnonzero(chosen < 0).tolist():
            idx = np.unravel_index(i, shape)
            pick = -1
            for a, n in enumerate(shape):
                if n == 2:
                    nb = list(idx)
                    nb[a] = 1 - nb[a]
                    other = chosen[np.ravel_multi_index(tuple(nb), shape)]
                    if other >= 0:
                        pick = int(other)
                        break
            if pick < 0:
                pick = int(options[i][1][0]) if len(options[i][1]) else 0
            chosen[i] = pick
        return chosen

    def _zero_at(self, ts: TableSearch, tk: int, rk: int) -> int:
        coords = [0] * len(self.m.dims)
        for j, c in zip(ts.t.bdims, np.unravel_index(tk, ts.lshape) if ts.t.bdims else ()):
            coords[j] = int(c)
        rshape = tuple(self.m.dims[j].n_leaves for j in ts.rdims)
        for j, c in zip(ts.rdims, np.unravel_index(rk, rshape) if ts.rdims else ()):
            coords[j] = int(c)
        return self.zero_leaf(tuple(coords))

    def _fallback(self, h: int, forbid: set[int]):
        """z = one positive leaf under h: changes every cell containing it (always exists unless h is
        wholly the forbidden insiders' own cell)."""
        under = self.cell_leaves[self.cell_ptr[h]:self.cell_ptr[h + 1]]
        under = under[~self.forbidden_leaves(under, forbid)][:64]
        if not len(under) and self.onesided and self.m.cell_value[h] == 0:  # a hidden zero: raise one zero leaf
            groups = [np.flatnonzero(d.mem[c]) for d, c in zip(self.m.dims, self.m.cell_codes[h])]
            under = np.array([self.zero_leaf(tuple(int(g[i % len(g)]) for g in groups)) for i in range(8)])
        best = None
        for leaf in under.tolist():
            cells, delta = self.effect(np.array([leaf]), np.array([1.0]))
            price = float(self.cost[cells].sum())
            if best is None or price < best[0]:
                best = (price, np.array([leaf]), np.array([1.0]), cells, delta)
        return None if best is None else best[1:]
