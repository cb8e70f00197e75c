"""Exact rank test (modular Gaussian elimination) and LP intervals for small suppression problems.

Why modular arithmetic: deciding "is this hidden cell a linear combination of published cells" needs
exact arithmetic; floating-point rank tests need a tolerance that can be wrong either way. Elimination
modulo a prime is exact. It can only differ from the rational answer when the prime divides certain
minors of the 0/1 matrix; we use two 31-bit primes and call a cell disclosed if either says so, so a
wrong "safe" needs both primes to divide those minors. The work is O(unknowns² · rows): small tables only.

LP intervals (scipy HiGHS): min and max of each hidden cell over all non-negative real inner tables
that reproduce every published cell; width 0 is a disclosure (integrality is not used by the attacker).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

__all__ = ["PRIMES", "in_row_space", "lp_intervals"]

PRIMES = (2147483647, 2147483629)


def _in_span_mod(a: np.ndarray, h: np.ndarray, p: int) -> np.ndarray:
    m = a.shape[0]
    mat = np.vstack([a, h]).astype(np.int64) % p
    used = np.zeros(m, dtype=bool)
    for col in range(mat.shape[1]):
        cand = np.flatnonzero((mat[:m, col] != 0) & ~used)
        if not len(cand):
            continue
        r = cand[0]
        used[r] = True
        mat[r] = (mat[r] * pow(int(mat[r, col]), p - 2, p)) % p
        f = mat[:, col].copy()
        f[r] = 0
        nz = np.flatnonzero(f)
        if len(nz):
            mat[nz] = (mat[nz] - np.outer(f[nz], mat[r]) % p) % p
    return ~mat[m:].any(axis=1)


def in_row_space(published: np.ndarray, hidden: np.ndarray) -> np.ndarray:
    """For each row of ``hidden``: is it a linear combination of the rows of ``published``?"""
    if hidden.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    if published.shape[0] == 0 or hidden.shape[1] == 0:
        return ~hidden.any(axis=1)
    out = np.zeros(hidden.shape[0], dtype=bool)
    for p in PRIMES:
        out |= _in_span_mod(published, hidden, p)
    return out


def lp_intervals(published: np.ndarray, values: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of each hidden row · x subject to published · x = values, x ≥ 0."""
    a = csr_matrix(published.astype(np.float64))
    lo = np.zeros(hidden.shape[0])
    hi = np.zeros(hidden.shape[0])
    for i, row in enumerate(hidden.astype(np.float64)):
        for sign, out in ((1.0, lo), (-1.0, hi)):
            r = linprog(sign * row, A_eq=a, b_eq=values.astype(np.float64), bounds=(0, None), method="highs")
            if r.status == 3:  # unbounded above
                out[i] = np.inf
            elif r.status != 0:
                raise RuntimeError(f"LP audit failed for a hidden cell: {r.message}")
            else:
                out[i] = sign * r.fun
    return lo, hi
