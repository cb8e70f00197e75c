"""The dashboard: labels, scope, funnel limits, the page's data, privacy, the command line.

The browser checks (rendering, filters, ``..``, screenshot) are in ``test_dashboards_browser.py``.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from isu.cli.main import app
from isu.dashboards import NoPublication, UnknownArea, UnknownLanguage, build_dashboard
from isu.dashboards.figures import SECTIONS
from isu.dashboards.funnel import control_limits, limit_table, n_grid
from isu.dashboards.labels import Labels, catalogue, load_labels
from isu.dashboards.report import NOTES
from isu.dashboards.scope import resolve_scope
from plotly.offline import get_plotlyjs
from scipy import stats
from test_dashboards_support import (
    SODERTORN,
    make_workspace,
    synthetic_cells,
    write_publication,
)
from typer.testing import CliRunner

from isu.store import connect

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"


def page_data(html: str) -> dict:
    """The view model embedded in a page."""
    m = re.search(r'<script type="application/json" id="isu-data">(.*?)</script>', html, re.DOTALL)
    assert m, "no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def numbers_outside_plotly(html: str) -> list[float]:
    """Every number in the page except inside the inlined plotly.js (which is the same in every page)."""
    rest = html.replace(get_plotlyjs(), "")
    return [float(x) for x in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?", rest)]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("dash") / "isu.duckdb", synthetic_cells(size=10))


# ---- labels -------------------------------------------------------------------------------------


def test_catalogue_has_both_languages_and_every_key_the_page_uses():
    cat = catalogue()
    assert all(texts["sv"] and texts["en"] for texts in cat.values())
    js = (DASHBOARDS / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r'\bt\("([a-z0-9_]+)"[,)]', js))
    used |= {s.title for s in SECTIONS} | {s.lead for s in SECTIONS} | {k for pair in NOTES for k in pair}
    assert used, "found no label keys in app.js"
    assert sorted(used - set(cat)) == []


def test_labels_use_the_code_lists_and_fall_back_to_the_code():
    sv, en = load_labels("sv"), load_labels("en")
    assert sv.code("need_areas", "housing") == "Boende" and en.code("need_areas", "housing") == "Housing"
    assert sv.code("need_areas", "not_a_code") == "not_a_code"
    assert sv.geo("municipality", "0127") == "Botkyrka"
    assert sv.geo("county", "01") == "Stockholms län" and en.geo("county", "01") == "Stockholm County"
    assert sv.geo("pool", "sodertorn") == "Södertörn"
    assert sv.period("2024H1") == "2024, halvår 1" and en.period("2024H2") == "2024, half-year 2"
    assert sv.period("2024") == "2024" and en.period("all") == "All periods"
    assert "1 och 4" in sv("note_threshold", k=5, k_low=4)


def test_unknown_language_is_a_clear_error():
    with pytest.raises(UnknownLanguage, match="sv, en"):
        load_labels("fi")


# ---- funnel limits ------------------------------------------------------------------------------


def test_control_limits_cover_what_they_claim():
    p0, n = 0.3, np.array([20, 50, 200])
    for level in (0.95, 0.998):
        lo, hi = control_limits(p0, n, level)
        # exact binomial probability of a share outside the limits: close to 1 - level
        outside = stats.binom.cdf(np.ceil(lo * n) - 1, n, p0) + stats.binom.sf(np.floor(hi * n), n, p0)
        assert np.all(outside <= (1 - level) * 1.6 + 1e-3)
        assert np.all(lo < p0) and np.all(hi > p0)


def test_control_limits_narrow_with_n_and_approach_the_normal_limits():
    n = n_grid(5000)
    lo, hi = control_limits(0.4, n, 0.95)
    assert np.all(np.diff(hi - lo)[5:] <= 1e-9)
    se = np.sqrt(0.4 * 0.6 / n[-1])
    assert hi[-1] == pytest.approx(0.4 + 1.96 * se, abs=2e-3)
    assert lo[-1] == pytest.approx(0.4 - 1.96 * se, abs=2e-3)


def test_limit_table_rows_match_direct_limits():
    table = limit_table(300)
    row = round(0.37 / table["p_step"])
    lo, hi = control_limits(0.37, np.array(table["n"]), 0.998)
    assert table["lo998"][row] == pytest.approx(np.round(lo, 3).tolist())
    assert table["hi998"][row] == pytest.approx(np.round(hi, 3).tolist())


# ---- scope ----------------------------------------------------------------------------------------

AVAILABLE = {("all", "all"), ("county", "01"), ("pool", "sodertorn")} | {("municipality", m) for m in SODERTORN}


def test_default_scope_is_the_whole_publication():
    scope = resolve_scope(AVAILABLE, Labels("sv"))
    assert scope.focus.key == "all:all" and scope.comparisons == () and len(scope.members) == 10


def test_municipality_scope_compares_with_county_pool_and_all():
    scope = resolve_scope(AVAILABLE, Labels("en"), municipality="0140")
    assert scope.focus.label == "Nykvarn"
    assert [g.key for g in scope.comparisons] == ["county:01", "pool:sodertorn", "all:all"]
    assert scope.reference.key == "all:all"


def test_region_scope_takes_a_county_or_a_pool():
    pool = resolve_scope(AVAILABLE | {("municipality", "0180")}, Labels("sv"), region="sodertorn")
    assert pool.focus.key == "pool:sodertorn" and "0180" not in {m.code for m in pool.members}
    county = resolve_scope(AVAILABLE | {("municipality", "0180")}, Labels("sv"), region="01")
    assert county.focus.label == "Stockholms län" and "0180" in {m.code for m in county.members}


@pytest.mark.parametrize(
    "kwargs, message",
    [({"municipality": "0180"}, "0180 has no published cells"), ({"region": "23"}, "published regions: 01, sodertorn"),
     ({"municipality": "0127", "region": "01"}, "not both")],
)  # fmt: skip
def test_unknown_areas_are_clear_errors(kwargs, message):
    with pytest.raises(UnknownArea, match=message):
        resolve_scope(AVAILABLE, Labels("sv"), **kwargs)


# ---- the page -------------------------------------------------------------------------------------


def test_page_is_self_contained_with_plotly_once(workspace, tmp_path):
    result = build_dashboard(workspace, tmp_path / "d.html")
    html = result.path.read_text(encoding="utf-8")
    assert result.bytes < 6_000_000
    assert html.count("plotly.js v") == 1
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="(?!data:)|https?://', html.replace(get_plotlyjs(), ""))
    model = page_data(html)
    assert model["lang"] == "sv" and model["meta"]["threshold"] == 5
    assert [p for p, _ in model["dims"]["trend_periods"]] == ["2023H2", "2024H1", "2024H2"]
    assert model["dims"]["instruments"][0]["code"] == "severity04"
    assert model["funnel"]["combos"], "no funnel data"
    assert "uppgift saknas eller är sekretessmarkerad för att skydda enskilda" in html


def test_page_values_are_the_published_values(workspace, tmp_path):
    html = build_dashboard(workspace, tmp_path / "m.html", municipality="0127", lang="en").path.read_text("utf-8")
    model = page_data(html)
    assert model["geos"][0]["label"] == "Botkyrka" and model["lang"] == "en"
    con = connect(workspace, read_only=True)
    rows = con.execute(
        """SELECT category, need_area, measure, value, status FROM pub_cells WHERE geo_code = '0127' AND period = 'all'
           AND instrument = 'severity04' AND sex = 'all' AND age_band = 'all' AND measure IN ('paired_n', 'mean_t0')"""
    ).fetchall()
    con.close()
    measures = model["measures"]["instrument"]
    checked = 0
    for cat, need, measure, value, status in rows:
        cell = model["cells"][f"0|all|{cat}|{need}|severity04"]
        i = measures.index(measure)
        got = cell[i] if i < len(cell) else None
        if status == "shown":
            assert got == pytest.approx(value, abs=5e-4)
            checked += 1
        else:
            assert got is None
    assert checked > 10


def _plant_markers(cells: pl.DataFrame) -> tuple[pl.DataFrame, list[float]]:
    """Give every hidden cell a distinctive true value (900000 + i/8) no published cell can have."""
    hidden = cells["status"].is_in(["primary", "secondary"])
    markers = pl.Series(np.arange(cells.height, dtype=float) / 8 + 900_000.0)
    planted = cells.with_columns(value=pl.when(hidden).then(markers).otherwise(pl.col("value")))
    return planted, planted.filter(hidden)["value"].to_list()


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, Path, list[float], int]:
    """Two workspaces with the same publication: hidden cells hold NULL (as publish writes them) in
    one, and their distinctive true values in the other (status still primary/secondary)."""
    tmp = tmp_path_factory.mktemp("planted")
    cells, markers = _plant_markers(synthetic_cells(size=4, seed=3))
    assert len(markers) > 100 and cells.filter(pl.col("status") == "shown")["value"].max() < 899_999
    nulls = make_workspace(tmp / "nulls.duckdb", cells)
    leaky = make_workspace(tmp / "leaky.duckdb", cells, leak_values=True)
    return nulls, leaky, markers, cells.height


@pytest.mark.parametrize("scope", [{}, {"municipality": "0140"}, {"region": "sodertorn"}])
def test_no_hidden_value_reaches_the_page(planted, tmp_path, scope):
    nulls, leaky, _markers, height = planted
    pages = [build_dashboard(db, tmp_path / f"{db.stem}.html", **scope).path.read_text("utf-8") for db in (nulls, leaky)]
    assert pages[0] == pages[1], "the page depends on values of hidden cells"
    numbers = numbers_outside_plotly(pages[1])
    assert not [x for x in numbers if 899_999 < x < 900_001 + height / 8], "a hidden value is in the page"
    if scope.get("municipality"):
        shown = page_data(pages[1])["cells"]
        assert any(v is None for values in shown.values() for v in values), "the fixture hides nothing here"


def _add_microdata(db: Path) -> None:
    con = connect(db)
    con.execute(
        "INSERT INTO records (municipality, record_key, client, sex, birth_year, need_area, intervention_code, category,"
        " started_on, ended_on, goal_attainment, import_id)"
        " VALUES ('0140', 'LEAK-1', ?, 'F', 1980, 'housing', 'FAM', 'family_support', ?, ?, 'goal_met', 1)",
        ["a" * 64, date(2024, 1, 2), date(2024, 5, 6)],
    )
    con.execute("INSERT INTO measurements VALUES ('0140', 'LEAK-1', 'T0', 'severity04', ?, 3.9876543)", [date(2024, 1, 2)])
    con.close()


def test_page_does_not_read_microdata(tmp_path):
    db = make_workspace(tmp_path / "isu.duckdb", synthetic_cells(size=4))
    _add_microdata(db)
    with_micro = build_dashboard(db, tmp_path / "a.html", municipality="0140").path.read_bytes()
    con = connect(db)
    con.execute("DROP TABLE measurements")
    con.execute("DROP TABLE records")
    con.close()
    without = build_dashboard(db, tmp_path / "b.html", municipality="0140").path.read_bytes()
    assert with_micro == without
    assert b"LEAK-1" not in with_micro and b"3.9876543" not in with_micro


def test_latest_publication_is_used(tmp_path):
    db = make_workspace(tmp_path / "isu.duckdb", synthetic_cells(size=4, seed=1))
    con = connect(db)
    write_publication(con, synthetic_cells(size=4, seed=2), threshold=3)
    con.close()
    model = page_data(build_dashboard(db, tmp_path / "d.html").path.read_text("utf-8"))
    assert model["meta"]["publication_id"] == 2 and model["meta"]["threshold"] == 3


def test_no_publication_says_run_publish_first(tmp_path):
    db = tmp_path / "isu.duckdb"
    connect(db, create=True).close()
    with pytest.raises(NoPublication, match="run 'isu publish' first"):
        build_dashboard(db, tmp_path / "d.html")
    con = connect(db)
    write_publication(con, synthetic_cells(size=4).head(0))  # a publication without cells
    con.close()
    with pytest.raises(NoPublication, match="run 'isu publish' first"):
        build_dashboard(db, tmp_path / "d.html")
    assert not (tmp_path / "d.html").exists()


# ---- command line ---------------------------------------------------------------------------------


def test_cli_writes_the_page_and_reports_json(workspace, tmp_path):
    out = tmp_path / "sub" / "dash.html"
    res = CliRunner().invoke(
        app, ["--db", str(workspace), "dashboard", "--out", str(out), "--lang", "en", "--region", "01", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["out"] == str(out) and summary["focus"] == "Stockholm County" and summary["lang"] == "en"
    assert out.stat().st_size == summary["bytes"]


def test_cli_errors_are_one_line_with_exit_codes(workspace, tmp_path):
    from conftest import run_isu

    res = CliRunner().invoke(app, ["--db", str(workspace), "dashboard", "--out", str(tmp_path / "x.html"), "--municipality", "9999"])
    assert isinstance(res.exception, UnknownArea)  # run() turns it into one line and exit code 2
    empty = tmp_path / "empty.duckdb"
    connect(empty, create=True).close()
    res = run_isu("--db", str(empty), "dashboard", "--out", str(tmp_path / "x.html"))
    assert res.returncode == NoPublication.exit_code
    assert res.stderr.strip() == "error: the workspace holds no publication with cells; run 'isu publish' first"


# ---- end to end: import → publish → dashboard ---------------------------------------------------


def test_dashboard_from_a_real_publication(ws, tmp_path):
    """The page shows exactly what ``isu.publish`` published for the focus, and nothing it hid."""
    import random

    from conftest import wide_row, write_csv

    from isu.publish import publish

    rnd = random.Random(4)
    rows = []
    for i in range(1, 151):
        t0 = rnd.choice([2, 3, 4])
        t1 = str(max(0, t0 - rnd.choice([0, 1, 1, 2, 3]))) if rnd.random() < 0.8 else ""
        rows.append(wide_row(
            i, municipality=rnd.choice(["0127", "0140", "0126"]), need_area=rnd.choice(["Boende", "Alkohol", "Psykisk hälsa"]),
            intervention_code=rnd.choice(["FAM", "KP"]), T0_value=str(t0), T1_value=t1, T1_date="2024-06-01" if t1 else "",
            goal_attainment=rnd.choice(["1", "2", "3", "4"]),
        ))  # fmt: skip
    ws.import_(write_csv(tmp_path / "export.csv", rows))
    result = publish(ws.db, k=5, lp_max_cells=0)
    page = build_dashboard(ws.db, tmp_path / "d.html", municipality="0127")
    model = page_data(page.path.read_text("utf-8"))
    assert page.publication_id == result.publication_id

    cells = result.cells.filter(
        (pl.col("geo_code") == "0127") & (pl.col("sex") == "all") & (pl.col("age_band") == "all")
        & (pl.col("instrument") == "severity04")
    )  # fmt: skip
    measures = model["measures"]["instrument"]
    seen_shown = seen_hidden = 0
    for row in cells.iter_rows(named=True):
        if row["measure"] not in measures:
            continue
        values = model["cells"][f"0|{row['period']}|{row['category']}|{row['need_area']}|severity04"]
        i = measures.index(row["measure"])
        got = values[i] if i < len(values) else None
        if row["status"] == "shown":
            assert got == pytest.approx(row["value"], abs=5e-4), row
            seen_shown += 1
        else:
            assert got is None, row
            seen_hidden += 1
    assert seen_shown > 20 and seen_hidden > 20
