"""SQL over published tables: views, wide tables, refusal of microdata without the flag, the CLI."""

import json
import subprocess

import polars as pl
import pytest
from isu.cli.main import app
from test_aggregate import random_store
from typer.testing import CliRunner

from isu import query
from isu.errors import IsuError
from isu.store import connect

SPEC_ARGS = ["--period", "year"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "w.duckdb"
    random_store(path, n=120, municipalities=("2303", "2305"), instruments=("severity04",)).close()
    result = CliRunner().invoke(app, ["--db", str(path), "publish", "--json", "--lp-max-cells", "0", *SPEC_ARGS,
                                      "--out", str(path.parent / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["publication_id"] == 1 and summary["audit"]["disclosed"] == 0
    assert (path.parent / "out" / "outcomes_category.csv").exists()
    return path


def test_cells_view_holds_shown_cells_only(db):
    counts = query.sql(db, "SELECT status, count(*) AS n FROM cells GROUP BY status")
    assert counts["status"].to_list() == ["shown"]
    hidden = query.sql(db, "SELECT count(*) AS n, count(value) AS v FROM pub_cells WHERE status IN ('primary', 'secondary')")
    assert hidden["n"][0] > 0 and hidden["v"][0] == 0  # hidden values are NULL
    latest = query.sql(db, "SELECT DISTINCT publication_id FROM pub_cells")
    assert latest["publication_id"].to_list() == [1]


def test_wide_tables(db):
    wide = query.published(db, "records_category")
    assert wide.columns[:4] == ["period", "geo_level", "geo_code", "category"]
    assert wide.columns[4:6] == ["records", "clients"] and wide["records"].dtype == pl.Int64
    via_sql = query.sql(db, "SELECT * FROM records_category")
    assert via_sql.sort(via_sql.columns[:4]).equals(wide.sort(wide.columns[:4]))
    long = query.published(db)
    shown = long.filter((pl.col("table_name") == "records_category") & (pl.col("measure") == "records")
                        & (pl.col("status") == "shown"))
    assert wide["records"].drop_nulls().len() == shown.height
    with pytest.raises(IsuError, match="no published table"):
        query.published(db, "records")


@pytest.mark.parametrize("q", ["SELECT * FROM records", "SELECT count(*) FROM measurements m", "SELECT * FROM main.records"])
def test_microdata_refused_without_flag(db, q):
    with pytest.raises(IsuError, match="microdata"):
        query.sql(db, q)


def test_microdata_with_flag_is_read_only(db):
    n = query.sql(db, "SELECT count(*) AS n FROM records", microdata=True)["n"][0]
    assert n == 120
    with pytest.raises(IsuError, match="SQL error"):
        query.sql(db, "DELETE FROM records", microdata=True)
    assert query.sql(db, "SELECT count(*) AS n FROM records", microdata=True)["n"][0] == 120


def test_no_way_back_to_the_workspace_file(db):
    for q in (f"ATTACH '{db}' AS w", f"SELECT * FROM read_parquet('{db.parent / 'x.parquet'}')",
              "SET enable_external_access = true"):
        with pytest.raises(IsuError):
            query.sql(db, q)


def test_nothing_published_yet(tmp_path):
    connect(tmp_path / "e.duckdb", create=True).close()
    with pytest.raises(IsuError, match="isu publish"):
        query.sql(tmp_path / "e.duckdb", "SELECT * FROM cells")


def test_cli_sql_formats(db):
    runner = CliRunner()
    q = "SELECT period, geo_code, records FROM records_category WHERE category = 'all' ORDER BY ALL"
    csv = runner.invoke(app, ["--db", str(db), "sql", q, "--format", "csv"])
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0] == "period,geo_code,records"
    rows = json.loads(runner.invoke(app, ["--db", str(db), "sql", q, "--format", "json"]).stdout)
    assert {r["geo_code"] for r in rows} >= {"2303", "2305", "23", "all"}
    table = runner.invoke(app, ["--db", str(db), "sql", q])
    assert table.exit_code == 0 and "row(s)" in table.stdout
    refused = runner.invoke(app, ["--db", str(db), "sql", "SELECT * FROM records"])
    assert isinstance(refused.exception, IsuError)


def test_cli_refusal_is_one_line(db):
    proc = subprocess.run(["isu", "--db", str(db), "sql", "SELECT * FROM records"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "microdata" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_open_connection_accepted(db):
    con = connect(db, read_only=True)
    try:
        assert query.published(con, "outcomes_category").equals(query.published(db, "outcomes_category"))
        assert query.sql(con, "SELECT count(*) AS n FROM cells")["n"][0] > 0
        with pytest.raises(IsuError, match="microdata"):
            query.sql(con, "SELECT * FROM records")
    finally:
        con.close()
