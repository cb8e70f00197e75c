"""Audit: it passes honest results and catches every kind of tampering, by each of its methods."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from isu.audit import audit
from isu.audit_exact import in_row_space, lp_intervals
from isu.suppress import Dimension, suppress


def problem(seed: int = 0, contributor: bool = False):
    munis = [f"m{i}" for i in range(5)]
    geo = {m: frozenset({m}) for m in munis} | {"r0": frozenset(munis[:2]), "r1": frozenset(munis[2:]),
                                                 "all": frozenset(munis)}
    dims = [Dimension("geo", geo), Dimension.flat("cat", ["x", "y", "z"]), Dimension.flat("sex", ["F", "M"])]
    rng = np.random.default_rng(seed)
    rows = [(m, c, s, int(rng.choice([0, 1, 2, 3, 6, 9, 14]))) for m in munis for c in "xyz" for s in "FM"]
    inner = pl.DataFrame(rows, schema=["geo", "cat", "sex", "n"], orient="row")
    if contributor:
        inner = inner.with_columns(who=pl.col("geo"))
    res = suppress(inner, dims, [("t", ["geo", "cat", "sex"])], k=5, contributor="who" if contributor else None)
    return res


def flip(res, status_from: str, status_to: str, nth: int = 0):
    cells = res.cells.with_row_index("_i")
    target = cells.filter(pl.col("status") == status_from)["_i"][nth]
    res.cells = cells.with_columns(
        status=pl.when(pl.col("_i") == target).then(pl.lit(status_to)).otherwise(pl.col("status"))).drop("_i")
    return res


def test_honest_result_passes_every_check_and_is_json():
    rep = audit(problem(1, contributor=True))
    assert rep["disclosed"] == 0
    assert rep["proof"]["unproven"] == 0 and rep["proof"]["insider_unproven"] == 0
    assert rep["certificates"]["invalid"] == 0
    assert rep["rank_test"]["ran"] and rep["rank_test"]["disclosed"] == 0
    assert rep["rank_test"]["insider_complete"] and rep["rank_test"]["insider_disclosed"] == 0
    assert rep["lp"]["ran"] and rep["lp"]["disclosed"] == 0 and rep["lp"]["narrowest_width"] > 0
    assert rep["proof"]["narrowest_width_lower_bound"] <= rep["lp"]["narrowest_width"] + 1e-9
    assert rep["primary"] + rep["secondary"] == rep["hidden"]
    json.dumps(rep)


def test_publishing_a_secondary_cell_is_caught_by_every_method():
    res = problem(2)
    assert res.secondary > 0
    rep = audit(flip(res, "secondary", "shown"))
    assert rep["disclosed"] > 0
    assert rep["certificates"]["invalid"] > 0
    assert rep["rank_test"]["disclosed"] > 0
    assert rep["lp"]["disclosed"] > 0


def test_certificates_alone_refuse_when_the_exact_tests_are_off():
    res = flip(problem(2), "secondary", "shown")
    rep = audit(res, lp_max_cells=0, rank_max_unknowns=0)
    assert not rep["rank_test"]["ran"] and not rep["lp"]["ran"]
    assert rep["proof"]["unproven"] > 0 and rep["disclosed"] > 0
    honest = audit(problem(2), lp_max_cells=0, rank_max_unknowns=0)
    assert honest["disclosed"] == 0 and honest["proof"]["proven_safe"] == honest["hidden"]


def test_showing_a_primary_cell_breaks_the_primary_rule():
    rep = audit(flip(problem(3), "primary", "shown"))
    assert rep["primary_rule_violations"] == 1 and rep["disclosed"] >= 1


def test_wrong_values_and_inconsistent_tables_are_caught():
    res = problem(4)
    res.cells = res.cells.with_columns(value=pl.when(pl.col("geo") == "all").then(pl.col("value") + 1)
                                       .otherwise(pl.col("value")))
    assert audit(res)["value_mismatches"] > 0
    res = problem(4)
    shown = res.cells.filter(pl.col("status") == "shown").head(1)
    res.cells = pl.concat([res.cells, shown.with_columns(status=pl.lit("secondary"), table=pl.lit("t2"))])
    res.tables = res.tables + [("t2", ["geo", "cat", "sex"])]
    rep = audit(res)
    assert rep["inconsistent_cells"] == 1 and rep["disclosed"] >= 1


def test_a_forged_certificate_does_not_prove_anything():
    res = problem(5)
    certs = res.certificates
    first = certs["cert"].min()
    res.certificates = certs.with_columns(z=pl.when((pl.col("cert") == first) & (pl.col("z") < 0)).then(0)
                                          .otherwise(pl.col("z"))).filter(pl.col("z") != 0)
    rep = audit(res, lp_max_cells=0)
    assert rep["certificates"]["invalid"] >= 1
    assert rep["disclosed"] == 0  # the rank test still clears what the forged certificate claimed


def test_modular_rank_test_matches_a_known_case():
    a = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])  # rows, columns of a 2×2 table, one cell
    h = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]])
    assert in_row_space(a, h).tolist() == [False, False, True]
    assert in_row_space(np.vstack([a, [[0, 1, 0, 1]]]), h).tolist() == [False, False, True]  # rank stays 3
    assert in_row_space(np.vstack([a, [[0, 1, 0, 0]]]), h).tolist() == [True, True, True]


def test_lp_intervals_of_a_two_by_two_table():
    a = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]], dtype=float)
    x = np.array([2, 3, 4, 5])
    lo, hi = lp_intervals(a, a @ x, np.eye(4))
    assert lo.tolist() == pytest.approx([0, 0, 1, 3]) and hi.tolist() == pytest.approx([5, 5, 6, 8])


def sparse_problem(seed: int):
    dims = [Dimension.flat("geo", ["a", "b", "c", "d"]), Dimension.flat("cat", ["x", "y", "z"]),
            Dimension.flat("sex", ["F", "M"])]
    rng = np.random.default_rng(seed)
    rows = [(g, c, s, int(rng.choice([0, 0, 0, 1, 2, 30]))) for g in "abcd" for c in "xyz" for s in "FM"]
    inner = pl.DataFrame(rows, schema=["geo", "cat", "sex", "n"], orient="row")
    res = suppress(inner, dims, [("gc", ["geo", "cat"]), ("gs", ["geo", "sex"])], k=5, onesided=True,
                   weights="balanced")
    return res, inner


def test_one_sided_certificates_pass_every_check_and_a_reversed_one_is_refused():
    res, inner = sparse_problem(4)
    zero_rows = res.certificates.join(inner.filter(pl.col("n") > 0), on=["geo", "cat", "sex"], how="anti")
    assert zero_rows.height > 0 and (zero_rows["z"] > 0).all()  # zero inner cells are only ever raised
    rep = audit(res)
    assert rep["disclosed"] == 0 and rep["certificates"]["invalid"] == 0
    assert rep["rank_test"]["ran"] and rep["lp"]["ran"] and rep["lp"]["disclosed"] == 0
    bad = zero_rows["cert"][0]
    res.certificates = res.certificates.with_columns(
        z=pl.when(pl.col("cert") == bad).then(-pl.col("z")).otherwise(pl.col("z")))
    assert audit(res, lp_max_cells=0, rank_max_unknowns=0)["certificates"]["invalid"] >= 1
