"""``isu pool import``: verify packages and merge them into a regional workspace, all or nothing.

Every claim of a package is checked before anything is written: container, manifest, each
member's SHA-256 and row count, schema and store version, key fingerprint (the region records
the pool's fingerprint from its first package; it never needs the key), column names and types,
and every row against the record contract. A package then *replaces* its municipalities' earlier
data. All packages of one command share one transaction: a refused package, a crash or a kill
leaves the workspace exactly as it was. A package already imported (same SHA-256) changes
nothing; one older than what the region holds for its municipalities is skipped as superseded.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Callable, Iterable

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .pool_contract import KEY_COLUMNS, first_violation, measurement_columns, record_columns
from .pool_export import municipality_stats, workspace_fingerprint
from .pool_package import TABLES, Package, open_package
from .schemas import SCHEMA_VERSION
from .store import STORE_VERSION, transaction

__all__ = ["import_packages", "IMPORTED", "ALREADY", "SUPERSEDED"]

IMPORTED, ALREADY, SUPERSEDED = "imported", "already imported", "superseded"
_COLUMNS = {"records": record_columns, "measurements": measurement_columns}
_STAGE = {t: f"pool_stage_{t}" for t in TABLES}


def _meta_key(code: str) -> str:
    return f"pool_package:{code}"


def _check_versions(pkg: Package, region_fp: str | None, key_fp: str | None) -> None:
    m = pkg.manifest
    if m.schema_version != SCHEMA_VERSION:
        raise pkg.refuse(f"record schema version {m.schema_version}, this toolkit reads {SCHEMA_VERSION}; "
                         "export again with the same isu version as the region")
    if m.store_version != STORE_VERSION:
        raise pkg.refuse(f"store version {m.store_version}, this toolkit reads {STORE_VERSION}; "
                         "export again with the same isu version as the region")
    if key_fp is not None and m.key_fingerprint != key_fp:
        raise pkg.refuse(f"made with key {m.key_fingerprint}, but --key-file has {key_fp}; "
                         "all municipalities of a pool must pseudonymise with the same key")
    if region_fp is not None and m.key_fingerprint != region_fp:
        raise pkg.refuse(f"made with key {m.key_fingerprint}, but this region's data use key {region_fp}; "
                         "all municipalities of a pool must pseudonymise with the same key")


def _superseded(con: duckdb.DuckDBPyConnection, pkg: Package) -> bool:
    """True when the region holds newer packages for all of this package's municipalities."""
    newer = []
    for code in pkg.manifest.codes:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [_meta_key(code)]).fetchone()
        held = datetime.fromisoformat(json.loads(row[0])["created_at"]) if row else None
        newer.append(held is not None and held > pkg.manifest.created_at)
    if any(newer) and not all(newer):
        raise pkg.refuse("some of its municipalities already have newer packages in this region; "
                         "ask for a new package of all of them")
    return all(newer)


def _stage(con: duckdb.DuckDBPyConnection, pkg: Package) -> None:
    """Read the members into Arrow, register them, and hold them to manifest and contract."""
    for table in TABLES:
        entry, name = pkg.manifest.file(table), _STAGE[table]
        try:
            data = pq.read_table(pa.BufferReader(pkg.member(table)))
        except (pa.ArrowException, OSError) as e:
            raise pkg.refuse(f"{entry.name} is not a readable Parquet file ({e})") from None
        if data.num_rows != entry.rows:
            raise pkg.refuse(f"{entry.name} has {data.num_rows} rows, the manifest says {entry.rows}")
        con.complete()  # DuckDB 2: register() waits for no pending result of execute()
        con.register(name, data)
        want = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall())
        expected = [(c, want[c]) for c in _COLUMNS[table]()]
        found = con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {name})").fetchall()
        if found != expected:
            raise pkg.refuse(f"{entry.name} does not have the contract's columns and types "
                             f"({', '.join(f'{n} {t}' for n, t in expected)})")
        bad = first_violation(con, table, name)
        if bad:
            raise pkg.refuse(bad.describe(entry.name))
    keys = " AND ".join(f"r.{k} = m.{k}" for k in KEY_COLUMNS)
    orphans = con.execute(f"SELECT count(*) FROM {_STAGE['measurements']} m ANTI JOIN {_STAGE['records']} r "
                          f"ON {keys}").fetchone()[0]
    if orphans:
        raise pkg.refuse(f"{orphans} measurements belong to no record in the package")
    if municipality_stats(con, _STAGE["records"], _STAGE["measurements"]) != pkg.manifest.municipalities:
        raise pkg.refuse("its rows do not match the manifest's municipalities, counts or periods (manifest edited?)")


