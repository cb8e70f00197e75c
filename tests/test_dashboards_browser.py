"""The dashboard in a real browser: Debian's headless chromium driven by playwright.

The page must load from a file with no console errors and no network request, draw every chart,
react to its filters, show ``..`` for hidden cells, and leave a screenshot for a person to look at
(in pytest's tmp dir and, when ``ISU_SCREENSHOT_DIR`` is set, there too).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from isu.dashboards import build_dashboard
from test_dashboards_support import make_workspace, synthetic_cells

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
IN_CI = os.environ.get("CI") == "true"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists() and not IN_CI, reason="needs Debian's chromium at /usr/bin/chromium"),
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api") if not IN_CI else __import__("playwright.sync_api").sync_api
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    db = make_workspace(tmp / "isu.duckdb", synthetic_cells(size=3, density=0.25, seed=11))
    return {
        "municipality_sv": build_dashboard(db, tmp / "nykvarn.html", municipality="0140").path,
        "all_en": build_dashboard(db, tmp / "all.html", lang="en").path,
    }


def open_page(browser, path: Path):
    """Open ``path``; record console errors, page errors and every request that is not the file itself."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            problems.append(f"request: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
    return page, problems


def shoot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("ISU_SCREENSHOT_DIR"):
        target = Path(os.environ["ISU_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / name)
    return shot


def figures_drawn(page) -> dict[str, int]:
    return page.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll('.figure')).map(d => [d.id, d.querySelectorAll('svg.main-svg').length]))"
    )


def table_text(page) -> list[list[str]]:
    return page.evaluate(
        "Array.from(document.querySelectorAll('#numbers tbody tr')).map(r => Array.from(r.children).map(c => c.textContent))"
    )


def test_municipality_page_renders_filters_and_hides(browser, pages, tmp_path):
    page, problems = open_page(browser, pages["municipality_sv"])
    try:
        drawn = figures_drawn(page)
        assert len(drawn) == 6 and all(n > 0 for n in drawn.values()), drawn
        assert page.inner_text("h1") == "Före och efter insatsen – Nykvarn"

        # hidden cells show "..", with the explanation in the notes
        before = table_text(page)
        hidden = page.locator("#numbers td.hidden")
        hidden_at_start = hidden.count()
        assert hidden_at_start > 0 and set(hidden.all_inner_texts()) == {".."}
        assert "uppgift saknas eller är sekretessmarkerad för att skydda enskilda" in page.inner_text("body").lower()

        # a filter changes what is shown
        renders = int(page.get_attribute("body", "data-renders"))
        page.select_option("#f-period", "2024H1")
        page.wait_for_function(f"document.body.dataset.renders > {renders}")
        assert table_text(page) != before
        assert "2024, halvår 1" in page.inner_text("#cards")
        assert hidden.count() > hidden_at_start  # a half-year has fewer clients, so more is hidden
        page.select_option("#f-need", "housing")
        page.wait_for_function(f"document.body.dataset.renders > {renders + 1}")
        assert table_text(page)[0][0] == "Boende"
        assert "Boende" in page.inner_text("#selection")
        assert all(n > 0 for n in figures_drawn(page).values())
        page.select_option("#f-need", "all")
        page.select_option("#f-period", "all")

        shot = shoot(page, tmp_path, "dashboard-municipality-sv.png")
        assert shot.stat().st_size > 50_000
        assert problems == []
    finally:
        page.close()


def test_english_page_and_funnel(browser, pages, tmp_path):
    page, problems = open_page(browser, pages["all_en"])
    try:
        assert page.inner_text("h1") == "Before and after the intervention – All municipalities"
        assert all(n > 0 for n in figures_drawn(page).values())
        # ten municipalities in the funnel, drawn as points
        points = page.evaluate(
            "document.getElementById('fig-funnel').data.filter(t => t.mode && t.mode.includes('markers'))"
            ".reduce((s, t) => s + t.x.length, 0)"
        )
        assert points == 10
        page.select_option("#f-cat", "family_support")
        assert page.inner_text("#numbers tbody tr th") == "Family support"
        shoot(page, tmp_path, "dashboard-all-en.png")
        assert problems == []
    finally:
        page.close()


def test_rows_of_an_unused_instrument_are_left_out(browser, tmp_path):
    """Where the chosen instrument was published as never used (t0_n = 0), the before/after chart has
    no row for it (nothing is hidden there, so ``..`` would wrongly suggest secrecy)."""
    import polars as pl
    from isu.schemas import code_list

    cells = synthetic_cells(size=14, density=0.9, seed=5, instruments=("severity04", "wellbeing10"))
    unused = "foster_care"
    mask = (pl.col("instrument") == "wellbeing10") & (pl.col("category") == unused)
    counts = pl.col("measure").str.ends_with("_n")
    cells = cells.with_columns(
        value=pl.when(mask & counts).then(0.0).when(mask).then(None).otherwise(pl.col("value")),
        status=pl.when(mask & counts).then(pl.lit("shown")).when(mask).then(pl.lit("na")).otherwise(pl.col("status")))
    db = make_workspace(tmp_path / "isu.duckdb", cells)
    label = code_list("intervention_categories").row(unused)["label_en"]
    page, problems = open_page(browser, build_dashboard(db, tmp_path / "d.html", lang="en").path)
    try:
        rows = "[].concat(...document.getElementById('fig-beforeafter').data.map(t => t.y || []))"
        page.select_option("#f-instr", "severity04")
        page.wait_for_timeout(200)
        assert label in page.evaluate(rows)
        renders = int(page.get_attribute("body", "data-renders"))
        page.select_option("#f-instr", "wellbeing10")
        page.wait_for_function(f"document.body.dataset.renders > {renders}")
        assert label not in page.evaluate(rows) and len(page.evaluate(rows)) > 0
        assert problems == []
    finally:
        page.close()
