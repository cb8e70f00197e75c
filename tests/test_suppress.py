"""Suppression engine: primary rule, attacks by an LP attacker written here (not the library's audit).

The attacker knows every shown cell, that counts are non-negative, and (for insider tests) the values
of the leaves it owns; it minimises and maximises each hidden cell with scipy HiGHS. A hidden cell is
recovered exactly when min == max.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from isu.errors import IsuError
from isu.suppress import Dimension, audit, suppress


def geo_dim(n_munis: int, n_regions: int, pool: bool = False) -> Dimension:
    munis = [f"m{i}" for i in range(n_munis)]
    groups = {m: frozenset({m}) for m in munis} | {"all": frozenset(munis)}
    for r in range(n_regions):
        groups[f"r{r}"] = frozenset(munis[r::n_regions])
    if pool and n_munis >= 3:
        groups["pool"] = frozenset({munis[0], munis[1], munis[-1]})  # cuts across regions
    return Dimension("geo", groups)


def frame(dims: list[Dimension], counts: np.ndarray, contributor: bool = False) -> pl.DataFrame:
    leaves = [sorted(c for c, g in d.groups.items() if g == {c}) for d in dims]
    rows = [(*combo, int(n)) for combo, n in zip(itertools.product(*leaves), counts.ravel())]
    df = pl.DataFrame(rows, schema=[*(d.name for d in dims), "n"], orient="row")
    return df.with_columns(who=pl.col("geo")) if contributor else df


def attack(res, dims: list[Dimension], known: dict[tuple, int] | None = None) -> dict[tuple, tuple[float, float]]:
    """LP interval of every hidden cell, given shown cells, x ≥ 0 and optionally some known leaves."""
    names = [d.name for d in dims]
    leaves = [sorted(c for c, g in d.groups.items() if g == {c}) for d in dims]
    combos = list(itertools.product(*leaves))
    col = {c: i for i, c in enumerate(combos)}

    def row(cell):
        r = np.zeros(len(combos))
        for combo in itertools.product(*(sorted(d.groups[c]) for d, c in zip(dims, cell))):
            r[col[combo]] = 1.0
        return r

    cells = res.cells.unique(subset=names).sort(names)
    shown = cells.filter(pl.col("status") == "shown")
    a = [row(r[:len(names)]) for r in shown.select(names).rows()]
    b = list(shown["value"].to_numpy().astype(float))
    for leaf, v in (known or {}).items():
        e = np.zeros(len(combos))
        e[col[leaf]] = 1.0
        a.append(e)
        b.append(float(v))
    out = {}
    eq = {"A_eq": np.array(a), "b_eq": b} if a else {}  # nothing shown and nothing known: no equations
    for cell in cells.filter(pl.col("status") != "shown").select(names).rows():
        c = row(cell)
        lo = linprog(c, **eq, bounds=(0, None), method="highs")
        hi = linprog(-c, **eq, bounds=(0, None), method="highs")
        assert lo.status == 0
        out[cell] = (lo.fun, np.inf if hi.status == 3 else -hi.fun)
    return out


def exact(intervals: dict) -> list:
    return [c for c, (lo, hi) in intervals.items() if hi - lo < 1e-7]


def check_primary_rule(res, k: int, zeros_hidden: bool | None = None) -> None:
    """Counts 1..k−1 are primary; zeros may be secondary only under one-sided certificates (no contributors)."""
    v, s = res.cells["value"].to_numpy(), res.cells["status"].to_numpy()
    assert ((s == "primary") == ((v >= 1) & (v < k))).all()
    assert (res.contributor is None if zeros_hidden is None else zeros_hidden) or (s[v == 0] == "shown").all()


@st.composite
def problems(draw):
    n_munis = draw(st.integers(3, 5))
    n_regions = draw(st.integers(1, 2))
    dims = [geo_dim(n_munis, n_regions, pool=draw(st.booleans())),
            Dimension.flat("cat", [f"c{i}" for i in range(draw(st.integers(2, 4)))])]
    if draw(st.booleans()):
        dims.append(Dimension.flat("sex", ["F", "M"]))
    shape = [sum(1 for c, g in d.groups.items() if g == {c}) for d in dims]
    weights = draw(st.sampled_from([(0.3, 0.3, 0.2, 0.2), (0.5, 0.3, 0.1, 0.1), (0.1, 0.2, 0.3, 0.4)]))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    bucket = rng.choice(4, size=shape, p=weights)
    counts = np.choose(bucket, [np.zeros(shape, int), rng.integers(1, 3, shape), rng.integers(3, 6, shape),
                                rng.integers(6, 30, shape)])
    return dims, counts, draw(st.sampled_from([3, 5]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_lp_attacker_recovers_no_hidden_cell(problem):
    dims, counts, k = problem
    names = [d.name for d in dims]
    res = suppress(frame(dims, counts), dims, [("t", names)], k=k, singletons=False)
    check_primary_rule(res, k)
    assert exact(attack(res, dims)) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.booleans())
def test_one_sided_certificates_resist_the_lp_attacker_and_the_audit(problem, linked):
    """Zero inner cells raised by one-sided certificates are unknowns to the attacker, not known zeros."""
    dims, counts, k = problem
    names = [d.name for d in dims]
    tables = [("a", names[:-1]), ("b", names[1:])] if linked and len(names) > 1 else [("t", names)]
    res = suppress(frame(dims, counts), dims, tables, k=k, onesided=True)
    check_primary_rule(res, k, zeros_hidden=True)
    assert exact(attack(res, dims)) == []
    rep = audit(res, rank_max_unknowns=0, lp_max_cells=0)
    assert rep["disclosed"] == 0 and rep["certificates"]["invalid"] == 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_insiders_recover_nothing_with_contributors_and_singletons(problem):
    dims, counts, k = problem
    names = [d.name for d in dims]
    inner = frame(dims, counts, contributor=True)
    res = suppress(inner, dims, [("t", names)], k=k, contributor="who", singletons=True)
    check_primary_rule(res, k)
    assert exact(attack(res, dims)) == []
    leaves = inner.filter(pl.col("n") > 0)
    for who in leaves["who"].unique().sort().to_list()[:2]:
        mine = {r[:-2]: r[-2] for r in leaves.filter(pl.col("who") == who).rows()}
        # zeros of the insider's municipality are known to it as well
        own_zero = {r[:-2]: 0 for r in inner.filter((pl.col("who") == who) & (pl.col("n") == 0)).rows()}
        found = exact(attack(res, dims, mine | own_zero))
        theirs = [c for c in found if not _own(c, dims, who, inner)]
        assert theirs == [], f"insider {who} recovers {theirs}"
    for one in leaves.filter(pl.col("n") == 1).rows()[:1]:
        found = exact(attack(res, dims, {one[:-2]: 1}))
        assert [c for c in found if not _only_leaf(c, dims, one[:-2], inner)] == []


def _under(cell, dims, inner) -> pl.DataFrame:
    for d, c in zip(dims, cell):
        inner = inner.filter(pl.col(d.name).is_in(sorted(d.groups[c])))
    return inner.filter(pl.col("n") > 0)


def _only_leaf(cell, dims, leaf, inner) -> bool:
    """Is the singleton's leaf the only non-zero leaf under ``cell`` (its own cell)?"""
    under = _under(cell, dims, inner)
    return under.height == 1 and under.row(0)[: len(dims)] == tuple(leaf)


