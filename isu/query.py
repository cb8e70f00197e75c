"""Reading published tables out: Python API, SQL (microdata only on request), files and codebook.

Why a separate in-memory database: rather than parse a query to guess whether it reads microdata,
``sql()`` copies the latest publication (``pub_cells`` rows, whose hidden values are already NULL)
into an in-memory DuckDB with file access switched off and locked, and runs the query there. A
query naming ``records`` or ``measurements`` simply finds no such table. With ``microdata=True``
the query runs on a read-only connection to the workspace itself.

Files (``write_files``): one wide file per table (``..`` where hidden, empty where undefined in
CSV/XLSX; nulls plus ``<measure>_status`` columns in Parquet), a codebook and ``audit.json``.

Views offered: ``cells`` (shown cells of the latest publication), ``pub_cells`` (all its cells, with
status; hidden values NULL), ``publications``, and one wide table per published table
(e.g. ``outcomes_category``: one row per cell, one column per measure, NULL where not shown).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import polars as pl

from isu.errors import IsuError
from isu.schemas import code_list
from isu.stats import COUNT_LABELS, STATISTICS
from isu.store import connect

__all__ = [
    "DIM_COLUMNS",
    "MICRODATA_TABLES",
    "code_labels",
    "codebook",
    "latest_cells",
    "published",
    "published_tables",
    "sql",
    "wide",
    "write_files",
]

DIM_COLUMNS = ("period", "geo_level", "geo_code", "category", "need_area", "sex", "age_band", "instrument")
MICRODATA_TABLES = ("records", "measurements", "imports", "rejects", "meta")
_GEO_RANK = {"municipality": 0, "county": 1, "pool": 2, "all": 3}


def latest_cells(con: duckdb.DuckDBPyConnection, publication_id: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(publications, pub_cells of the given or latest publication), or an ``IsuError`` if none."""
    con.execute("SELECT 1").fetchall()  # settle any result left open on a shared connection
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "pub_cells" not in tables:
        raise IsuError("nothing has been published in this workspace yet; run 'isu publish' first")
    pubs = con.sql("SELECT * FROM publications WHERE publication_id IN (SELECT DISTINCT publication_id FROM pub_cells) "
                   "ORDER BY publication_id").pl()
    if pubs.is_empty():
        raise IsuError("nothing has been published in this workspace yet; run 'isu publish' first")
    pid = int(pubs["publication_id"][-1]) if publication_id is None else publication_id
    if pid not in pubs["publication_id"].to_list():
        raise IsuError(f"publication {pid} does not exist; publications: {pubs['publication_id'].to_list()}")
    cells = con.sql("SELECT * FROM pub_cells WHERE publication_id = ?", params=[pid]).pl()
    return pubs, cells


def wide(cells: pl.DataFrame, table: str, *, with_status: bool = False) -> pl.DataFrame:
    """One published table in wide form: its varying dimensions, then one column per measure.

    Values of cells that are not shown are null; ``with_status`` adds ``<measure>_status`` columns.
    """
    part = cells.filter(pl.col("table_name") == table)
    if part.is_empty():
        raise IsuError(f"no published table named {table!r}; tables: {', '.join(published_tables(cells))}")
    keys = [c for c in DIM_COLUMNS if c in ("period", "geo_level", "geo_code") or (part[c] != "all").any()]
    measures = sorted(part["measure"].unique().to_list(), key=_measure_rank)
    part = part.with_columns(pl.when(pl.col("status") == "shown").then(pl.col("value")).alias("value"))
    out = part.pivot(on="measure", index=keys, values="value").select(
        *keys, *(pl.col(m).cast(pl.Int64) if _is_count(m) else pl.col(m) for m in measures))
    if with_status:
        status = part.pivot(on="measure", index=keys, values="status").select(
            *keys, *(pl.col(m).alias(f"{m}_status") for m in measures))
        out = out.join(status, on=keys, how="left", maintain_order="left")
    rank = pl.col("geo_level").replace_strict(_GEO_RANK, default=9, return_dtype=pl.Int8)
    return out.sort(pl.col("period"), rank, *keys[2:])


def _measure_rank(measure: str) -> tuple[int, str]:
    goals = [f"goal_{g}_n" for g in code_list("goal_attainment").codes]
    order = ["records", "clients", *goals, *(m for m in COUNT_LABELS if m not in ("records", "clients")), *STATISTICS]
    return (order.index(measure), "") if measure in order else (len(order), measure)


def published_tables(cells: pl.DataFrame) -> list[str]:
    return sorted(cells["table_name"].unique().to_list())


