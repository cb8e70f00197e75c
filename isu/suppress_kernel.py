"""Compiled inner loop of the box search (numba): score candidates, enumerate boxes, keep the cheapest.

Why compiled: a national table needs tens of thousands of box searches; each is small (a few thousand
boxes of up to 32 cells) but done with numpy it costs ~1 ms of call overhead. This kernel does the
same selection as :meth:`isu.suppress_box.BoxSearch._boxes_numpy` (top-k candidates per axis by
their cost along h's fibre, ties by index; boxes in C order, ties to the first) in tens of
microseconds. Without numba the numpy path is used (same rules, slower).
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    AVAILABLE = False

    def njit(*args, **kwargs):
        return lambda f: f

__all__ = ["AVAILABLE", "best_boxes"]


@njit(cache=True)
def _member(sorted_arr, v):
    i = np.searchsorted(sorted_arr, v)
    return i < sorted_arr.size and sorted_arr[i] == v


@njit(cache=True)
def _select(w, wstr, at, lp, lm, sup, slen, off, k):
    d = at.size
    sel = np.full((d, k + 1), -1, np.int64)
    nsel = np.zeros(d, np.int64)
    base = 0
    for b in range(d):
        base += at[b] * wstr[b]
    for a in range(d):
        lo, hi = off[a], off[a + 1]
        ba = base - at[a] * wstr[a]
        scores = np.empty(hi - lo)
        for c in range(hi - lo):
            s = 0.0
            for i in range(slen[lo + c]):
                s += w[ba + sup[lo + c, i] * wstr[a]]
            scores[c] = s
        m = 0
        top_s = np.full(k, np.inf)
        single_s, single_i = np.inf, -1
        for c in range(hi - lo):  # top-k by (score, index) without sorting everything
            sc = scores[c]
            if lm[lo + c] < 0 and sc < single_s:
                single_s, single_i = sc, lo + c
            if m < k or sc < top_s[m - 1]:
                j = m if m < k else k - 1
                while j > 0 and top_s[j - 1] > sc:
                    top_s[j] = top_s[j - 1]
                    sel[a, j] = sel[a, j - 1]
                    j -= 1
                top_s[j] = sc
                sel[a, j] = lo + c
                m = min(m + 1, k)
        single = False
        for i in range(m):
            single = single or lm[sel[a, i]] < 0
        if not single and single_i >= 0:
            sel[a, m] = single_i
            m += 1
        nsel[a] = m
    return sel, nsel


@njit(cache=True)
def _extend(pref, npref, a, vals, nvals, stride, out):
    """Offsets of the product of axes 0..a from those of 0..a-1 (``pref``) and axis a's values."""
    m = 0
    for i in range(npref):
        for j in range(nvals):
            out[m] = pref[i] + vals[j] * stride
            m += 1
    return m


@njit(cache=True)
def _box_cost(cells, ncells, row, sup, slen, stride, w, threshold):
    """Σ w over (prefix cells) × (last axis support), stopping once it reaches ``threshold``."""
    cost = 0.0
    for i in range(ncells):
        base = cells[i]
        for j in range(slen[row]):
            cost += w[base + sup[row, j] * stride]
        if cost >= threshold:
            return cost
    return cost


@njit(cache=True)
def best_boxes(w, wstr, at, lp, lm, sup, slen, off, k, zero, zstr, forbid, cc, cs, nc, nbest, onesided=False):
    """Rows (into lp/lm) of the ``nbest`` cheapest valid boxes, cheapest first, and their costs.

    Boxes are visited in C order over the selected candidates with the axis of most candidates
    innermost; offsets of the box cells and corners are kept per prefix of axes, so a step
    recomputes only what changed, and a box is dropped as soon as its cost reaches the 8th best.
    ``onesided``: zero corners are allowed when all of them have one sign (the other sign's corners
    are positive), so z can be oriented to only raise zero cells.
    """
    d = at.size
    sel0, nsel0 = _select(w, wstr, at, lp, lm, sup, slen, off, k)
    perm = np.argsort(nsel0, kind="mergesort")
    sel = sel0[perm]
    nsel = nsel0[perm]
    ws = wstr[perm]
    zs = zstr[perm]
    best_cost = np.full(nbest, np.inf)
    best_rows = np.full((nbest, d), -1, np.int64)
    cap = 1
    for a in range(d):
        cap *= sup.shape[1]
    cells = np.zeros((d, cap), np.int64)
    ncells = np.ones(d, np.int64)
    corners = np.zeros((d + 1, 1 << d), np.int64)
    ncorners = np.ones(d + 1, np.int64)
    parity = np.zeros((d + 1, 1 << d), np.int64)
    bits = np.array([0, 1], np.int64)
    leaves = np.zeros(2, np.int64)
    ctr = np.zeros(d, np.int64)
    total = 1
    for a in range(d):
        total *= nsel[a]
    changed = 0
    for _ in range(total):
        for a in range(changed, d - 1):
            row = sel[a, ctr[a]]
            ncells[a + 1] = _extend(cells[a], ncells[a], a, sup[row], slen[row], ws[a], cells[a + 1])
        last = sel[d - 1, ctr[d - 1]]
        cost = _box_cost(cells[d - 1], ncells[d - 1], last, sup, slen, ws[d - 1], w, best_cost[nbest - 1])
        ok = cost < best_cost[nbest - 1]
        if ok:
            for a in range(d):
                row = sel[a, ctr[a]]
                leaves[0] = lp[row]
                leaves[1] = lm[row]
                ncorners[a + 1] = _extend(corners[a], ncorners[a], a, leaves, 2 if lm[row] >= 0 else 1, zs[a],
                                          corners[a + 1])
                _extend(parity[a], ncorners[a], a, bits, 2 if lm[row] >= 0 else 1, 1, parity[a + 1])
            cor = corners[d]
            zero_even, zero_odd = False, False
            for i in range(ncorners[d]):
                idx = cor[i]
                if forbid.size and ((cc[idx] >= 0 and _member(forbid, cc[idx])) or
                                    (cs[idx] >= 0 and _member(forbid, cs[idx] + nc))):
                    ok = False
                    break
                if zero[idx]:
                    if parity[d, i] % 2 == 0:
                        zero_even = True
                    else:
                        zero_odd = True
            if ok:
                ok = not (zero_even and zero_odd) if onesided else not (zero_even or zero_odd)
        if ok:
            j = nbest - 1
            while j > 0 and best_cost[j - 1] > cost:
                best_cost[j] = best_cost[j - 1]
                best_rows[j] = best_rows[j - 1]
                j -= 1
            best_cost[j] = cost
            for a in range(d):
                best_rows[j, perm[a]] = sel[a, ctr[a]]
        a = d - 1
        while a >= 0:
            ctr[a] += 1
            if ctr[a] < nsel[a]:
                break
            ctr[a] = 0
            a -= 1
        changed = max(a, 0)
    return best_rows, best_cost
