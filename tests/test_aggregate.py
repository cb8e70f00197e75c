"""Aggregation: periods, geography hierarchy, age bands, margins that add up, RCI in SQL.

``insert`` and ``random_store`` are reused by the publication tests (``from test_aggregate import …``).
"""

import datetime as dt

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from isu.schemas import code_list

from isu import aggregate as agg
from isu.errors import IsuError
from isu.stats import classify_change, finish, rci_s_diff
from isu.store import connect

RECORD_COLUMNS = ("municipality", "record_key", "client", "sex", "birth_year", "need_area", "intervention_code",
                  "category", "legal_basis", "provider", "started_on", "ended_on", "end_reason", "goal_attainment",
                  "import_id")
MEASUREMENT_COLUMNS = ("municipality", "record_key", "timepoint", "instrument", "measured_on", "value")


def insert(con, records: list[dict], measurements: list[dict]) -> None:
    """Insert rows straight into the store (defaults fill the columns a test does not care about)."""
    defaults = {"sex": "F", "birth_year": 1980, "need_area": "housing", "intervention_code": "X", "category": "family_support",
                "legal_basis": "SoL", "provider": "own", "started_on": dt.date(2022, 1, 1), "ended_on": dt.date(2023, 3, 1),
                "end_reason": None, "goal_attainment": None, "import_id": 1}
    rows = [defaults | {"client": f"{i:064x}"} | r for i, r in enumerate(records)]
    frame = pl.DataFrame([{c: r[c] for c in RECORD_COLUMNS} for r in rows], infer_schema_length=None)
    con.execute("SELECT 1").fetchall()  # settle any open result before register()
    con.register("_t_records", frame)
    con.execute(f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) SELECT {', '.join(RECORD_COLUMNS)} FROM _t_records")
    con.unregister("_t_records")
    if measurements:
        frame = pl.DataFrame([{"measured_on": None} | m for m in measurements], infer_schema_length=None)
        frame = frame.with_columns(pl.col("measured_on").cast(pl.Date), pl.col("value").cast(pl.Float64))
        con.register("_t_meas", frame)
        cols = ", ".join(MEASUREMENT_COLUMNS)
        con.execute(f"INSERT INTO measurements ({cols}) SELECT {cols} FROM _t_meas")
        con.unregister("_t_meas")


SODERTORN = ("0120", "0126", "0127", "0128", "0136", "0138", "0140", "0181", "0182", "0192")


def random_store(path, n=1500, seed=1, municipalities=(*SODERTORN, "0180"), instruments=("severity04", "wellbeing10")):
    """A reproducible synthetic workspace: ~10 % ongoing, ~5 % without T0, ~20 % attrition."""
    rng = np.random.default_rng(seed)
    con = connect(path, create=True)
    cats, needs = ["family_support", "contact_person", "foster_care", "housing_first"], ["housing", "mental_health", "alcohol"]
    goals = [*code_list("goal_attainment").codes, None]
    records, measurements = [], []
    for i in range(n):
        m = municipalities[rng.integers(len(municipalities))]
        start = dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 700)))
        end = None if rng.random() < 0.1 else start + dt.timedelta(days=int(rng.integers(30, 400)))
        records.append({"municipality": m, "record_key": f"r{i}", "client": f"{int(rng.integers(n // 2)):064x}",
                        "sex": ["F", "M", "U", None][rng.integers(4)],
                        "birth_year": None if rng.random() < 0.05 else int(rng.integers(1940, 2015)),
                        "need_area": needs[rng.integers(3)], "category": cats[rng.integers(4)], "started_on": start,
                        "ended_on": end, "goal_attainment": goals[rng.integers(len(goals))]})
        inst = instruments[rng.integers(len(instruments))]
        top = 4 if inst == "severity04" else 10
        if rng.random() < 0.95:
            v0 = float(rng.integers(0, top + 1))
            measurements.append({"municipality": m, "record_key": f"r{i}", "timepoint": "T0", "instrument": inst, "value": v0})
            if rng.random() < 0.8:
                v1 = float(np.clip(v0 + rng.integers(-3, 3), 0, top))
                measurements.append({"municipality": m, "record_key": f"r{i}", "timepoint": "T1", "instrument": inst, "value": v1})
    insert(con, records, measurements)
    return con


