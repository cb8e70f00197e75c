"""LP certificates and cells to keep: totals stay published where some certificate can avoid them."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isu.suppress import Dimension, audit, suppress
from isu.suppress_lp import _integral
from tests.test_suppress import attack, check_primary_rule, exact, frame, problems


def six_cycle():
    """3 × 3 table whose positive cells form one 6-cycle: every 2 × 2 box has an empty corner."""
    geo = Dimension.flat("geo", ["m0", "m1", "m2"])
    cat = Dimension.flat("cat", ["c0", "c1", "c2"])
    counts = np.array([[2, 9, 0], [0, 8, 7], [6, 0, 9]])
    return [geo, cat], counts


def totals(res) -> pl.DataFrame:
    return res.cells.filter((pl.col("geo") == "all") | (pl.col("cat") == "all"))


def test_without_keep_a_sparse_table_loses_its_margins():
    dims, counts = six_cycle()
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False)
    assert (totals(res)["status"] != "shown").any()


def test_keep_protects_the_primary_by_a_cycle_and_publishes_every_total():
    dims, counts = six_cycle()
    keep = pl.DataFrame({"geo": ["all", "m0", "m1", "m2", "all", "all", "all"],
                         "cat": ["all", "all", "all", "all", "c0", "c1", "c2"]})
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False, keep=keep)
    check_primary_rule(res, 5)
    assert (totals(res)["status"] == "shown").all()
    hidden = res.cells.filter(pl.col("status") != "shown")
    assert hidden.height == 6 and (hidden["value"] > 0).all()  # exactly the cycle
    assert exact(attack(res, dims)) == []
    rep = audit(res)
    assert rep["disclosed"] == 0 and rep["certificates"]["invalid"] == 0


def test_keep_never_overrides_the_primary_rule():
    dims, counts = six_cycle()
    counts[0, 0], counts[0, 1] = 1, 1  # the m0 total (1 + 1) is itself small
    keep = pl.DataFrame({"geo": ["m0"], "cat": ["all"]})
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False, keep=keep)
    check_primary_rule(res, 5)
    assert res.cells.filter((pl.col("geo") == "m0") & (pl.col("cat") == "all"))["status"].to_list() == ["primary"]
    assert exact(attack(res, dims)) == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.booleans())
def test_keeping_every_margin_stays_safe_for_outsiders_and_insiders(problem, insiders):
    dims, counts, k = problem
    names = [d.name for d in dims]
    keep = pl.DataFrame({names[0]: sorted(dims[0].groups)})  # every geography total over the other dims
    inner = frame(dims, counts, contributor=insiders)
    res = suppress(inner, dims, [("t", names)], k=k, keep=keep, contributor="who" if insiders else None)
    check_primary_rule(res, k)
    assert exact(attack(res, dims)) == []
    rep = audit(res)
    assert rep["disclosed"] == 0 and rep["certificates"]["invalid"] == 0


def test_integral_scales_a_rational_vertex_to_the_smallest_integers():
    assert _integral(np.array([0.5, -0.5, 0.0, 1.0])).tolist() == [1, -1, 0, 2]
    assert _integral(np.array([1 / 3, -2 / 3])).tolist() == [1, -2]
    assert _integral(np.zeros(3)) is None
    assert _integral(np.array([np.pi / 1000])) is None


def test_priority_decides_which_kept_cell_is_given_up():
    """Two ways to protect the lone 1: hide the grand total, or the other cycle through m1. Both touch a
    kept cell; the one with the higher priority stays published."""
    geo = Dimension.flat("geo", ["m0", "m1"])
    cat = Dimension.flat("cat", ["c0", "c1"])
    dims, counts = [geo, cat], np.array([[1, 0], [0, 9]])

    def run(grand: float, m1: float) -> dict[tuple[str, str], str]:
        keep = pl.DataFrame({"geo": ["all", "m1"], "cat": ["all", "all"], "priority": [grand, m1]})
        res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False, keep=keep)
        check_primary_rule(res, 5)
        assert exact(attack(res, dims)) == [] and audit(res)["disclosed"] == 0
        return {(g, c): s for g, c, s in res.cells.select("geo", "cat", "status").rows()}

    first = run(grand=16.0, m1=1.0)
    assert first[("all", "all")] == "shown" and first[("m1", "all")] == "secondary"
    second = run(grand=1.0, m1=16.0)
    assert second[("all", "all")] == "secondary" and second[("m1", "all")] == "shown"
