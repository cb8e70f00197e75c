"""Certificates by linear programming, for the cells the box search cannot protect cheaply.

Why: a box certificate needs positive inner cells at its corners. In sparse linked tables (a few
thousand records spread over period × municipality × category × need area × sex × age × goal) most
boxes have an empty corner, and the only box left is a single inner cell, whose change reaches every
margin above it up to the grand total. Once a grand total is hidden it costs nothing to use again, so
one such fallback cascades into hidden totals everywhere.

The LP is tau-Argus' single-cell protection model: find a change z of the positive inner cells with
(X·z)_h = 1 that minimises Σ_c cost_c · |(X·z)_c| over the published cells. Cells already hidden cost
nothing; large totals cost a lot (weights), so the LP spreads the change over small cells instead.
HiGHS returns a vertex; its z is scaled to integers and its effect recomputed exactly
(:meth:`isu.suppress_box.BoxSearch.effect`), so rounding can only hide more, never claim a
certificate that does not hold. Each LP only uses the inner cells near h (sharing h's codes in all but
``reach`` dimensions) and HiGHS gets an iteration limit per LP and a budget of iterations per engine
call, so the LP stays a repair for hard cells, not the main search. When the LP's best certificate
still goes through a cell to keep, one LP with a reach one larger is tried, on a budget of its own
(in iterations × LP size, see ``WIDE_WORK``): with goal levels and outcomes as separate dimensions
of the same records, the cheap cycles often leave h's group in two dimensions at once. Limits count
simplex iterations, not seconds: a time limit made the publication depend on how busy the machine was (an LP cut off
under load hid the national totals), and the same store must always give the same output.
"""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

__all__ = ["LPCertificates"]

MAX_DENOMINATOR = 64
#: Simplex iterations per LP (the demo's hardest LPs need about 3,500) and per engine call (~0.2 ms each).
MAX_ITERATIONS = 20_000
BUDGET = 150_000
#: Work per engine call (simplex iterations × non-zeros of the LP, which tracks its time at ~6 ns a
#: unit) for LPs one dimension wider, tried when the ordinary LP's certificate still goes through a
#: cell to keep. In the regional sample they keep every pool total published (80 LPs: 2.6e8 units,
#: 1.6 s); over the whole demo each takes ~40 s (~7e9 units), so the budget allows about three there.
WIDE_WORK = 2e10
#: Work one wider LP may take (its iteration limit is this over its size): the demo's largest
#: would otherwise run 100 s for one certificate.
WIDE_LP_WORK = 1.5e9


def _integral(z: np.ndarray) -> np.ndarray | None:
    """Smallest integer multiple of a (near-rational) vertex, or None when it is not near-rational."""
    nz = np.abs(z) > 1e-9
    if not nz.any():
        return None
    den = 1
    for v in z[nz].tolist():
        f = Fraction(v).limit_denominator(MAX_DENOMINATOR)
        if abs(float(f) - v) > 1e-7:
            return None
        den = math.lcm(den, f.denominator)
    out = np.rint(z * den).astype(np.int64)
    out[~nz] = 0
    g = np.gcd.reduce(np.abs(out[out != 0]))
    return out // max(int(g), 1)


