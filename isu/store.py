"""The workspace: one DuckDB file with plain, documented tables.

Microdata (``records``, ``measurements``) hold pseudonyms only. Published tables (``pub_*``) are
separate and hold only what passed suppression and audit. Every write happens in one transaction;
DuckDB's single-writer file lock is turned into a clear ``WorkspaceBusy``.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from . import sql_text
from .errors import WorkspaceBusy, WorkspaceError, WorkspaceReadOnly
from .paths import exists

__all__ = ["fetch_one", "DDL", "STORE_VERSION", "WORKSPACE", "default_db_path", "connect", "init_store", "transaction", "TABLE_DOCS"]

STORE_VERSION = "1"

#: Table → one-line description (README and ``isu status`` use these).
TABLE_DOCS = {
    "meta": "key/value facts about the workspace (store version, key fingerprint)",
    "imports": "one row per import (file or pool package): hash, profile, counts, time, version",
    "records": "follow-up records, one per municipality × record_key; client is a keyed pseudonym",
    "measurements": "instrument values per record and time point (T0 baseline, T1 end, T2… follow-up)",
    "rejects": "rows that were not stored: import, source row, column, masked value, error type, message",
    "publications": "one row per publish run: threshold, audit summary (JSON), time, version",
    "pub_cells": "published cells (long form): hidden values are NULL with status primary/secondary/na",
}

DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS import_seq START 1;
CREATE TABLE IF NOT EXISTS imports (
    import_id INTEGER PRIMARY KEY,
    kind VARCHAR NOT NULL,             -- 'file' or 'pool'
    file_name VARCHAR,
    file_sha256 VARCHAR NOT NULL,
    profile VARCHAR,
    municipality VARCHAR,              -- municipalities in the file, comma-separated
    rows_read BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    records_inserted BIGINT NOT NULL,
    records_updated BIGINT NOT NULL,
    records_unchanged BIGINT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    toolkit_version VARCHAR NOT NULL,
    key_fingerprint VARCHAR
);
CREATE TABLE IF NOT EXISTS records (
    municipality VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    client VARCHAR NOT NULL USING COMPRESSION uncompressed,  -- keyed hash, 64 hex digits: compressing them
                                       -- (to ~36 bytes) took 40% of the time to write a record
    sex VARCHAR,
    birth_year SMALLINT,
    need_area VARCHAR NOT NULL,
    intervention_code VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    legal_basis VARCHAR,
    provider VARCHAR,
    started_on DATE NOT NULL,
    ended_on DATE,
    end_reason VARCHAR,
    goal_attainment VARCHAR,
    import_id INTEGER NOT NULL,
    row_hash UBIGINT                   -- 64-bit hash of the record and its measurements: tells updates from no-ops
    -- unique (municipality, record_key): kept by the writers (isu.upsert, isu.pool_import), not by an
    -- index, which doubled the cost of every import and commit
);
CREATE TABLE IF NOT EXISTS measurements (
    municipality VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    timepoint VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    measured_on DATE,
    value DOUBLE NOT NULL
    -- unique (municipality, record_key, timepoint, instrument): kept by the writers, as for records
);
CREATE TABLE IF NOT EXISTS rejects (
    import_id INTEGER NOT NULL,
    row_number BIGINT NOT NULL,
    column_name VARCHAR,
    value_masked VARCHAR,
    error_type VARCHAR NOT NULL,
    message VARCHAR NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS publication_seq START 1;
CREATE TABLE IF NOT EXISTS pub_cells (
    publication_id INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    period VARCHAR NOT NULL,
    geo_level VARCHAR NOT NULL,
    geo_code VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    need_area VARCHAR NOT NULL,
    sex VARCHAR NOT NULL,
    age_band VARCHAR NOT NULL,
    instrument VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    value DOUBLE,
    status VARCHAR NOT NULL CHECK (status IN ('shown', 'primary', 'secondary', 'na'))
);
CREATE TABLE IF NOT EXISTS publications (
    publication_id INTEGER PRIMARY KEY,
    created_at TIMESTAMP NOT NULL,
    threshold INTEGER NOT NULL,
    toolkit_version VARCHAR NOT NULL,
    audit JSON NOT NULL
);
"""


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params=None):
    """The first row or None, with the result consumed (DuckDB 2 keeps a half-read result open,
    which blocks ``register`` and friends on the same connection)."""
    rows = con.execute(sql, params).fetchall()
    return rows[0] if rows else None


def default_db_path() -> Path:
    return Path(os.environ.get("ISU_DB") or "isu.duckdb")


def _is_lock_error(e: Exception) -> bool:
    text = str(e).lower()
    return "lock" in text and ("conflicting" in text or "could not set lock" in text)