def _own(cell, dims, who, inner) -> bool:
    """Is every non-zero leaf under ``cell`` the insider's own?"""
    return (_under(cell, dims, inner)["who"] == who).all()


def test_row_total_minus_shown_cells_does_not_reveal():
    dims = [Dimension.flat("geo", ["a", "b", "c"]), Dimension.flat("cat", ["x", "y", "z"])]
    counts = np.array([[2, 30, 40], [25, 35, 45], [50, 60, 70]])
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False)
    row = res.cells.filter(pl.col("geo") == "a")
    assert row.filter(pl.col("cat") == "x")["status"].item() == "primary"
    assert (row["status"] != "shown").sum() >= 2  # total − shown cells no longer gives the 2
    assert exact(attack(res, dims)) == []


def test_region_minus_other_municipalities_does_not_reveal():
    dims = [geo_dim(4, 2), Dimension.flat("cat", ["x", "y"])]
    counts = np.array([[3, 20], [30, 40], [50, 60], [70, 80]])  # m0 (region r0 = m0, m2) has a 3
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False)
    line = res.cells.filter((pl.col("cat") == "x") & pl.col("geo").is_in(["r0", "m0", "m2"]))
    assert (line["status"] != "shown").sum() >= 2
    assert exact(attack(res, dims)) == []


