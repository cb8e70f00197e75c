"""Publication: primary and secondary statuses, statistics rules, the records/t0_n link, audit refusal,
files, determinism."""

import json
from datetime import datetime

import duckdb
import numpy as np
import openpyxl
import polars as pl
import pytest
from test_aggregate import insert, random_store

from isu import publish as pub
from isu.aggregate import AggregationSpec, Breakdown, aggregate
from isu.errors import DisclosureError, IsuError
from isu.stats import finish
from isu.store import connect

JAMTLAND = ("2303", "2305", "2313", "2326", "2361")  # all members of the pool jamtland_rural, county 23
K = 5
NOW = datetime(2025, 1, 31, 12, 0)
SMALL = AggregationSpec(period="year", breakdowns=(Breakdown("category", ("category",)),))
CELL = ["period", "geo_code", "category", "need_area", "sex", "age_band", "instrument"]  # identifies a cell
KEYS = ["table_name", "geo_level", *CELL]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """One publication with the default breakdowns (category, need area, sex × age), yearly periods."""
    d = tmp_path_factory.mktemp("pub")
    con = random_store(d / "w.duckdb", n=300, municipalities=JAMTLAND)
    spec = AggregationSpec(period="year")
    result = pub.publish(con, k=K, out=d / "out", spec=spec, lp_max_cells=0, now=NOW)
    yield con, aggregate(con, spec), result, d
    con.close()


@pytest.fixture(scope="module")
def by_category(tmp_path_factory):
    """Fewer, larger cells (two municipalities, categories only), so that statistics get shown."""
    con = random_store(tmp_path_factory.mktemp("cat") / "w.duckdb", n=300, municipalities=JAMTLAND[:2])
    result = pub.publish(con, k=K, spec=SMALL, lp_max_cells=0)
    yield con, aggregate(con, SMALL), result
    con.close()


def _truth(a) -> pl.DataFrame:
    """True counts per cell from the aggregation (independent of the engine)."""
    rec = a.records_cells.unpivot(index=["period", "geo_code", "category", "need_area", "sex", "age_band"],
                                  on=["records", "clients"], variable_name="measure", value_name="true")
    rec = rec.with_columns(instrument=pl.lit("all"))
    counts = ["t0_n", "paired_n", "attrition_n", "improved_n", "unchanged_n", "deteriorated_n"]
    out = a.outcome_cells.unpivot(index=["period", "geo_code", "category", "need_area", "sex", "age_band", "instrument"],
                                  on=counts, variable_name="measure", value_name="true")
    return pl.concat([rec, out.select(rec.columns)])


def test_counts_follow_the_primary_rule(full):
    _, a, result, _ = full
    cells = result.cells.join(_truth(a), on=[*CELL, "measure"], how="inner")
    assert cells.height > 1000
    small = cells.filter(pl.col("true").is_between(1, K - 1))
    assert small.height and (small["status"] == "primary").all() and small["value"].is_null().all()
    shown = cells.filter(pl.col("status") == "shown")
    assert (shown["value"] == shown["true"].cast(pl.Float64)).all()
    assert not shown.filter(pl.col("true").is_between(1, K - 1)).height
    assert cells.filter(pl.col("status") == "secondary").height > 0
    assert (cells.filter(pl.col("true") == 0)["status"] == "shown").all()  # zeros are published


def _lone_hidden(cells: pl.DataFrame, total: pl.Expr, parts: pl.Expr, keys: list[str]) -> int:
    """Relations total = Σ parts (grouped by keys) with exactly one hidden member."""
    hidden = pl.col("status").is_in(["primary", "secondary"])
    t = cells.filter(total).group_by(keys).agg(t_hidden=hidden.sum())
    p = cells.filter(parts).group_by(keys).agg(p_hidden=hidden.sum())
    j = t.join(p, on=keys)
    assert j.height > 50
    return j.filter(pl.col("t_hidden") + pl.col("p_hidden") == 1).height