def _apply(con: duckdb.DuckDBPyConnection, pkg: Package, started: datetime, region_fp: str | None) -> dict:
    """Replace the package's municipalities' rows and log the import (inside the caller's transaction)."""
    m, codes = pkg.manifest, pkg.manifest.codes
    r, ms = _STAGE["records"], _STAGE["measurements"]
    existing, kept = con.execute(
        f"SELECT (SELECT count(*) FROM records WHERE municipality IN (SELECT unnest($c))), "
        f"(SELECT count(*) FROM records SEMI JOIN {r} USING ({', '.join(KEY_COLUMNS)}))", {"c": codes}
    ).fetchone()
    import_id = con.execute("SELECT nextval('import_seq')").fetchone()[0]
    for table in ("measurements", "records"):
        con.execute(f"DELETE FROM {table} WHERE municipality IN (SELECT unnest($c))", {"c": codes})
    rcols = ", ".join(record_columns())
    mcols = ", ".join(measurement_columns())
    try:
        con.execute(f"INSERT INTO records ({rcols}, import_id) SELECT {rcols}, $id FROM {r}", {"id": import_id})
        con.execute(f"INSERT INTO measurements ({mcols}) SELECT {mcols} FROM {ms}")
    except duckdb.ConstraintException:
        raise pkg.refuse("it holds the same record or measurement twice (duplicate keys)") from None
    n_rec, n_meas = m.file("records").rows, m.file("measurements").rows
    con.execute(
        "INSERT INTO imports (import_id, kind, file_name, file_sha256, municipality, rows_read, rows_accepted, "
        "rows_rejected, records_inserted, records_updated, records_unchanged, started_at, finished_at, "
        "toolkit_version, key_fingerprint) VALUES (?, 'pool', ?, ?, ?, ?, ?, 0, ?, ?, 0, ?, ?, ?, ?)",
        [import_id, pkg.path.name, pkg.sha256, ",".join(codes), n_rec, n_rec, n_rec - kept, kept,
         started, _now(), __version__, m.key_fingerprint],
    )
    if region_fp is None:
        con.execute("INSERT INTO meta VALUES ('key_fingerprint', ?)", [m.key_fingerprint])
    facts = json.dumps({"sha256": pkg.sha256, "created_at": m.created_at.isoformat(), "import_id": import_id})
    for code in codes:
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_meta_key(code), facts])
    return {"import_id": import_id, "records_new": n_rec - kept, "records_replaced": kept,
            "records_removed": existing - kept}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _import_one(con: duckdb.DuckDBPyConnection, pkg: Package, key_fp: str | None) -> dict:
    m = pkg.manifest
    result = {"package": str(pkg.path), "sha256": pkg.sha256, "municipalities": m.codes,
              "created_at": m.created_at.isoformat(), "records": m.file("records").rows,
              "measurements": m.file("measurements").rows}
    done = con.execute("SELECT import_id FROM imports WHERE kind = 'pool' AND file_sha256 = ?", [pkg.sha256]).fetchone()
    if done:
        return {**result, "status": ALREADY, "import_id": done[0]}
    region_fp = workspace_fingerprint(con)
    _check_versions(pkg, region_fp, key_fp)
    if _superseded(con, pkg):
        return {**result, "status": SUPERSEDED}
    started = _now()
    try:
        _stage(con, pkg)
        return {**result, "status": IMPORTED, **_apply(con, pkg, started, region_fp)}
    finally:
        con.complete()
        for name in _STAGE.values():
            con.unregister(name)


def import_packages(
    con: duckdb.DuckDBPyConnection, paths: Iterable, *, key_fingerprint: str | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> dict:
    """Verify and merge ``paths`` in one transaction (oldest package first, so the newest wins).

    ``key_fingerprint`` (from ``--key-file``) must match every package when given. Raises
    ``PackageError`` for the first package refused; then nothing at all was imported.
    """
    packages = sorted((open_package(p) for p in paths), key=lambda p: p.manifest.created_at)
    results = []
    with transaction(con):
        for i, pkg in enumerate(packages, 1):
            results.append(_import_one(con, pkg, key_fingerprint))
            if progress:
                progress(i, len(packages), results[-1])
        fingerprint = workspace_fingerprint(con)
    return {
        "packages": results,
        **{status.replace(" ", "_"): sum(r["status"] == status for r in results)
           for status in (IMPORTED, ALREADY, SUPERSEDED)},
        "key_fingerprint": fingerprint,
    }