def test_two_single_contributor_cells_in_one_row_do_not_reveal_each_other():
    dims = [geo_dim(4, 1), Dimension.flat("cat", ["x", "y", "z"])]
    counts = np.array([[2, 40, 50], [3, 41, 51], [0, 42, 52], [0, 43, 53]])  # only m0 and m1 have cat x
    inner = frame(dims, counts, contributor=True)
    res = suppress(inner, dims, [("t", ["geo", "cat"])], k=5, contributor="who", singletons=False)
    for me, other in (("m0", ("m1", "x")), ("m1", ("m0", "x"))):
        known = {r[:2]: r[2] for r in inner.filter(pl.col("who") == me).rows()}
        assert other not in exact(attack(res, dims, known))
    assert exact(attack(res, dims)) == []


def test_cell_shared_by_two_linked_tables_is_consistent_and_safe():
    dims = [geo_dim(4, 2), Dimension.flat("cat", ["x", "y"]), Dimension.flat("sex", ["F", "M"])]
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 9, size=(4, 2, 2))
    counts[0] = [[1, 0], [0, 2]]  # a small municipality: its total (geo m0, all, all) is 3
    tables = [("by_cat", ["geo", "cat"]), ("by_sex", ["geo", "sex"])]
    res = suppress(frame(dims, counts), dims, tables, k=5, singletons=False)
    shared = res.cells.filter((pl.col("cat") == "all") & (pl.col("sex") == "all"))
    assert shared.group_by("geo").agg(pl.col("status").n_unique()).filter(pl.col("status") > 1).is_empty()
    assert set(shared["table"]) == {"by_cat", "by_sex"}
    assert not ((res.cells["cat"] != "all") & (res.cells["sex"] != "all")).any()  # no cross cells published
    assert exact(attack(res, dims)) == []


def test_unpublished_codes_are_left_out_and_not_protected():
    """A leaf code only its groups publish (a record on two instruments): its small cells are neither
    shown nor protected, they do not appear in the result, and the groups that sum them stay safe."""
    out = Dimension("out", {"a": frozenset({"a"}), "b": frozenset({"b"}), "ab": frozenset({"ab"}),
                            "A": frozenset({"a", "ab"}), "B": frozenset({"b", "ab"}), "all": frozenset({"a", "b", "ab"})})
    dims = [geo_dim(4, 2), out]
    counts = np.array([[9, 1, 8], [7, 2, 6], [5, 3, 9], [8, 1, 7]])  # leaves a, ab, b: the "ab" ones are all small
    tables = [("t", ["geo", "out"])]
    plain = suppress(frame(dims, counts), dims, tables, k=5, singletons=False)
    res = suppress(frame(dims, counts), dims, tables, k=5, singletons=False, unpublished={"out": ["ab"]})
    assert "ab" not in set(res.cells["out"]) and plain.primary > res.primary == 0
    assert res.secondary == 0 and set(res.cells["status"]) == {"shown"}
    assert audit(res)["disclosed"] == 0
    counts[1, 0] = 2  # now a published cell is small: it is protected without "ab" being shown
    res = suppress(frame(dims, counts), dims, tables, k=5, singletons=False, unpublished={"out": ["ab"]})
    assert res.primary >= 1 and "ab" not in set(res.cells["out"])
    assert exact(attack(res, dims)) == [] and audit(res)["disclosed"] == 0
    with pytest.raises(IsuError, match="cannot be unpublished"):
        suppress(frame(dims, counts), dims, tables, k=5, unpublished={"out": ["all"]})
    with pytest.raises(IsuError, match="not codes"):
        suppress(frame(dims, counts), dims, tables, k=5, unpublished={"out": ["zz"]})


