"""Statistics against scipy and hand-computed values."""

import math

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from isu import stats


def test_mean_ci_matches_ttest_rel():
    rng = np.random.default_rng(3)
    t0 = rng.normal(2, 1, 40)
    t1 = t0 + rng.normal(-0.3, 0.8, 40)
    d = t1 - t0
    mean, sd, lo, hi = stats.mean_ci([len(d)], [d.sum()], [(d * d).sum()])
    ci = sps.ttest_rel(t1, t0).confidence_interval(0.95)
    assert mean[0] == pytest.approx(d.mean())
    assert sd[0] == pytest.approx(d.std(ddof=1))
    assert (lo[0], hi[0]) == pytest.approx((ci.low, ci.high))


def test_mean_ci_undefined_for_small_n():
    mean, sd, lo, hi = stats.mean_ci([0, 1], [0.0, 2.0], [0.0, 4.0])
    assert math.isnan(mean[0]) and mean[1] == 2.0
    assert math.isnan(sd[1]) and math.isnan(lo[1]) and math.isnan(hi[1])


def test_hedges_correction_exact_and_approximation():
    # J(4) = Γ(2) / (√2 · Γ(1.5)) by hand
    assert stats.hedges_correction(4) == pytest.approx(1 / (math.sqrt(2) * math.gamma(1.5)))
    assert stats.hedges_correction(2) == pytest.approx(1 / math.sqrt(math.pi))
    for df in (10, 30, 200):
        assert stats.hedges_correction(df) == pytest.approx(1 - 3 / (4 * df - 1), abs=5e-4)


def test_d_z_with_hedges_by_hand():
    d = np.array([1.0, 2, 3, 4, 5])  # mean 3, SD √2.5, n 5 → df 4
    expected = 3 / math.sqrt(2.5) * (1 / (math.sqrt(2) * math.gamma(1.5)))
    assert stats.d_z([5], [d.mean()], [d.std(ddof=1)])[0] == pytest.approx(expected)
    assert expected == pytest.approx(1.5139, abs=1e-4)
    assert math.isnan(stats.d_z([5], [1.0], [0.0])[0])  # no spread: undefined


@pytest.mark.parametrize("x,n", [(0, 10), (3, 10), (10, 10), (17, 123), (1, 5)])
def test_wilson_matches_scipy(x, n):
    ci = sps.binomtest(x, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson([x], [n])
    assert (lo[0], hi[0]) == pytest.approx((ci.low, ci.high))


def test_rci_threshold_and_direction():
    s_diff = stats.rci_s_diff(1.0, 0.8)
    assert s_diff == pytest.approx(math.sqrt(2) * math.sqrt(0.2))  # 0.6325; reliable change > 1.24 points
    t0, t1 = [3, 3, 3, 3], [1, 2, 4, 5]
    assert list(stats.classify_change(t0, t1, s_diff, higher_is_better=False)) == ["improved", "unchanged", "unchanged", "deteriorated"]
    assert list(stats.classify_change(t0, t1, s_diff, higher_is_better=True)) == ["deteriorated", "unchanged", "unchanged", "improved"]
    assert math.isnan(stats.rci_s_diff(1.0, 1.0))


def test_finish_statistics_and_undefined_cells():
    cells = pl.DataFrame({
        "t0_n": [8, 0], "paired_n": [5, 0], "attrition_n": [3, 0], "improved_n": [2, 0], "unchanged_n": [2, 0],
        "deteriorated_n": [1, 0], "paired_sum_t0": [15.0, None], "paired_sum_t1": [10.0, None],
        "paired_sumsq_t0": [47.0, None], "paired_sumsq_t1": [24.0, None], "sum_change": [-5.0, None], "sumsq_change": [11.0, None], "dropouts_sum_t0": [9.0, None],
    })
    out = stats.finish(cells)
    row = out.row(0, named=True)
    assert row["attrition_rate"] == pytest.approx(3 / 8)
    assert (row["mean_t0"], row["mean_t1"], row["mean_change"]) == pytest.approx((3.0, 2.0, -1.0))
    assert row["completers_mean_t0"] == 3.0 and row["dropouts_mean_t0"] == 3.0
    assert row["share_improved"] == pytest.approx(0.4) and row["share_deteriorated"] == pytest.approx(0.2)
    sd = math.sqrt((11 - 25 / 5) / 4)
    assert row["d_z"] == pytest.approx(-1 / sd * stats.hedges_correction(4))
    assert row["change_ci_low"] == pytest.approx(-1 - sps.t.ppf(0.975, 4) * sd / math.sqrt(5))
    sd0, sd1 = math.sqrt((47 - 15 * 3) / 4), math.sqrt((24 - 10 * 2) / 4)
    assert row["mean_t0_ci_low"] == pytest.approx(3 - sps.t.ppf(0.975, 4) * sd0 / math.sqrt(5))
    assert row["mean_t1_ci_high"] == pytest.approx(2 + sps.t.ppf(0.975, 4) * sd1 / math.sqrt(5))
    assert all(v is None for k, v in out.row(1, named=True).items() if k in stats.STATISTICS)
