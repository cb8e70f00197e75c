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
        order = np.argsort(scores, kind="mergesort")
        m = min(k, hi - lo)
        single = False
        for i in range(m):
            sel[a, i] = lo + order[i]
            single = single or lm[lo + order[i]] < 0
        if not single:
            for i in range(m, hi - lo):
                if lm[lo + order[i]] < 0:
                    sel[a, m] = lo + order[i]
                    m += 1
                    break
        nsel[a] = m
    return sel, nsel


@njit(cache=True)
def _corners_ok(sel, ctr, lp, lm, zero, zstr, forbid, cc, cs, nc):
    d = ctr.size
    n = 1
    for a in range(d):
        if lm[sel[a, ctr[a]]] >= 0:
            n *= 2
    for ci in range(n):
        rem = ci
        idx = 0
        for a in range(d):
            row = sel[a, ctr[a]]
            leaf = lp[row]
            if lm[row] >= 0:
                if rem % 2 == 1:
                    leaf = lm[row]
                rem //= 2
            idx += leaf * zstr[a]
        if zero[idx]:
            return False
        if forbid.size:
            if cc[idx] >= 0 and _member(forbid, cc[idx]):
                return False
            if cs[idx] >= 0 and _member(forbid, cs[idx] + nc):
                return False
    return True


@njit(cache=True)
def best_boxes(w, wstr, at, lp, lm, sup, slen, off, k, zero, zstr, forbid, cc, cs, nc, nbest):
    """Rows (into lp/lm) of the ``nbest`` cheapest valid boxes, cheapest first, and their costs."""
    d = at.size
    sel, nsel = _select(w, wstr, at, lp, lm, sup, slen, off, k)
    best_cost = np.full(nbest, np.inf)
    best_rows = np.full((nbest, d), -1, np.int64)
    ctr = np.zeros(d, np.int64)
    total = 1
    for a in range(d):
        total *= nsel[a]
    for _ in range(total):
        if _corners_ok(sel, ctr, lp, lm, zero, zstr, forbid, cc, cs, nc):
            threshold = best_cost[nbest - 1]
            ncell = 1
            for a in range(d):
                ncell *= slen[sel[a, ctr[a]]]
            cost = 0.0
            for ci in range(ncell):
                rem = ci
                idx = 0
                for a in range(d - 1, -1, -1):
                    row = sel[a, ctr[a]]
                    idx += sup[row, rem % slen[row]] * wstr[a]
                    rem //= slen[row]
                cost += w[idx]
                if cost >= threshold:
                    break
            if cost < threshold:
                j = nbest - 1
                while j > 0 and best_cost[j - 1] > cost:
                    best_cost[j] = best_cost[j - 1]
                    best_rows[j] = best_rows[j - 1]
                    j -= 1
                best_cost[j] = cost
                for a in range(d):
                    best_rows[j, a] = sel[a, ctr[a]]
        a = d - 1
        while a >= 0:
            ctr[a] += 1
            if ctr[a] < nsel[a]:
                break
            ctr[a] = 0
            a -= 1
    return best_rows, best_cost