def test_secondary_suppression_protects_margins(full):
    _, _, result, _ = full
    c = result.cells
    outcome = c.filter(pl.col("table_name").str.starts_with("outcomes"))
    keys = KEYS
    rel = lambda tot, parts: _lone_hidden(outcome, pl.col("measure") == tot, pl.col("measure").is_in(parts), keys)
    assert rel("t0_n", ["paired_n", "attrition_n"]) == 0
    assert rel("paired_n", ["improved_n", "unchanged_n", "deteriorated_n"]) == 0
    # county 23 = Σ its municipalities, for every other coordinate
    geo_keys = [k for k in KEYS if k not in ("geo_level", "geo_code")] + ["measure"]  # county 23 = municipalities
    counts = c.filter(pl.col("measure").is_in(["records", "t0_n", "paired_n", "goal_goal_met_n"]))
    assert _lone_hidden(counts, pl.col("geo_code") == "23", pl.col("geo_level") == "municipality", geo_keys) == 0
    per_keys = [k for k in KEYS if k != "period"] + ["measure"]
    assert _lone_hidden(counts, pl.col("period") == "all", pl.col("period") != "all", per_keys) == 0


def _wide_stats(result) -> pl.DataFrame:
    o = result.cells.filter(pl.col("table_name").str.starts_with("outcomes"))
    return o.pivot(on="measure", index=KEYS, values=["value", "status"])


def test_statistics_need_paired_n_at_least_k_and_shown(by_category):
    _, a, result = by_category
    w = _wide_stats(result).join(a.outcome_cells.select(*CELL, raw_paired=pl.col("paired_n")), on=CELL, how="left")
    small = w.filter(pl.col("raw_paired").is_between(1, K - 1))
    assert small.height and (small["status_mean_change"] == "primary").all() and small["value_mean_change"].is_null().all()
    shown = w.filter(pl.col("status_mean_change") == "shown")
    assert shown.height and (shown["status_paired_n"] == "shown").all() and (shown["value_paired_n"] >= K).all()
    assert not w.filter((pl.col("status_paired_n") == "secondary") & (pl.col("status_d_z") == "shown")).height
    # a share never sits next to a hidden numerator
    assert not w.filter((pl.col("status_share_improved") == "shown") & (pl.col("status_improved_n") != "shown")).height
    assert not w.filter((pl.col("status_attrition_rate") == "shown") & (pl.col("status_attrition_n") != "shown")).height
    assert not w.filter(pl.col("raw_paired") == 0)["status_mean_t0"].is_in(["shown"]).any()
    # shown values are the statistics of the aggregation
    stats = finish(a.outcome_cells).select(*CELL, "mean_change", "d_z")
    j = shown.join(stats, on=CELL)
    assert (j["value_mean_change"] - j["mean_change"]).abs().max() < 1e-12


def test_clients_hidden_with_records(full):
    _, _, result, _ = full
    c = result.cells.filter(pl.col("measure").is_in(["records", "clients"]))
    w = c.pivot(on="measure", index=KEYS, values="status")
    assert not w.filter(pl.col("records").is_in(["primary", "secondary"]) & (pl.col("clients") == "shown")).height


def test_written_rows_files_and_audit(full):
    con, _, result, d = full
    stored = con.execute("SELECT count(*) FROM pub_cells WHERE publication_id = ?", [result.publication_id]).fetchall()[0][0]
    assert stored == result.cells.height
    audit = json.loads(con.execute("SELECT audit FROM publications WHERE publication_id = ?",
                                   [result.publication_id]).fetchall()[0][0])
    assert audit["disclosed"] == 0 and audit["threshold"] == K
    assert audit["primary"] > 0 and audit["secondary"] > 0 and audit["narrowest_interval"]["width"] > 0
    names = sorted(p.name for p in (d / "out").iterdir())
    assert names == ["audit.json", "codebook.csv", "outcomes_category.csv", "outcomes_need_area.csv", "outcomes_sex_age.csv",
                     "records_category.csv", "records_need_area.csv", "records_sex_age.csv"]
    table = pl.read_csv(d / "out" / "records_category.csv", infer_schema=False)
    assert ".." in table["records"].to_list() and "geo_name" in table.columns
    assert set(table["geo_level"]) == {"municipality", "county", "pool", "all"}
    codebook = pl.read_csv(d / "out" / "codebook.csv", infer_schema=False)
    assert codebook.filter((pl.col("name") == "category") & (pl.col("code") == "foster_care"))["label_sv"].item() == "Familjehem"
    assert codebook.filter(pl.col("kind") == "rule").height >= 3
    assert json.loads((d / "out" / "audit.json").read_text())["cells"] == result.cells.height


