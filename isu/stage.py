"""Staging inside the import transaction: the typed, checked rows of one export, without raw ids.

``build_stage`` runs the one scan of the file (text layer → typed layer, see ``isu.validate``)
into a temporary table ``_isu_stage``. ``stage_tables`` adds the checks that need more than one row
(duplicate keys; long exports' rows of one record that disagree) and splits accepted rows into
``_acc_records`` and ``_acc_meas``.
"""

from __future__ import annotations

import duckdb

from isu.store import fetch_one

from isu.schemas import Profile

from .read import Source
from .validate import q, text_layer, typed_layer

__all__ = ["build_stage", "stage_tables", "Malformed"]

Malformed = tuple[int, str]  # (line, DuckDB's error kind)
RECORD_FIELDS = (
    "municipality", "record_key", "client", "sex", "birth_year", "need_area", "intervention_code", "category",
    "legal_basis", "provider", "started_on", "ended_on", "end_reason", "goal_attainment",
)


def build_stage(con: duckdb.DuckDBPyConnection, profile: Profile, src: Source, scan: str, *, municipality: str | None,
                params: dict) -> list[Malformed]:
    """Create ``_isu_stage`` from one scan; return the malformed lines DuckDB set aside.

    The caller switches spilling to disk off (``isu.importer.no_spill``): the scan's inner steps
    hold raw person ids, which must never reach a temporary file.
    """
    text = text_layer(profile, set(src.header), municipality=municipality)
    typed = typed_layer(profile, text)
    con.execute("DROP TABLE IF EXISTS _isu_stage")
    text.create_alias_tables(con)
    con.execute(f"CREATE TEMP TABLE _isu_stage AS {typed.sql(text.sql(scan))}", params or None)
    if src.kind != "csv":
        return []  # XLSX has no malformed lines
    try:
        rows = con.execute("SELECT line, CAST(min(error_type) AS VARCHAR) FROM reject_errors GROUP BY line ORDER BY line").fetchall()
    except duckdb.CatalogException:
        return []
    con.execute("DROP TABLE IF EXISTS reject_errors")
    con.execute("DROP TABLE IF EXISTS reject_scans")
    return [(int(line), kind) for line, kind in rows]


def _flag(con: duckdb.DuckDBPyConnection, rows_sql: str, column: str, type_: str, value: str) -> None:
    """A check over several rows: appended to the ``_rejects`` of the rows it names."""
    col = column.replace("'", "''")
    con.execute(f"""UPDATE _isu_stage SET _ok = false, _rejects = list_append(coalesce(_rejects, []),
                    {{'column': '{col}', 'type': '{type_}', 'value': CAST({value} AS VARCHAR)}}) WHERE _row IN ({rows_sql})""")


def stage_tables(con: duckdb.DuckDBPyConnection, profile: Profile) -> dict[str, int]:
    key_col = profile.columns.get("record_key", "record_key")
    keyed = "municipality IS NOT NULL AND record_key IS NOT NULL"
    if profile.shape == "wide":
        _flag(con, f"SELECT _row FROM (SELECT _row, count(*) OVER (PARTITION BY municipality, record_key) AS c FROM _isu_stage WHERE {keyed}) WHERE c > 1",
              key_col, "duplicate_key", "record_key")
    else:
        fields = ", ".join(f for f in RECORD_FIELDS if f != "record_key")
        _flag(con, f"""SELECT _row FROM (SELECT _row, count(DISTINCT ({fields})) OVER (PARTITION BY municipality, record_key) AS c
                       FROM _isu_stage WHERE {keyed}) WHERE c > 1""", key_col, "conflicting_record", "record_key")
        _flag(con, f"""SELECT _row FROM (SELECT _row, count(*) OVER (PARTITION BY municipality, record_key, timepoint, instrument) AS c
                       FROM _isu_stage WHERE {keyed} AND timepoint IS NOT NULL AND instrument IS NOT NULL) WHERE c > 1""",
              profile.long.get("timepoint", "timepoint"), "duplicate_measurement", "NULL")
    cols = ", ".join(RECORD_FIELDS)
    ok = "_ok"
    if profile.shape == "wide":
        con.execute(f"CREATE TEMP TABLE _acc_records AS SELECT {cols} FROM _isu_stage WHERE {ok}")
        parts = []
        for g, group in enumerate(profile.groups):
            for tp in group.timepoints:
                p = f"m{g}_{tp}_"
                parts.append(f"SELECT municipality, record_key, '{tp}' AS timepoint, {q(p + 'instrument')} AS instrument, "
                             f"{q(p + 'measured_on')} AS measured_on, {q(p + 'value')} AS value FROM _isu_stage WHERE {ok} AND {q(p + 'present')}")
        meas = " UNION ALL ".join(parts) or "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::DATE, NULL::DOUBLE WHERE false"
        con.execute(f"CREATE TEMP TABLE _acc_meas AS {meas}")
    else:
        con.execute(f"CREATE TEMP TABLE _acc_records AS SELECT DISTINCT ON (municipality, record_key) {cols} FROM _isu_stage WHERE {ok} ORDER BY municipality, record_key, _row")
        con.execute(f"CREATE TEMP TABLE _acc_meas AS SELECT municipality, record_key, timepoint, instrument, measured_on, value FROM _isu_stage WHERE {ok}")
    parsed, rejected = fetch_one(con, f"SELECT count(*), count(*) FILTER (NOT {ok}) FROM _isu_stage")
    return {"parsed": parsed, "rejected": rejected}
