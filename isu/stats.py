"""Before/after statistics, finished vectorised from per-cell sums (numpy/scipy, no per-cell loops).

DuckDB computes counts, sums and sums of squares per published cell (:mod:`isu.aggregate`); this
module turns them into means, t-based confidence intervals (the same as ``scipy.stats.ttest_rel``
on T1 vs T0), the paired effect size d_z with Hedges' small-sample correction, Wilson intervals for
shares, and holds the reliable change index (Jacobson & Truax) used to classify each record.
Signs follow T1 − T0 (raw instrument units); whether that is better depends on the instrument.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = [
    "COUNT_LABELS",
    "RCI_Z",
    "STATISTICS",
    "Statistic",
    "classify_change",
    "d_z",
    "finish",
    "hedges_correction",
    "mean_ci",
    "rci_s_diff",
    "wilson",
]

#: |RC| above this is a reliable change (two-sided 5 %).
RCI_Z = 1.96


def rci_s_diff(reference_sd: float, reliability: float) -> float:
    """S_diff = √2 · SE, SE = SD · √(1 − r_xx) (Jacobson & Truax 1991). NaN if r_xx is not in [0, 1)."""
    if not 0 <= reliability < 1:
        return float("nan")
    return float(np.sqrt(2.0) * reference_sd * np.sqrt(1.0 - reliability))


def classify_change(t0, t1, s_diff: float, higher_is_better: bool) -> np.ndarray:
    """'improved' / 'unchanged' / 'deteriorated' per record (the SQL in :mod:`isu.aggregate` agrees)."""
    rc = (np.asarray(t1, float) - np.asarray(t0, float)) * (1.0 if higher_is_better else -1.0) / s_diff
    return np.where(rc > RCI_Z, "improved", np.where(rc < -RCI_Z, "deteriorated", "unchanged"))


def mean_ci(n, total, sumsq, level: float = 0.95):
    """Mean, sample SD and t-based CI from n, Σx and Σx² (arrays). Undefined entries are NaN."""
    n, total, sumsq = (np.asarray(a, float) for a in (n, total, sumsq))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
        var = np.where(n > 1, np.maximum(sumsq - total * mean, 0.0) / (n - 1), np.nan)
        sd = np.sqrt(var)
        from scipy import stats  # imported on use: it costs every CLI command a second at start-up

        half = stats.t.ppf(0.5 + level / 2, np.where(n > 1, n - 1, np.nan)) * sd / np.sqrt(n)
    return mean, sd, mean - half, mean + half


def hedges_correction(df):
    """Exact J(df) = Γ(df/2) / (√(df/2) Γ((df−1)/2)); ≈ 1 − 3/(4·df − 1)."""
    df = np.asarray(df, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        from scipy import special

        return np.where(df > 1, np.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / np.sqrt(df / 2),
                        np.where(df == 1, 0.0, np.nan))


def d_z(n, mean_change, sd_change):
    """Paired effect size d_z = mean change / SD of change, Hedges-corrected with df = n − 1."""
    n, m, s = (np.asarray(a, float) for a in (n, mean_change, sd_change))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, m / s * hedges_correction(n - 1), np.nan)


def wilson(x, n, level: float = 0.95):
    """Wilson score interval for x successes out of n (arrays); NaN where n == 0."""
    x, n = np.asarray(x, float), np.asarray(n, float)
    from scipy import stats

    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z / denom * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        ok = n > 0
        return np.where(ok, centre - half, np.nan), np.where(ok, centre + half, np.nan)


@dataclass(frozen=True)
class Statistic:
    """A published statistic: labels, the counts that must be shown and those that must be ≥ k."""

    label_sv: str
    label_en: str
    shown: tuple[str, ...] = ("paired_n",)
    at_least_k: tuple[str, ...] = ("paired_n",)


_SHARE = ("paired_n",)
STATISTICS = {
    "attrition_rate": Statistic("Andel bortfall", "Attrition rate", ("attrition_n", "t0_n", "paired_n")),
    "mean_t0": Statistic("Medelvärde före (T0), parade", "Mean at T0 (paired)"),
    "mean_t1": Statistic("Medelvärde efter (T1), parade", "Mean at T1 (paired)"),
    "mean_t0_ci_low": Statistic("Medelvärde före, 95 % KI nedre", "Mean at T0, 95% CI lower"),
    "mean_t0_ci_high": Statistic("Medelvärde före, 95 % KI övre", "Mean at T0, 95% CI upper"),
    "mean_t1_ci_low": Statistic("Medelvärde efter, 95 % KI nedre", "Mean at T1, 95% CI lower"),
    "mean_t1_ci_high": Statistic("Medelvärde efter, 95 % KI övre", "Mean at T1, 95% CI upper"),
    "mean_change": Statistic("Medelförändring (T1 − T0)", "Mean change (T1 − T0)"),
    "change_ci_low": Statistic("Medelförändring, 95 % KI nedre", "Mean change, 95% CI lower"),
    "change_ci_high": Statistic("Medelförändring, 95 % KI övre", "Mean change, 95% CI upper"),
    "d_z": Statistic("Effektstorlek d_z (Hedges-korrigerad)", "Effect size d_z (Hedges-corrected)"),
    "share_improved": Statistic("Andel reliabelt förbättrade", "Share reliably improved", ("improved_n", *_SHARE)),
    "share_improved_ci_low": Statistic("Andel förbättrade, 95 % KI nedre (Wilson)", "Share improved, 95% CI lower (Wilson)",
                                       ("improved_n", *_SHARE)),
    "share_improved_ci_high": Statistic("Andel förbättrade, 95 % KI övre (Wilson)", "Share improved, 95% CI upper (Wilson)",
                                        ("improved_n", *_SHARE)),
    "share_unchanged": Statistic("Andel oförändrade", "Share unchanged", ("unchanged_n", *_SHARE)),
    "share_deteriorated": Statistic("Andel reliabelt försämrade", "Share reliably deteriorated", ("deteriorated_n", *_SHARE)),
    "completers_mean_t0": Statistic("Medelvärde före, fullföljare", "Mean at T0, completers"),
    "dropouts_mean_t0": Statistic("Medelvärde före, bortfall", "Mean at T0, dropouts", ("attrition_n", "paired_n"),
                                  ("attrition_n", "paired_n")),
}

COUNT_LABELS = {
    "records": ("Antal uppföljningsposter", "Follow-up records"),
    "clients": ("Antal unika klienter", "Distinct clients"),
    "t0_n": ("Antal med mätning före (T0)", "Records with a T0 measurement"),
    "paired_n": ("Antal med mätning före och efter (T0 och T1)", "Records with T0 and T1 (paired n)"),
    "attrition_n": ("Bortfall: T0 men ingen T1", "Attrition: T0 but no T1"),
    "no_t0_n": ("Antal utan mätning före (T0) på något instrument", "Records with no T0 measurement on any instrument"),
    "improved_n": ("Antal reliabelt förbättrade", "Reliably improved"),
    "unchanged_n": ("Antal oförändrade", "Unchanged"),
    "deteriorated_n": ("Antal reliabelt försämrade", "Reliably deteriorated"),
}


def finish(cells: pl.DataFrame, level: float = 0.95) -> pl.DataFrame:
    """Add every statistic in ``STATISTICS`` (null where undefined) to per-cell sums from the aggregation."""
    col = lambda name: cells[name].cast(pl.Float64).to_numpy()
    n, t0n, att = col("paired_n"), col("t0_n"), col("attrition_n")
    mean_change, sd_change, lo, hi = mean_ci(n, col("sum_change"), col("sumsq_change"), level)
    mean_t0, _, t0_lo, t0_hi = mean_ci(n, col("paired_sum_t0"), col("paired_sumsq_t0"), level)
    mean_t1, _, t1_lo, t1_hi = mean_ci(n, col("paired_sum_t1"), col("paired_sumsq_t1"), level)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = {
            "attrition_rate": np.where(t0n > 0, att / t0n, np.nan),
            "mean_t0": mean_t0, "mean_t0_ci_low": t0_lo, "mean_t0_ci_high": t0_hi,
            "mean_t1": mean_t1, "mean_t1_ci_low": t1_lo, "mean_t1_ci_high": t1_hi,
            "mean_change": mean_change, "change_ci_low": lo, "change_ci_high": hi,
            "d_z": d_z(n, mean_change, sd_change),
            "share_improved": np.where(n > 0, col("improved_n") / n, np.nan),
            "share_unchanged": np.where(n > 0, col("unchanged_n") / n, np.nan),
            "share_deteriorated": np.where(n > 0, col("deteriorated_n") / n, np.nan),
            "completers_mean_t0": mean_t0,
            "dropouts_mean_t0": np.where(att > 0, col("dropouts_sum_t0") / att, np.nan),
        }
    values["share_improved_ci_low"], values["share_improved_ci_high"] = wilson(col("improved_n"), n, level)
    return cells.with_columns(pl.Series(name, values[name], dtype=pl.Float64).fill_nan(None) for name in STATISTICS)
