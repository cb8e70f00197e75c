"""Read the latest publication, and nothing else, from the workspace.

The dashboard's only inputs are ``publications`` and ``pub_cells``: it never reads ``records`` or
``measurements``, so it cannot show anything that suppression hid. As a second guard, a value is
used only when its status is ``shown``; every other cell reaches the page as ``None`` (``..``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from isu.errors import WorkspaceError

__all__ = ["NoPublication", "Publication", "latest_publication", "load_cells", "published_geos"]

KEYS = ["geo_level", "geo_code", "period", "category", "need_area", "instrument"]


class NoPublication(WorkspaceError):
    """The workspace holds no publication to draw from."""


@dataclass(frozen=True)
class Publication:
    publication_id: int
    created_at: datetime
    threshold: int
    toolkit_version: str
    audit: dict[str, Any] = field(default_factory=dict)


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    [(count,)] = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()
    return bool(count)


def latest_publication(con: duckdb.DuckDBPyConnection) -> Publication:
    """The newest publication that holds cells, or ``NoPublication``."""
    if not (_has_table(con, "publications") and _has_table(con, "pub_cells")):
        raise NoPublication("the workspace holds no published tables yet; run 'isu publish' first")
    rows = con.execute(
        """SELECT publication_id, created_at, threshold, toolkit_version, audit FROM publications p
           WHERE EXISTS (SELECT 1 FROM pub_cells c WHERE c.publication_id = p.publication_id)
           ORDER BY publication_id DESC LIMIT 1"""
    ).fetchall()
    if not rows:
        raise NoPublication("the workspace holds no publication with cells; run 'isu publish' first")
    row = rows[0]
    audit = row[4]
    if isinstance(audit, str):
        try:
            audit = json.loads(audit)
        except ValueError:
            audit = {}
    return Publication(int(row[0]), row[1], int(row[2]), str(row[3]), audit if isinstance(audit, dict) else {})


def published_geos(con: duckdb.DuckDBPyConnection, publication_id: int) -> set[tuple[str, str]]:
    rows = con.execute(
        "SELECT DISTINCT geo_level, geo_code FROM pub_cells WHERE publication_id = ?", [publication_id]
    ).fetchall()
    return {(str(level), str(code)) for level, code in rows}


def load_cells(
    con: duckdb.DuckDBPyConnection,
    publication_id: int,
    geos: Iterable[tuple[str, str]],
    measures: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Wide cells (one row per area × period × category × need area × instrument, one column per
    measure) for the sex and age margins. Hidden or undefined cells are null whatever ``value`` holds.
    """
    geo_list = sorted(set(geos))
    if not geo_list:
        return pl.DataFrame(schema={k: pl.String for k in KEYS})
    params: list[Any] = [publication_id]
    geo_sql = " OR ".join("(geo_level = ? AND geo_code = ?)" for _ in geo_list)
    for level, code in geo_list:
        params += [level, code]
    measure_sql = ""
    if measures is not None:
        measure_list = sorted(set(measures))
        measure_sql = f"AND measure IN ({', '.join('?' for _ in measure_list)})"
        params += measure_list
    long = con.sql(
        f"""SELECT {', '.join(KEYS)}, measure,
                   max(CASE WHEN status = 'shown' THEN value END) AS value
            FROM pub_cells
            WHERE publication_id = ? AND sex = 'all' AND age_band = 'all' AND ({geo_sql}) {measure_sql}
            GROUP BY ALL""",
        params=params,
    ).pl()
    if long.is_empty():
        return pl.DataFrame(schema={k: pl.String for k in KEYS})
    wide = long.pivot(on="measure", index=KEYS, values="value", aggregate_function="first", sort_columns=True)
    return wide.sort(KEYS)  # the same publication always gives the same page
