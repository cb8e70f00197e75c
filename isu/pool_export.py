"""``isu pool export``: a municipality's pseudonymised records as one package for the region.

Only the contract's columns leave the workspace (no ``import_id``, no free text, and there are no
raw ids in the store to leave). The rows are held to the same checks the region will apply, so
a package that leaves is one the region accepts; measurements travel only with their record.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from . import __version__, sql_text
from .errors import IsuError, KeyFileError, UsageError, WorkspaceError
from .pool_contract import measurement_columns, record_columns, violations
from .pool_package import (
    FORMAT,
    PACKAGE_VERSION,
    FileEntry,
    Manifest,
    MunicipalityEntry,
    Period,
    file_sha256,
    member_name,
    write_package,
)
from .schemas import SCHEMA_VERSION
from .store import STORE_VERSION

__all__ = ["build_manifest", "export_package", "municipality_stats", "parquet_source", "workspace_fingerprint"]


def parquet_source(path: Path) -> str:
    """A ``read_parquet`` FROM term for ``path``."""
    return f"read_parquet({sql_text.string(str(path))})"


def workspace_fingerprint(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key = 'key_fingerprint'").fetchone()
    return row[0] if row else None


def municipality_stats(con: duckdb.DuckDBPyConnection, records: str, measurements: str,
                       group: str | None = None) -> dict[object, list[MunicipalityEntry]]:
    """Per municipality: row counts and first/last date, over two relations (SQL FROM terms).

    Keyed by the value of the column ``group`` (None without one), municipalities in code order.
    """
    g = group or "0"  # a constant, not NULL: NULL keys would not join
    rows = con.execute(f"""
        WITH r AS (SELECT {g} AS g, municipality, count(*) AS n, least(min(started_on), min(ended_on)) AS first,
                          greatest(max(started_on), max(ended_on)) AS last FROM {records} GROUP BY ALL),
             m AS (SELECT {g} AS g, municipality, count(*) AS n, min(measured_on) AS first,
                          max(measured_on) AS last FROM {measurements} GROUP BY ALL)
        SELECT g, municipality, coalesce(r.n, 0), coalesce(m.n, 0), least(r.first, m.first), greatest(r.last, m.last)
        FROM r FULL JOIN m USING (g, municipality) ORDER BY g, municipality
    """).fetchall()
    out: dict[object, list[MunicipalityEntry]] = {}
    for key, c, nr, nm, f, l in rows:
        out.setdefault(key if group else None, []).append(
            MunicipalityEntry(code=c, records=nr, measurements=nm, period=Period(first=f, last=l)))
    return out


def build_manifest(
    con: duckdb.DuckDBPyConnection, members: dict[str, Path], key_fingerprint: str, created_at: datetime | None = None
) -> Manifest:
    """The manifest for two Parquet files (keys of ``members``: 'records', 'measurements')."""
    src = {t: parquet_source(p) for t, p in members.items()}
    munis = municipality_stats(con, src["records"], src["measurements"]).get(None, [])
    firsts = [m.period.first for m in munis if m.period.first]
    lasts = [m.period.last for m in munis if m.period.last]
    files = [
        FileEntry(name=member_name(t), table=t, bytes=p.stat().st_size, sha256=file_sha256(p),
                  rows=sum(m.records if t == "records" else m.measurements for m in munis))
        for t, p in members.items()
    ]
    return Manifest(
        format=FORMAT, package_version=PACKAGE_VERSION, schema_version=SCHEMA_VERSION, store_version=STORE_VERSION,
        toolkit_version=__version__, created_at=created_at or datetime.now(UTC),
        key_fingerprint=key_fingerprint, municipalities=munis,
        period=Period(first=min(firsts, default=None), last=max(lasts, default=None)), files=files,
    )


def export_package(
    con: duckdb.DuckDBPyConnection, out: str | Path, *, municipality: str | None = None,
    key_fingerprint: str | None = None,
) -> dict:
    """Write the package ``out`` (all municipalities in the workspace unless one is named).

    ``key_fingerprint``, when given (the caller's ``--key-file``), must be the workspace's.
    """
    out = Path(out)
    fingerprint = workspace_fingerprint(con)
    present = [r[0] for r in con.execute("SELECT DISTINCT municipality FROM records ORDER BY 1").fetchall()]
    if not present or fingerprint is None:
        raise WorkspaceError("nothing to export: the workspace holds no pseudonymised records; run 'isu import' first")
    if key_fingerprint is not None and key_fingerprint != fingerprint:
        raise KeyFileError(f"the key file (fingerprint {key_fingerprint}) is not the key this workspace was "
                       f"pseudonymised with ({fingerprint}); pass the pool's key with --key-file")
    if municipality is not None and municipality not in present:
        raise IsuError(f"municipality {municipality} has no records in this workspace (it holds {', '.join(present)})")
    codes = [municipality] if municipality else present
    con.execute("SET enable_progress_bar = false")  # DuckDB would draw it on stdout, into --json
    rcols = ", ".join(record_columns())
    mcols = ", ".join(f"m.{c}" for c in measurement_columns())
    if not out.parent.is_dir():
        raise UsageError(f"cannot write package {out}: folder {out.parent} does not exist; create it or choose another --out")
    if out.is_dir() or not os.access(out.parent, os.W_OK | os.X_OK):
        what = f"{out} is a folder" if out.is_dir() else f"folder {out.parent} is not writable"
        raise UsageError(f"cannot write package {out}: {what}; choose another --out (a file, e.g. 0126-2024.isupool.zip)")
    with tempfile.TemporaryDirectory(prefix=".isu-pool-", dir=out.parent) as tmp:
        members = {t: Path(tmp) / member_name(t) for t in ("records", "measurements")}
        con.execute(f"""COPY (SELECT {rcols} FROM records WHERE municipality IN (SELECT unnest($codes))
                              ORDER BY municipality, record_key)
                        TO {sql_text.string(str(members["records"]))} (FORMAT parquet, COMPRESSION zstd)""", {"codes": codes})
        con.execute(f"""COPY (SELECT {mcols} FROM measurements m
                              SEMI JOIN records r ON r.municipality = m.municipality AND r.record_key = m.record_key
                              WHERE m.municipality IN (SELECT unnest($codes))
                              ORDER BY m.municipality, m.record_key, m.timepoint, m.instrument)
                        TO {sql_text.string(str(members["measurements"]))} (FORMAT parquet, COMPRESSION zstd)""", {"codes": codes})
        for table, path in members.items():
            for bad in violations(con, table, parquet_source(path)).values():
                raise IsuError(f"export refused: {bad.describe(table)} in this workspace; "
                               "the region would refuse the package. Correct the source and re-import")
        manifest = build_manifest(con, members, fingerprint)
        digest = write_package(out, manifest, members)
    return {
        "package": str(out),
        "sha256": digest,
        "bytes": out.stat().st_size,
        "municipalities": manifest.codes,
        "records": manifest.file("records").rows,
        "measurements": manifest.file("measurements").rows,
        "period": manifest.period.model_dump(mode="json"),
        "key_fingerprint": fingerprint,
        "created_at": manifest.created_at.isoformat(),
    }
