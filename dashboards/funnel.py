"""Binomial control limits for funnel plots (Spiegelhalter 2005, "Funnel plots for comparing
institutional performance", Stat Med 24:1185).

A funnel plot puts each municipality's share against its number of clients, with limits around
the overall share that narrow as n grows: a point outside them differs from the overall share by
more than chance would plausibly give. Unlike a league table it does not rank small units on noise.
The exact binomial quantile is a step function of n; the interpolation of section A.1.1 of the paper
makes the limits smooth and keeps their coverage.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEVELS", "P_STEP", "control_limits", "limit_table", "n_grid"]

#: Two-sided coverage of the drawn limits: about 2 and 3 standard errors.
LEVELS = (0.95, 0.998)
#: Spacing of the overall shares in ``limit_table``; the page interpolates between neighbours.
P_STEP = 0.01


def n_grid(n_max: float, points: int = 30) -> np.ndarray:
    """Integer sizes from 1 to a little beyond the largest unit, denser where the funnel bends."""
    top = max(int(np.ceil(float(n_max) * 1.15)), 2)
    return np.unique(np.round(np.geomspace(1, top, points)).astype(int))


def control_limits(p0: float | np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits (as shares, clipped to 0..1) around ``p0`` at sizes ``n``.

    ``p0`` may be an array of shape (k, 1) to get k funnels over the same sizes in one call.
    """
    from scipy import stats  # imported on use: keeps the CLI's start-up short

    n = np.asarray(n, dtype=int)
    p0 = np.clip(np.asarray(p0, dtype=float), 1e-9, 1 - 1e-9)
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        r = stats.binom.ppf(q, n, p0)
        alpha = (stats.binom.cdf(r, n, p0) - q) / stats.binom.pmf(r, n, p0)
        out.append(np.clip((r - alpha) / n, 0.0, 1.0))
    return out[0], out[1]


def limit_table(n_max: float, levels: tuple[float, ...] = LEVELS) -> dict[str, list]:
    """Limits for every overall share 0, 0.01, …, 1 over one grid of sizes.

    One table serves every funnel on the page (each filter combination has its own overall share),
    so the page stays small however many combinations there are: it interpolates linearly between
    the two rows around its share, which is exact to well under a percentage point.
    """
    grid = n_grid(n_max)
    p0 = np.linspace(0.0, 1.0, round(1 / P_STEP) + 1).reshape(-1, 1)
    table: dict[str, list] = {"p_step": P_STEP, "n": grid.tolist()}
    for level in levels:
        lo, hi = control_limits(p0, grid, level)
        tag = f"{level * 100:g}".replace(".", "")
        table[f"lo{tag}"] = [_compact(row) for row in lo]
        table[f"hi{tag}"] = [_compact(row) for row in hi]
    return table


def _compact(values: np.ndarray) -> list[float | int]:
    """Three decimals, whole numbers without a decimal point: the table is embedded in the page."""
    return [int(v) if v.is_integer() else v for v in np.round(values, 3).tolist()]