def connect(path: str | Path, *, read_only: bool = False, create: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the workspace. ``create`` makes it (and its tables) if missing."""
    path = Path(path)
    if exists(path) is None:  # a folder on the way to it without permission
        raise WorkspaceError(_no_access(path))
    if os.sep == "/" and "\\" in str(path.absolute()):  # DuckDB would open another path, or none
        part = next(p for p in (path.absolute(), *path.absolute().parents) if "\\" in p.name)
        raise WorkspaceError(f"cannot open the workspace {path}: DuckDB reads the backslash (\\) in {part} as a folder "
                             "separator; rename it without the backslash, or name another with --db (or ISU_DB)")
    if path.is_dir():
        raise WorkspaceError(f"{path} is a folder, not a workspace file; give --db (or ISU_DB) the file itself, e.g. {path / 'isu.duckdb'}")
    if not path.exists() and not path.parent.is_dir():
        if path.parent.exists():
            raise WorkspaceError(f"no workspace at {path}: {path.parent} is a file, not a folder; check --db (or ISU_DB)")
        raise WorkspaceError(f"no workspace at {path}: the folder {path.parent} does not exist; check --db (or ISU_DB), "
                             f"or create the folder (mkdir -p {path.parent}) and run 'isu init'")
    if not path.exists() and not create:
        raise WorkspaceError(f"no workspace at {path}; run 'isu init' (or pass --db PATH)")
    _check_is_duckdb(path)
    if not read_only and path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        where = "the file" if not os.access(path, os.W_OK) else f"its folder {path.parent}"
        raise WorkspaceReadOnly(f"cannot write to workspace {path}: {where} is read-only (isu status and isu sql can still read it)")
    try:
        con = _attach(path, read_only)
    except duckdb.IOException as e:
        if _is_lock_error(e):
            raise WorkspaceBusy(f"workspace busy: another isu process is using {path}; try again when it has finished") from None
        if "permission denied" in str(e).lower():
            raise WorkspaceError(_no_access(path)) from None
        raise WorkspaceError(f"cannot open workspace {path}: {e}") from None
    except duckdb.Error as e:
        raise WorkspaceError(f"{path} is not a usable isu workspace: {e}") from None
    con.execute("SET enable_progress_bar = false")  # DuckDB's own bar would break --json output
    if os.environ.get("ISU_MEMORY_LIMIT"):  # default: DuckDB's own (80% of RAM)
        con.execute(f"SET memory_limit = '{os.environ['ISU_MEMORY_LIMIT']}'")
    if not read_only:
        init_store(con)
    _check_version(con, path)
    return con


#: The name the workspace is attached under. DuckDB stores a database's name in its file, and
#: names a file opened directly after the file (``198112189876.duckdb`` would hold a person id);
#: attached under a fixed name, the file holds that name only.
WORKSPACE = "ws"


def _attach(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the workspace file attached as ``WORKSPACE`` and in use, its
    spill folder beside it as when DuckDB opens a file itself."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_text.string(str(path))} AS {WORKSPACE}" + (" (READ_ONLY)" if read_only else ""))
        con.execute(f"USE {WORKSPACE}")
        con.execute(f"SET temp_directory = {sql_text.string(str(path.absolute()) + '.tmp')}")
    except BaseException:
        con.close()
        raise
    return con


def _no_access(path: Path) -> str:
    return (f"cannot open the workspace {path}: permission denied; ask whoever manages it for read access (and write "
            "access, to import), or name another with --db (or ISU_DB)")


def _check_is_duckdb(path: Path) -> None:
    """An existing file must be a DuckDB database (its header carries ``DUCK`` at byte 8): DuckDB
    would otherwise read some files (CSV, JSON, Parquet) as an in-memory database, and an import
    would report success and save nothing."""
    if not path.is_file() or path.stat().st_size == 0:
        return  # missing (created if allowed), empty (DuckDB initialises it) or a folder (DuckDB's own error)
    try:
        with path.open("rb") as f:
            head = f.read(12)
    except PermissionError:
        raise WorkspaceError(_no_access(path)) from None
    except OSError as e:
        raise WorkspaceError(f"cannot open workspace {path}: {e.strerror}") from None
    if head[8:12] != b"DUCK":
        raise WorkspaceError(f"{path} is not an isu workspace (not a DuckDB file); pass --db with a .duckdb path, or 'isu init' a new one")


def init_store(con: duckdb.DuckDBPyConnection) -> None:
    with transaction(con):
        con.execute(DDL)
        con.execute("INSERT OR IGNORE INTO meta VALUES ('store_version', ?)", [STORE_VERSION])


def _check_version(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        row = fetch_one(con, "SELECT value FROM meta WHERE key = 'store_version'")
    except duckdb.CatalogException:
        raise WorkspaceError(f"{path} is a DuckDB file but not an isu workspace; run 'isu init' on a new path") from None
    if row and row[0] != STORE_VERSION:
        raise WorkspaceError(f"{path} has store version {row[0]}; this toolkit reads version {STORE_VERSION}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One all-or-nothing unit of work."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