class LPCertificates:
    """LP certificates over one :class:`isu.suppress_box.BoxSearch` (shares its incidence and live costs)."""

    def __init__(self, search, reach: int | None = None, max_leaves: int = 1500, budget: int = BUDGET,
                 max_iterations: int = MAX_ITERATIONS):
        self.s = search
        m = search.m
        # cycles in small tables need leaves two steps away; in many dimensions one step keeps the LP small
        self.reach = reach if reach is not None else (2 if len(m.dims) <= 3 else 1)
        self.max_leaves = max_leaves
        npos = search.npos
        leaf_of = np.repeat(np.arange(npos), np.diff(m.inc_ptr[: npos + 1]))
        self.x = sparse.csc_matrix((np.ones(len(leaf_of)), (m.inc_cells[: len(leaf_of)], leaf_of)),
                                   shape=(m.n_cells, npos))
        self.calls = 0
        self.iterations = 0
        self.seconds = 0.0
        self.budget = budget
        self.wide_work = 0.0
        self.wide_budget = WIDE_WORK
        self.max_iterations = max_iterations

    @property
    def exhausted(self) -> bool:
        return self.iterations >= self.budget

    @property
    def wide_exhausted(self) -> bool:
        """The wider LPs (one more dimension of reach) have a budget of their own, counted in work
        (iterations × size: a few huge LPs cost as much time as many small ones), so that they never
        use up the budget of the ordinary ones."""
        return self.wide_work >= self.wide_budget

    def _near(self, h: int, forbid: set[int], reach: int | None = None) -> np.ndarray:
        """Positive leaves whose coordinates lie in h's group in all but ``reach`` dimensions."""
        m, s = self.s.m, self.s
        coords = m.leaf_coords[: s.npos]
        outside = np.zeros(s.npos, dtype=np.int64)
        for j, (d, c) in enumerate(zip(m.dims, m.cell_codes[h])):
            outside += ~d.mem[c][coords[:, j]]
        leaves = np.flatnonzero(outside <= (self.reach if reach is None else reach))
        leaves = leaves[~s.forbidden_leaves(leaves, forbid)]
        if len(leaves) > self.max_leaves:  # keep the nearest ones, those under h first
            leaves = leaves[np.argsort(outside[leaves], kind="stable")[: self.max_leaves]]
        return np.sort(leaves)

    def certificate(self, h: int, forbid: set[int], *, wide: bool = False):
        """(leaves, z, cells, δ) of an LP certificate for h avoiding ``forbid``, or None. ``wide``:
        leaves may leave h's group in one dimension more than the search's own reach, on the wide
        budget (``WIDE_WORK``, ``WIDE_LP_WORK``)."""
        leaves = self._near(h, forbid, self.reach + 1 if wide else None)
        if not len(leaves):
            return None
        xs = self.x[:, leaves].tocsr()
        rows = np.flatnonzero(np.diff(xs.indptr) > 0)
        if not (rows == h).any():
            return None
        xs = xs[rows]
        cost = self.s.cost[rows].astype(np.float64)
        paid = np.flatnonzero((cost > 0) & (rows != h))
        n, p = len(leaves), len(paid)
        # variables: z (n, free in [-1, 1]), u (p, ≥ 0), v (p, ≥ 0) with X_paid z − u + v = 0
        eye = sparse.identity(p, format="csr")
        a_eq = sparse.vstack([
            sparse.hstack([xs[paid], -eye, eye]),
            sparse.hstack([xs[[int(np.searchsorted(rows, h))]], sparse.csr_matrix((1, 2 * p))]),
        ]).tocsr()
        b_eq = np.zeros(p + 1)
        b_eq[-1] = 1.0
        c = np.concatenate([np.zeros(n), cost[paid], cost[paid]])
        bounds = [(-1.0, 1.0)] * n + [(0.0, None)] * (2 * p)
        self.calls += 1
        t0 = time.perf_counter()
        limit = self.max_iterations
        if wide:  # its iterations are bounded by its size
            limit = max(1, min(limit, int(WIDE_LP_WORK / max(a_eq.nnz, 1))))
        res = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs", options={"maxiter": limit})
        self.seconds += time.perf_counter() - t0
        if wide:
            self.wide_work += float(res.nit) * a_eq.nnz
        else:
            self.iterations += int(res.nit)
        if res.status != 0:
            return None
        z = _integral(res.x[:n])
        if z is None:
            return None
        keep = z != 0
        lv, zv = leaves[keep], z[keep]
        cells, delta = self.s.effect(lv, zv.astype(np.float64))
        if not (cells == h).any():
            return None
        return lv, zv.astype(np.float64), cells, delta