def _read(db: str | Path | duckdb.DuckDBPyConnection, publication_id: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Publications and cells from a path (opened read-only, then closed) or an open connection."""
    if isinstance(db, duckdb.DuckDBPyConnection):
        return latest_cells(db, publication_id)
    con = connect(db, read_only=True)
    try:
        return latest_cells(con, publication_id)
    finally:
        con.close()


def published(db: str | Path | duckdb.DuckDBPyConnection, table: str | None = None, *,
              publication_id: int | None = None) -> pl.DataFrame:
    """The latest (or given) publication: long ``pub_cells`` rows, or one table in wide form."""
    _, cells = _read(db, publication_id)
    return cells if table is None else wide(cells, table)


def _published_db(db: str | Path | duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    pubs, cells = _read(db)
    mem = duckdb.connect(":memory:")
    frames = {"publications": pubs.with_columns(pl.col("audit").cast(pl.String)), "pub_cells": cells}
    frames |= {name: wide(cells, name) for name in published_tables(cells)}
    for name, frame in frames.items():
        mem.register("_src", frame)
        mem.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _src')
        mem.unregister("_src")
    mem.execute("CREATE VIEW cells AS SELECT * FROM pub_cells WHERE status = 'shown'")
    mem.execute("SET enable_external_access = false")
    mem.execute("SET lock_configuration = true")
    return mem


def sql(db: str | Path | duckdb.DuckDBPyConnection, query: str, microdata: bool = False) -> pl.DataFrame:
    """Run ``query`` over the published tables (default) or, with ``microdata=True``, the workspace.

    Given a path, microdata are read through a read-only connection; given an open connection, the
    query runs on that connection as it is (the caller decides what it may do).
    """
    own = microdata and not isinstance(db, duckdb.DuckDBPyConnection)
    con = (connect(db, read_only=True) if own else db) if microdata else _published_db(db)
    try:
        con.execute("SELECT 1").fetchall()
        rel = con.sql(query)
        return rel.pl() if rel is not None else pl.DataFrame()
    except duckdb.CatalogException as e:
        named = re.search(r"with name (\S+) does not exist", str(e))
        if named and named.group(1).lower() in MICRODATA_TABLES and not microdata:
            raise IsuError(f"{named.group(1)!r} is microdata and 'isu sql' reads published tables only; query cells, "
                           "pub_cells or a published table, or pass --microdata (read-only) if you may see microdata") from None
        raise IsuError(f"SQL error: {e}") from None
    except duckdb.Error as e:
        raise IsuError(f"SQL error: {e}") from None
    finally:
        if own or not microdata:
            con.close()


def code_labels(column: str, code: str) -> tuple[str, str]:
    """Swedish and English label of a published code (the code itself when no list names it)."""
    if code == "all":
        return "Samtliga", "All"
    if column == "period":
        return (f"{code[:4]} {'första' if code.endswith('H1') else 'andra'} halvåret", f"{code[:4]} {'first' if code.endswith('H1') else 'second'} half") \
            if "H" in code else (code, code)
    if column == "geo_level":
        return _GEO_LEVEL_LABELS.get(code, (code, code))
    if column == "age_band":
        return ("Okänd ålder", "Unknown age") if code == "unknown" else (f"{code} år", f"{code} years")
    if column == "geo_code":
        municipalities = code_list("municipalities")
        if code in municipalities:
            return municipalities.label(code, "sv"), municipalities.label(code, "en")
        county = next((r for r in municipalities.rows if r.get("county_code") == code), None)
        if county:
            return county.get("county_sv") or code, county.get("county_en") or code
        column = "pools"
    lists = {"pools": "pools", "category": "intervention_categories", "need_area": "need_areas", "sex": "sexes",
             "instrument": "instruments"}
    cl = code_list(lists[column]) if lists.get(column) else None
    if cl is not None and code in cl:
        return cl.label(code, "sv"), cl.label(code, "en")
    return code, code


def codebook(cells: pl.DataFrame, k: int) -> pl.DataFrame:
    """kind (column / measure / code / rule), name, code, label_sv, label_en for one publication."""
    rows: list[tuple] = [("column", c, None, sv, en) for c, (sv, en) in _COLUMN_LABELS.items()]
    for t in published_tables(cells):
        part = cells.filter(pl.col("table_name") == t)
        dims = [d for d in DIM_COLUMNS[3:] if (part[d] != "all").any()]
        sv, en = _TABLE_LABELS.get(t.partition("_")[0], (t, t))
        rows.append(("table", t, None, f"{sv} efter " + ", ".join(_COLUMN_LABELS[d][0].lower() for d in dims),
                     f"{en} by " + ", ".join(_COLUMN_LABELS[d][1].lower() for d in dims)))
    goals = code_list("goal_attainment")
    for m in sorted(cells["measure"].unique().to_list(), key=_measure_rank):
        if m in STATISTICS:
            sv, en = STATISTICS[m].label_sv, STATISTICS[m].label_en
        elif m.startswith("goal_") and m[5:-2] in goals:
            sv, en = f"Måluppfyllelse: {goals.label(m[5:-2], 'sv')}", f"Goal attainment: {goals.label(m[5:-2], 'en')}"
        else:
            sv, en = COUNT_LABELS.get(m, (m, m))
        rows.append(("measure", m, None, sv, en))
    for c in DIM_COLUMNS:
        for code in sorted(cells[c].unique().to_list()):
            rows.append(("code", c, code, *code_labels(c, code)))
    rows += [("rule", "suppression", None, sv.format(k=k), en.format(k=k)) for sv, en in _RULES]
    return pl.DataFrame(rows, schema=["kind", "name", "code", "label_sv", "label_en"], orient="row")


_COLUMN_LABELS = {
    "table_name": ("Tabell", "Published table"), "period": ("Period (avslutsdatum: år eller halvår)", "Period (end date: year or half-year)"),
    "geo_level": ("Geografisk nivå", "Geographic level"), "geo_code": ("Kommun-, läns- eller poolkod", "Municipality, county or pool code"),
    "geo_name": ("Namn på området", "Area name"),
    "category": ("Insatskategori", "Intervention category"), "need_area": ("Behovsområde", "Need area"), "sex": ("Kön", "Sex"),
    "age_band": ("Åldersgrupp vid avslut", "Age band at end"), "instrument": ("Bedömningsinstrument", "Instrument"),
    "measure": ("Mått", "Measure"), "value": ("Värde", "Value"), "status": ("Status", "Status"),
}
_TABLE_LABELS = {"records": ("Uppföljningsposter och måluppfyllelse", "Follow-up records and goal attainment"),
                 "outcomes": ("Resultat före och efter insats", "Outcomes before and after the intervention")}
_GEO_LEVEL_LABELS = {"municipality": ("Kommun", "Municipality"), "county": ("Län", "County"), "pool": ("Pool (samverkan)", "Pool")}
_RULES = [
    ("Antal från 1 till k-1 visas aldrig (..); noll visas. k = {k}.",
     "Counts 1 to k-1 are never shown (..); zeros are shown. k = {k}."),
    ("Medelvärden, andelar, konfidensintervall och effektstorlekar visas bara när parat n >= {k} och alla antal de bygger på visas.",
     "Means, shares, confidence intervals and effect sizes are shown only when paired n >= {k} and every count they use is shown."),
    ("Sekundär sekretess: fler celler döljs så att ingen dold cell kan räknas fram ur summor och delsummor; granskat i varje körning.",
     "Secondary suppression: further cells are hidden so no hidden cell can be recomputed from totals and subtotals; audited in every run."),
    ("Antal unika klienter döljs också när motsvarande antal poster är dolt.",
     "Distinct clients are also hidden whenever the matching number of records is hidden."),
]


def _text(w: pl.DataFrame, measures: list[str]) -> pl.DataFrame:
    """Values as text: rounded numbers when shown, '..' when hidden, empty when undefined."""
    def cell(m: str) -> pl.Expr:
        v = pl.col(m).cast(pl.Int64).cast(pl.String) if _is_count(m) else pl.col(m).round(4).cast(pl.String)
        st = pl.col(f"{m}_status")
        return pl.when(st == "shown").then(v).when(st.is_in(["primary", "secondary"])).then(pl.lit("..")).otherwise(None).alias(m)
    keys = [c for c in w.columns if c not in measures and not c.endswith("_status")]
    return w.select(*keys, *(cell(m) for m in measures))


def _is_count(measure: str) -> bool:
    return measure in ("records", "clients") or measure.endswith("_n")


def _write_xlsx(text: pl.DataFrame, measures: list[str], path: Path) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet(path.stem[:31])
    sheet.write_row(0, 0, text.columns)
    numeric = {text.columns.index(m) for m in measures}
    for r, row in enumerate(text.iter_rows(), start=1):
        for c, v in enumerate(row):
            if c in numeric and v not in ("..", "", None):
                sheet.write_number(r, c, float(v))
            elif v:
                sheet.write_string(r, c, v)
    book.close()


def _with_geo_name(w: pl.DataFrame) -> pl.DataFrame:
    names = {c: code_labels("geo_code", c)[0] for c in w["geo_code"].unique().to_list()}
    i = w.columns.index("geo_code") + 1
    return w.insert_column(i, w["geo_code"].replace_strict(names, return_dtype=pl.String).alias("geo_name"))


def write_files(folder: Path, cells: pl.DataFrame, summary: dict, fmt: str) -> list[Path]:
    """One file per published table, the codebook and audit.json, written into ``folder``."""
    files: list[Path] = []

    def save(frame: pl.DataFrame, stem: str, measures: list[str]) -> None:
        path = folder / f"{stem}.{fmt}"
        if fmt == "parquet":
            frame.write_parquet(path)
        elif fmt == "csv":
            (_text(frame, measures) if measures else frame).write_csv(path)
        else:
            _write_xlsx(_text(frame, measures) if measures else frame, measures, path)
        files.append(path)

    for table in published_tables(cells):
        w = _with_geo_name(wide(cells, table, with_status=True))
        save(w, table, [c for c in w.columns if f"{c}_status" in w.columns])
    save(codebook(cells, int(summary["threshold"])), "codebook", [])
    path = folder / "audit.json"
    path.write_text(json.dumps(summary, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return [*files, path]