def test_link_records_and_t0_consistent(tmp_path):
    """One instrument, every record with a T0: records and t0_n are the same quantity and share a status."""
    con = random_store(tmp_path / "w.duckdb", n=150, municipalities=JAMTLAND[:3], instruments=("severity04",))
    con.execute("DELETE FROM records WHERE record_key NOT IN (SELECT record_key FROM measurements WHERE timepoint = 'T0')")
    result = pub.publish(con, k=K, spec=SMALL, lp_max_cells=0)
    c = result.cells.filter(pl.col("measure").is_in(["records", "t0_n"])).with_columns(
        pl.col("table_name").str.replace("^[a-z]+_", ""), instrument=pl.lit("-"))
    w = c.pivot(on="measure", index=KEYS, values="status")
    assert w.height > 20
    assert (w["records"] == w["t0_n"]).all()
    nonzero = c.filter((pl.col("measure") == "records") & ~((pl.col("status") == "shown") & (pl.col("value") == 0)))
    assert result.audit["checks"]["link"]["disclosed"] == 0 and result.audit["checks"]["link"]["links"] == nonzero.height


def test_link_check_rule():
    """records = Σ t0_n + no_t0_n: a link with exactly one hidden member gives that member back."""
    keys = {"period": ["2024"] * 2, "geo_code": ["0120", "0126"], "category": ["all"] * 2, "need_area": ["all"] * 2,
            "sex": ["all"] * 2, "age_band": ["all"] * 2}
    rec = pl.DataFrame({**keys, "measure": ["records"] * 2, "value_true": [9, 7], "status": ["secondary", "shown"]})
    out = pl.DataFrame({k: v * 3 for k, v in keys.items()} | {
        "measure": ["t0_n", "t0_n", "t0_n", "t0_n", "no_t0_n", "no_t0_n"], "value_true": [4, 7, 5, 0, 0, 0],
        "status": ["shown"] * 6})
    assert pub.link_check(rec, out)["disclosed"] == 1  # 0120: records hidden alone
    assert pub.link_check(rec, out)["links"] == 2
    assert pub.link_check(rec.with_columns(status=pl.lit("shown")), out)["disclosed"] == 0
    settled = out.with_columns(status=pl.when((pl.col("geo_code") == "0120") & (pl.col("value_true") == 4))
                               .then(pl.lit("secondary")).otherwise(pl.col("status")))
    assert pub.link_check(rec, settled)["disclosed"] == 0  # two hidden members: no lone one left
    # records without a baseline break the equality: no link
    assert pub.link_check(rec, out.with_columns(value_true=pl.col("value_true") + 1))["links"] == 0