@pytest.fixture
def small(tmp_path):
    con = connect(tmp_path / "w.duckdb", create=True)
    recs = [
        {"municipality": "0120", "record_key": "a", "ended_on": dt.date(2023, 6, 30), "birth_year": 2006, "goal_attainment": "goal_met"},
        {"municipality": "0120", "record_key": "b", "ended_on": dt.date(2023, 7, 1), "birth_year": 2005, "sex": None},
        {"municipality": "2303", "record_key": "c", "ended_on": dt.date(2024, 1, 2), "birth_year": None, "category": "foster_care"},
        {"municipality": "2303", "record_key": "d", "ended_on": None},  # ongoing: no period
    ]
    meas = [
        {"municipality": "0120", "record_key": "a", "timepoint": "T0", "instrument": "severity04", "value": 4},
        {"municipality": "0120", "record_key": "a", "timepoint": "T1", "instrument": "severity04", "value": 1},
        {"municipality": "0120", "record_key": "b", "timepoint": "T0", "instrument": "severity04", "value": 2},
        {"municipality": "2303", "record_key": "c", "timepoint": "T0", "instrument": "wellbeing10", "value": 3},
        {"municipality": "2303", "record_key": "c", "timepoint": "T1", "instrument": "wellbeing10", "value": 2},
        {"municipality": "2303", "record_key": "d", "timepoint": "T0", "instrument": "severity04", "value": 2},
    ]
    insert(con, recs, meas)
    return con


def test_periods_ages_and_ongoing(small):
    a = agg.aggregate(small)
    inner = a.records_inner.sort("period")
    assert inner["period"].to_list() == ["2023H1", "2023H2", "2024H1"]  # record d is ongoing
    assert inner["age_band"].to_list() == ["0-17", "18-24", "unknown"]  # 2023 − 2006 = 17; 2023 − 2005 = 18
    assert inner["sex"].to_list() == ["F", "U", "F"]
    assert inner["goal"].to_list() == ["goal_met", "not_assessed", "not_assessed"]
    assert a.groups["period"]["2023"] == {"2023H1", "2023H2"} and a.groups["period"]["all"] == {"2023H1", "2023H2", "2024H1"}
    yearly = agg.aggregate(small, agg.AggregationSpec(period="year"))
    assert set(yearly.groups["period"]) == {"2023", "2024", "all"}


def test_geography_hierarchy(small):
    a = agg.aggregate(small)
    geo = a.groups["geo_code"]
    assert geo["01"] == {"0120"} and geo["23"] == {"2303"} and geo["all"] == {"0120", "2303"}
    assert "sodertorn" not in geo and "jamtland_rural" not in geo  # members missing
    assert a.geo_levels["01"] == "county" and a.geo_levels["0120"] == "municipality"
    cell = a.records_cells.filter(period="all", geo_code="01", category="all", need_area="all", sex="all", age_band="all")
    assert cell.select("records", "clients").row(0) == (2, 2)


def test_outcomes_and_rci(small):
    a = agg.aggregate(small)
    inner = a.outcomes_inner.sort("geo_code", "result")
    # a: 4 → 1 on a lower-is-better scale (S_diff 0.63): improved; b: no T1; c: 3 → 2 on wellbeing (S_diff 1.56): unchanged
    assert inner.select("geo_code", "instrument", "result").rows() == [
        ("0120", "severity04", "improved"), ("0120", "severity04", "no_t1"), ("2303", "wellbeing10", "unchanged")]
    total = a.outcome_cells.filter(period="all", geo_code="all", category="all", need_area="all", sex="all",
                                   age_band="all", instrument="severity04").row(0, named=True)
    assert (total["t0_n"], total["paired_n"], total["attrition_n"], total["improved_n"]) == (2, 1, 1, 1)
    assert total["sum_change"] == -3 and total["dropouts_sum_t0"] == 2


def test_pool_published_when_all_members_present(tmp_path):
    con = connect(tmp_path / "p.duckdb", create=True)
    members = code_list("pools").row("jamtland_rural")["municipalities"].split()
    insert(con, [{"municipality": m, "record_key": "k"} for m in members], [])
    a = agg.aggregate(con)
    assert a.groups["geo_code"]["jamtland_rural"] == set(members)
    assert a.geo_levels["jamtland_rural"] == "pool"