def test_frequency_singleton_cannot_subtract_itself():
    dims = [Dimension.flat("geo", ["a", "b", "c"]), Dimension.flat("cat", ["x", "y", "z"])]
    counts = np.array([[1, 3, 40], [30, 35, 45], [50, 60, 70]])
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=True)
    found = exact(attack(res, dims, {("a", "x"): 1}))
    assert [c for c in found if c != ("a", "x")] == []


def test_forced_cells_are_hidden_as_primary():
    dims = [Dimension.flat("geo", ["a", "b", "c"]), Dimension.flat("cat", ["x", "y"])]
    counts = np.array([[10, 20], [30, 40], [50, 60]])
    forced = pl.DataFrame({"geo": ["b"], "cat": ["y"]})
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, forced=forced)
    assert res.cells.filter((pl.col("geo") == "b") & (pl.col("cat") == "y"))["status"].item() == "primary"
    assert res.secondary >= 3
    assert exact(attack(res, dims)) == []


def test_zero_cells_are_published_and_no_suppression_when_nothing_is_small():
    dims = [Dimension.flat("geo", ["a", "b"]), Dimension.flat("cat", ["x", "y"])]
    res = suppress(frame(dims, np.array([[0, 20], [30, 40]])), dims, [("t", ["geo", "cat"])], k=5)
    assert set(res.cells["status"]) == {"shown"}
    assert res.cells.filter((pl.col("geo") == "a") & (pl.col("cat") == "x"))["value"].item() == 0


def test_same_input_gives_same_output():
    dims = [geo_dim(6, 2, pool=True), Dimension.flat("cat", ["x", "y", "z"]), Dimension.flat("sex", ["F", "M"])]
    counts = np.random.default_rng(3).integers(0, 7, size=(6, 3, 2))
    inner = frame(dims, counts, contributor=True)
    a = suppress(inner, dims, [("t", ["geo", "cat", "sex"])], k=5, contributor="who")
    b = suppress(inner.sample(fraction=1.0, shuffle=True, seed=1), dims, [("t", ["geo", "cat", "sex"])], k=5,
                 contributor="who")
    assert a.cells.equals(b.cells)
    assert a.certificates.equals(b.certificates)


@pytest.mark.parametrize("bad, message", [
    (pl.DataFrame({"geo": ["zz"], "cat": ["x"], "n": [3]}), "not leaf codes"),
    (pl.DataFrame({"geo": ["a"], "cat": ["x"], "n": [-1]}), "negative"),
    (pl.DataFrame({"geo": ["a"], "cat": ["x"], "n": [1.5]}), "integer"),
    (pl.DataFrame({"geo": ["a"], "n": [3]}), "lacks column"),
])
def test_bad_input_is_one_clear_error(bad, message):
    dims = [Dimension.flat("geo", ["a", "b"]), Dimension.flat("cat", ["x", "y"])]
    with pytest.raises(IsuError, match=message):
        suppress(bad, dims, [("t", ["geo", "cat"])])


def test_unknown_table_dimension_is_an_error():
    dims = [Dimension.flat("geo", ["a", "b"])]
    with pytest.raises(IsuError, match="unknown dimension"):
        suppress(pl.DataFrame({"geo": ["a"], "n": [3]}), dims, [("t", ["geo", "age"])])


def test_numpy_fallback_without_the_compiled_kernel_is_safe_too(monkeypatch):
    import isu.suppress_box as box

    monkeypatch.setattr(box.kernel, "AVAILABLE", False)
    dims = [geo_dim(5, 2, pool=True), Dimension.flat("cat", ["x", "y", "z"])]
    counts = np.random.default_rng(11).integers(0, 7, size=(5, 3))
    res = suppress(frame(dims, counts), dims, [("t", ["geo", "cat"])], k=5, singletons=False)
    check_primary_rule(res, 5)
    assert res.secondary > 0 and exact(attack(res, dims)) == []