def _joint_attack(a, cells: pl.DataFrame, instruments: tuple[str, ...]) -> list:
    """An LP attacker over the records and outcome tables together, written here: it knows the
    hierarchies and that each record has at most one baseline instrument, so one unknown per period ×
    municipality × category × goal × outcome (no baseline, or an instrument's result)."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    results = ("no_t1", "improved", "unchanged", "deteriorated")
    outcome = {"none": 0, **{(i, r): 1 + n for n, (i, r) in enumerate((i, r) for i in instruments for r in results)}}
    leaf = {d: sorted(c for c, g in a.groups[d].items() if g == {c}) for d in ("period", "geo_code", "category", "goal")}
    shape = [len(leaf[d]) for d in leaf] + [len(outcome)]
    size = int(np.prod(shape))
    idx = np.arange(size).reshape(shape)
    by_measure = {"records": list(outcome.values()), "no_t0_n": [0]}
    for i in instruments:
        for m, rs in (("t0_n", results), ("paired_n", results[1:]), ("attrition_n", ("no_t1",)),
                      ("improved_n", ("improved",)), ("unchanged_n", ("unchanged",)), ("deteriorated_n", ("deteriorated",))):
            by_measure[(m, i)] = [outcome[(i, r)] for r in rs]

    def columns(row) -> np.ndarray:
        sel = [[leaf[d].index(x) for x in sorted(a.groups[d][row[d]])] for d in ("period", "geo_code", "category")]
        m = row["measure"]
        if m.startswith("goal_"):
            goals, outs = [leaf["goal"].index(m[5:-2])], by_measure["records"]
        else:
            goals = list(range(len(leaf["goal"])))
            outs = by_measure[m] if m in by_measure else by_measure[(m, row["instrument"])]
        return idx[np.ix_(*sel, goals, outs)].ravel()

    def matrix(rows) -> csr_matrix:
        cols = [columns(r) for r in rows]
        ptr = np.cumsum([0] + [len(c) for c in cols])
        return csr_matrix((np.ones(ptr[-1]), np.concatenate(cols), ptr), shape=(len(rows), size))

    shown = cells.filter(pl.col("status") == "shown")
    a_eq, b_eq = matrix(shown.rows(named=True)), shown["value"].to_numpy()
    hidden = cells.filter(pl.col("status").is_in(["primary", "secondary"])).rows(named=True)
    found = []
    for row, c in zip(hidden, matrix(hidden)):
        c = c.toarray().ravel()
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert lo.status == 0, lo.message
        if hi.status == 0 and -hi.fun - lo.fun < 1e-7:
            found.append((row["table_name"], row["period"], row["geo_code"], row["category"], row["measure"], row["instrument"]))
    return found


def test_one_call_protects_records_and_outcomes_together(tmp_path):
    """Named attack across linked tables: records = Σ t0_n + no_t0_n ties the records tables to the
    outcome tables; an LP over both (the attacker knows that relation) recovers no hidden cell."""
    instruments = ("severity04", "wellbeing10")
    con = random_store(tmp_path / "w.duckdb", n=80, municipalities=JAMTLAND[:2], instruments=instruments)
    spec = AggregationSpec(period="year", breakdowns=(Breakdown("category", ("category",)),))
    result = pub.publish(con, k=K, spec=spec, lp_max_cells=0)
    a = aggregate(con, spec)
    counts = ["records", "no_t0_n", "t0_n", "paired_n", "attrition_n", "improved_n", "unchanged_n", "deteriorated_n"]
    c = result.cells.filter(pl.col("measure").is_in(counts) | (pl.col("measure").str.starts_with("goal_")))
    c = c.unique(["period", "geo_code", "category", "measure", "instrument"]).sort(pl.all())
    assert c.filter(pl.col("status").is_in(["primary", "secondary"])).height > 10
    assert c.filter(pl.col("measure") == "no_t0_n").height > 0
    assert result.audit["checks"]["link"]["disclosed"] == 0
    assert _joint_attack(a, c, instruments) == []


def test_disclosure_publishes_nothing(tmp_path, monkeypatch):
    con = random_store(tmp_path / "w.duckdb", n=60, municipalities=JAMTLAND[:2], instruments=("severity04",))
    monkeypatch.setattr(pub, "audit", lambda result, **kw: {"disclosed": 1, "proof": {}})
    out = tmp_path / "out"
    with pytest.raises(DisclosureError, match="nothing was published"):
        pub.publish(con, k=K, out=out, spec=SMALL)
    assert not out.exists()
    assert con.execute("SELECT count(*) FROM publications").fetchall()[0][0] == 0
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "pub_cells" not in tables or con.execute("SELECT count(*) FROM pub_cells").fetchall()[0][0] == 0


def _tiny(path):
    """40 records, 2 municipalities, 2 categories, one year: small enough for the LP audit."""
    con = connect(path, create=True)
    recs, meas = [], []
    for i in range(40):
        m, key = JAMTLAND[i % 2], f"k{i}"
        recs.append({"municipality": m, "record_key": key, "category": ["foster_care", "family_support"][i % 3 == 0],
                     "goal_attainment": ["goal_met", "no_change", None][i % 3]})
        meas.append({"municipality": m, "record_key": key, "timepoint": "T0", "instrument": "severity04", "value": i % 5})
        if i % 4:
            meas.append({"municipality": m, "record_key": key, "timepoint": "T1", "instrument": "severity04", "value": i % 3})
    insert(con, recs, meas)
    con.close()


def test_deterministic_with_lp_audit(tmp_path):
    path = tmp_path / "w.duckdb"
    _tiny(path)
    runs = [pub.publish(path, k=K, out=tmp_path / f"out{i}", spec=SMALL, lp_max_cells=400) for i in (1, 2)]
    assert runs[0].audit["checks"]["joint"]["lp"]["ran"]
    assert runs[0].audit["narrowest_interval"]["kind"] == "lp" and runs[0].audit["narrowest_interval"]["width"] > 0
    a, b = (r.cells.drop("publication_id") for r in runs)
    assert a.equals(b)
    for f in (tmp_path / "out1").iterdir():
        if f.name != "audit.json":
            assert f.read_bytes() == (tmp_path / "out2" / f.name).read_bytes(), f.name
    con = connect(path, read_only=True)
    stored = [con.sql("SELECT * EXCLUDE (publication_id) FROM pub_cells WHERE publication_id = ? ORDER BY ALL",
                      params=[r.publication_id]).pl() for r in runs]
    con.close()
    assert stored[0].equals(stored[1])


def test_municipal_insiders(tmp_path):
    _tiny(tmp_path / "w.duckdb")
    result = pub.publish(tmp_path / "w.duckdb", k=K, spec=SMALL, lp_max_cells=0, municipal_insiders=True)
    rank = result.audit["checks"]["joint"]["rank_test"]
    assert rank["ran"] and rank["insiders"] >= 2 and result.audit["disclosed"] == 0


def test_xlsx_and_parquet(tmp_path):
    con = random_store(tmp_path / "w.duckdb", n=60, municipalities=JAMTLAND[:2], instruments=("severity04",))
    pub.publish(con, k=K, out=tmp_path / "x", fmt="xlsx", spec=SMALL, lp_max_cells=0)
    pub.publish(con, k=K, out=tmp_path / "p", fmt="parquet", spec=SMALL, lp_max_cells=0)
    sheet = openpyxl.load_workbook(tmp_path / "x" / "records_category.xlsx").active
    header = [c.value for c in sheet[1]]
    col = header.index("records")
    values = [row[col].value for row in sheet.iter_rows(min_row=2)]
    assert ".." in values and any(isinstance(v, (int, float)) for v in values)
    p = pl.read_parquet(tmp_path / "p" / "records_category.parquet")
    assert "records_status" in p.columns
    hidden = p.filter(pl.col("records_status").is_in(["primary", "secondary"]))
    assert hidden.height and hidden["records"].is_null().all()
    assert (tmp_path / "p" / "codebook.parquet").exists()


def test_bad_input(tmp_path):
    con = connect(tmp_path / "w.duckdb", create=True)
    with pytest.raises(IsuError, match="nothing to publish"):
        pub.publish(con)
    insert(con, [{"municipality": "0120", "record_key": "a"}], [])
    with pytest.raises(IsuError, match="at least 2"):
        pub.publish(con, k=1)
    with pytest.raises(IsuError, match="unknown format"):
        pub.publish(con, fmt="ods")
    assert isinstance(con, duckdb.DuckDBPyConnection)