def test_margins_add_up(tmp_path):
    con = random_store(tmp_path / "r.duckdb", n=800)
    a = agg.aggregate(con)
    inner = a.records_inner
    cells = a.records_cells
    # every published cell equals the sum of the inner leaf cells its codes cover
    for dims in [("period", "geo_code", "category"), ("period", "geo_code", "sex", "age_band")]:
        sample = cells.filter(*(pl.col(d) != "all" for d in CROSS if d not in dims)).sample(60, seed=2, with_replacement=True)
        for row in sample.iter_rows(named=True):
            mask = pl.lit(True)
            for d in agg.CELL_KEYS:
                mask &= pl.col(d).is_in(sorted(a.groups[d][row[d]]))
            assert inner.filter(mask)["n"].sum() == row["records"]
    # county 01 = sum of its municipalities; pool Södertörn = its members; all = everything ended
    tot = lambda geo: cells.filter(period="all", geo_code=geo, category="all", need_area="all", sex="all", age_band="all")["records"].item()
    assert tot("01") == sum(tot(m) for m in (*SODERTORN, "0180"))
    assert tot("sodertorn") == sum(tot(m) for m in SODERTORN)
    assert tot("all") == con.execute("SELECT count(*) FROM records WHERE ended_on IS NOT NULL").fetchall()[0][0]
    out = a.outcome_cells
    assert (out["t0_n"] == out["paired_n"] + out["attrition_n"]).all()
    assert (out["paired_n"] == out["improved_n"] + out["unchanged_n"] + out["deteriorated_n"]).all()


CROSS = agg.CROSS_DIMS


def test_sql_rci_agrees_with_numpy(tmp_path):
    con = random_store(tmp_path / "r.duckdb", n=400, seed=5)
    a = agg.aggregate(con)
    rows = con.execute("""SELECT m0.instrument, m0.value, m1.value FROM records r
        JOIN measurements m0 ON m0.municipality = r.municipality AND m0.record_key = r.record_key AND m0.timepoint = 'T0'
        JOIN measurements m1 ON m1.municipality = r.municipality AND m1.record_key = r.record_key AND m1.timepoint = 'T1'
             AND m1.instrument = m0.instrument WHERE r.ended_on IS NOT NULL""").fetchall()
    instruments = code_list("instruments")
    expected = {"improved": 0, "unchanged": 0, "deteriorated": 0}
    for code in ("severity04", "wellbeing10"):
        p = instruments.row(code)
        t0 = [r[1] for r in rows if r[0] == code]
        t1 = [r[2] for r in rows if r[0] == code]
        classes = classify_change(t0, t1, rci_s_diff(float(p["reference_sd"]), float(p["reliability"])),
                                  p["higher_is_better"] == "true")
        for c in expected:
            expected[c] += int((classes == c).sum())
    got = dict(a.outcomes_inner.group_by("result").agg(pl.col("n").sum()).rows())
    assert {c: got[c] for c in expected} == expected
    assert min(expected.values()) > 0


def test_age_band_parsing():
    bands = agg.parse_age_bands("0-17, 18-64, 65+")
    assert [(b.label, b.lo, b.hi) for b in bands] == [("0-17", 0, 17), ("18-64", 18, 64), ("65+", 65, None)]
    for bad in ("0-17,19-64,65+", "5-17,18+", "0-17,18-64", "young,old"):
        with pytest.raises(IsuError):
            agg.parse_age_bands(bad)


def test_unknown_breakdown_dimension(small):
    with pytest.raises(IsuError, match="unknown"):
        agg.aggregate(small, agg.AggregationSpec(breakdowns=(agg.Breakdown("x", ("legal_basis",)),)))


def test_mean_cis_agree_with_scipy(tmp_path):
    """Means at T0 and T1 of the paired records, with t intervals, as scipy computes them from the raw values."""
    con = random_store(tmp_path / "r.duckdb", n=400, seed=7)
    cells = finish(agg.aggregate(con).outcome_cells)
    rows = con.execute("""SELECT m0.value, m1.value FROM records r
        JOIN measurements m0 ON m0.municipality = r.municipality AND m0.record_key = r.record_key AND m0.timepoint = 'T0'
        JOIN measurements m1 ON m1.municipality = r.municipality AND m1.record_key = r.record_key AND m1.timepoint = 'T1'
             AND m1.instrument = m0.instrument
        WHERE r.ended_on IS NOT NULL AND m0.instrument = 'wellbeing10'""").fetchall()
    total = cells.filter(period="all", geo_code="all", category="all", need_area="all", sex="all", age_band="all",
                         instrument="wellbeing10").row(0, named=True)
    for i, name in enumerate(("mean_t0", "mean_t1")):
        x = np.array([r[i] for r in rows], dtype=float)
        lo, hi = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
        assert (total[name], total[f"{name}_ci_low"], total[f"{name}_ci_high"]) == pytest.approx((x.mean(), lo, hi))
