"""``isu pool import``: verify packages and merge them into a regional workspace, all or nothing.

Every claim of a package is checked before anything is written: container, manifest, each
member's SHA-256 and row count, schema and store version, key fingerprint (the region records
the pool's fingerprint from its first package; it never needs the key), column names and types,
and every row against the record contract. A package then *replaces* its municipalities' earlier
data. All packages of one command share one transaction: a refused package, a crash or a kill
leaves the workspace exactly as it was. A package already imported (same SHA-256) changes
nothing; one older than what the region holds for its municipalities is skipped as superseded.

Packages are staged in chunks (Arrow tables tagged with the package's position) so that the
checks and writes are a handful of set-wise statements per chunk, not per package. A worker
thread reads and checks the next chunk while the workspace's connection writes this one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from .pool_contract import KEY_COLUMNS, coded_columns, measurement_columns, record_columns, violations
from .pool_export import municipality_stats, workspace_fingerprint
from .pool_package import TABLES, Package, open_package
from .pseudonym import mask_ids
from .schemas import SCHEMA_VERSION
from .store import STORE_VERSION, transaction

__all__ = ["ALREADY", "CHUNK_RECORDS", "IMPORTED", "SUPERSEDED", "import_packages"]

IMPORTED, ALREADY, SUPERSEDED = "imported", "already imported", "superseded"
#: Records per chunk; two chunks are held in memory (one written while the next is read and checked).
CHUNK_RECORDS = 1_000_000
_COLUMNS = {"records": record_columns, "measurements": measurement_columns}
_STAGE = {t: f"pool_stage_{t}" for t in TABLES}
_STRINGS = (pa.string(), pa.large_string(), pa.string_view())
_KEYS = {"records": KEY_COLUMNS, "measurements": (*KEY_COLUMNS, "timepoint", "instrument")}


def _meta_key(code: str) -> str:
    return f"pool_package:{code}"


def _check_versions(pkg: Package, fingerprint: str | None, key_fp: str | None) -> None:
    m = pkg.manifest
    for what, theirs, ours in (("record schema", m.schema_version, SCHEMA_VERSION),
                               ("store", m.store_version, STORE_VERSION)):
        if theirs != ours:
            raise pkg.refuse(f"{what} version {theirs}, this toolkit reads {ours}; "
                             "export again with the same isu version as the region")
    for theirs_is, ours in (("--key-file has", key_fp), ("this region's data use key", fingerprint)):
        if ours is not None and m.key_fingerprint != ours:
            raise pkg.refuse(f"made with key {m.key_fingerprint}, but {theirs_is} {ours}; "
                             "all municipalities of a pool must pseudonymise with the same key")


def _superseded(pkg: Package, held: dict[str, datetime]) -> bool:
    """True when the region holds newer packages for all of this package's municipalities."""
    newer = [code in held and held[code] > pkg.manifest.created_at for code in pkg.manifest.codes]
    if any(newer) and not all(newer):
        raise pkg.refuse("some of its municipalities already have newer packages in this region; "
                         "ask for a new package of all of them")
    return all(newer)


def _stage_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The store's columns of ``table`` as Arrow, coded columns kept as dictionaries (as Parquet
    stores them: decoding them to strings would be most of the cost of reading a member)."""
    schema = con.sql(f"SELECT {', '.join(_COLUMNS[table]())} FROM {table} LIMIT 0").to_arrow_table().schema
    coded = set(coded_columns(table))
    return pa.schema([f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in coded else f for f in schema])


def _stringy(t: pa.DataType) -> bool:
    return t in _STRINGS or (pa.types.is_dictionary(t) and t.value_type in _STRINGS)


def _read(pkg: Package, table: str, schema: pa.Schema, tag: int) -> pa.Table:
    """One member as Arrow, held to the manifest's row count and the store's columns and types."""
    entry = pkg.manifest.file(table)
    try:
        buf = pa.BufferReader(pkg.member(table))
        names = set(pq.ParquetFile(buf).schema_arrow.names)
        coded = [f.name for f in schema if pa.types.is_dictionary(f.type) and f.name in names]
        data = pq.ParquetFile(buf, read_dictionary=coded).read()
    except (pa.ArrowException, OSError) as e:
        raise pkg.refuse(f"{entry.name} is not a readable Parquet file ({e})") from None
    if data.num_rows != entry.rows:
        raise pkg.refuse(f"{entry.name} has {data.num_rows} rows, the manifest says {entry.rows}")
    same = data.column_names == schema.names and all(
        a.type == b.type or (_stringy(a.type) and _stringy(b.type)) for a, b in zip(data.schema, schema))
    if not same:
        raise pkg.refuse(f"{entry.name} does not have the contract's columns and types "
                         f"({', '.join(f'{f.name} {_value_type(f.type)}' for f in schema)})")
    data = data.cast(schema) if data.schema != schema else data
    return data.append_column("_pkg", pa.array(np.full(data.num_rows, tag, np.int32)))


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _verify(con: duckdb.DuckDBPyConnection, chunk: list[Package], proven: dict[str, set[int]]) -> None:
    """Contract, measurements' records, unique keys and manifest counts/periods, for all staged
    packages at once. ``proven`` holds the packages the reader already cleared, per table (keys
    strictly increasing, so unique) and under "belong" (every measurement's record is present)."""
    r, m = _STAGE["records"], _STAGE["measurements"]
    bad: dict[int, str] = {}
    for table in TABLES:
        for tag, v in violations(con, table, _STAGE[table], group="_pkg").items():
            bad.setdefault(tag, v.describe(f"{table}.parquet"))
    on = " AND ".join(f"r.{k} = m.{k}" for k in ("_pkg", *KEY_COLUMNS))
    unproven = ", ".join(str(tag) for tag in range(len(chunk)) if tag not in proven["belong"])
    for tag, n in con.execute(f"SELECT m._pkg, count(*) FROM {m} m ANTI JOIN {r} r ON {on} "
                              f"WHERE m._pkg IN ({unproven}) GROUP BY 1").fetchall() if unproven else ():
        bad.setdefault(tag, f"{n} measurements belong to no record in the package")
    for table in TABLES:  # keys are unique in the store (no index holds them so: the writers do)
        unsorted = sorted(set(range(len(chunk))) - proven[table])
        for tag in _repeated_keys(con, _STAGE[table], _KEYS[table], unsorted) if unsorted else ():
            bad.setdefault(tag, "it holds the same record or measurement twice (duplicate keys)")
    stats = municipality_stats(con, r, m, group="_pkg")
    for tag, pkg in enumerate(chunk):
        if tag not in bad and stats.get(tag, []) != pkg.manifest.municipalities:
            bad[tag] = "its rows do not match the manifest's municipalities, counts or periods (manifest edited?)"
    if bad:
        tag = min(bad)
        raise chunk[tag].refuse(bad[tag])


def _strictly_increasing(data: pa.Table, keys: tuple[str, ...]) -> bool:
    """True when every row's key is greater than the previous row's (byte order, column by
    column), so no key occurs twice: how ``isu pool export`` writes its members. A NULL key or
    any other order gives False (then the keys are checked by grouping)."""
    n = data.num_rows
    if n < 2:
        return True
    later = tie = None
    for k in keys:
        col = data.column(k).combine_chunks()
        col = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
        a, b = col.slice(1), col.slice(0, n - 1)
        gt, eq = (pc.fill_null(f(a, b), False) for f in (pc.greater, pc.equal))
        later = gt if later is None else pc.or_(later, pc.and_(tie, gt))
        tie = eq if tie is None else pc.and_(tie, eq)
    return pc.all(later).as_py()


def _belong(records: pa.Table, measurements: pa.Table) -> bool:
    """True when both tables hold one and the same municipality and no NULL key, and every
    measurement's record_key is a record's (a hash lookup, not a join). False means not proven."""
    munis = [t.column("municipality").unique() for t in (records, measurements)]
    single = all(len(u) == 1 and u.null_count == 0 for u in munis) and munis[0].to_pylist() == munis[1].to_pylist()
    keys = measurements.column("record_key")
    return single and keys.null_count == 0 and pc.all(pc.is_in(keys, value_set=records.column("record_key"))).as_py()


def _repeated_keys(con: duckdb.DuckDBPyConnection, staged: str, keys: tuple[str, ...], tags: list[int]) -> list[int]:
    """Of the packages ``tags``, those holding a key twice: rows grouped by a 64-bit hash of the
    key (several times cheaper than grouping the strings), then the few rows of repeated hashes
    compared exactly."""
    k = ", ".join(keys)
    staged = f"(SELECT * FROM {staged} WHERE _pkg IN ({', '.join(map(str, tags))}))"
    return [tag for (tag,) in con.execute(f"""
        WITH twice AS (SELECT _pkg, hash({k}) AS h FROM {staged} GROUP BY ALL HAVING count(*) > 1)
        SELECT DISTINCT _pkg FROM (SELECT s._pkg FROM {staged} s JOIN twice t ON s._pkg = t._pkg AND hash({k}) = t.h
                                   GROUP BY s._pkg, {", ".join("s." + c for c in keys)} HAVING count(*) > 1)""").fetchall()]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[int, int, int]]:
    """Per staged package: records new, replaced and removed relative to what it replaces (the
    region's rows, or an earlier package of the same municipality in this chunk)."""
    r = _STAGE["records"]
    rows = con.execute(f"""
        WITH region AS (SELECT -1 AS _pkg, municipality, record_key FROM records
                        WHERE municipality IN (SELECT DISTINCT municipality FROM {r})),
             keys AS (SELECT _pkg, municipality, record_key FROM {r} UNION ALL FROM region),
             sizes AS (SELECT _pkg, municipality, count(*) AS n FROM keys GROUP BY ALL),
             chain AS (SELECT _pkg, municipality, lag(_pkg) OVER (PARTITION BY municipality ORDER BY _pkg) AS prev
                       FROM sizes),
             kept AS (SELECT c._pkg, c.municipality, count(*) AS n FROM chain c
                      JOIN keys a ON a._pkg = c._pkg AND a.municipality = c.municipality
                      JOIN keys b ON b._pkg = c.prev AND b.municipality = c.municipality AND b.record_key = a.record_key
                      GROUP BY ALL)
        SELECT c._pkg, sum(s.n - coalesce(k.n, 0)), sum(coalesce(k.n, 0)), sum(coalesce(p.n, 0) - coalesce(k.n, 0))
        FROM chain c JOIN sizes s USING (_pkg, municipality) LEFT JOIN kept k USING (_pkg, municipality)
        LEFT JOIN sizes p ON p._pkg = c.prev AND p.municipality = c.municipality
        WHERE c._pkg >= 0 GROUP BY c._pkg""").fetchall()
    return {tag: (int(a), int(b), int(c)) for tag, a, b, c in rows}


def _apply(con: duckdb.DuckDBPyConnection, chunk: list[Package], started: datetime, present: set[str]) -> list[dict]:
    """Replace the chunk's municipalities' rows (the latest package of each wins), log each package.

    ``present``: the municipalities the workspace holds rows of; the chunk's are added.
    """
    r, m = _STAGE["records"], _STAGE["measurements"]
    codes = [code for pkg in chunk for code in pkg.manifest.codes]
    held = present.intersection(codes)
    present.update(codes)
    if held or len(set(codes)) < len(codes):
        counts = _counts(con)
    else:  # nothing to replace: every record is new (_read held each member to its manifest's rows)
        counts = {tag: (pkg.manifest.file("records").rows, 0, 0) for tag, pkg in enumerate(chunk)}
    ids = sorted(i for (i,) in con.execute(f"SELECT nextval('import_seq') FROM range({len(chunk)})").fetchall())
    winners = {code: tag for tag, pkg in enumerate(chunk) for code in pkg.manifest.codes}  # later tags win
    con.complete()
    con.register("pool_stage_ids", pa.table({"_pkg": pa.array(range(len(chunk)), pa.int32()), "import_id": ids}))
    con.register("pool_stage_winners", pa.table({"municipality": list(winners),
                                                 "_pkg": pa.array(winners.values(), pa.int32())}))
    for table in ("measurements", "records") if held else ():
        con.execute(f"DELETE FROM {table} WHERE municipality IN (SELECT municipality FROM pool_stage_winners)")
    rcols, mcols = ", ".join(record_columns()), ", ".join(measurement_columns())
    # a municipality's rows come from one package (its winner), whose keys _verify found unique;
    # the joins are left out when they would keep every row (the cheaper plan for most chunks)
    win = "" if len(codes) == len(set(codes)) else "JOIN pool_stage_winners w USING (_pkg, municipality)"
    contiguous = ids == list(range(ids[0], ids[0] + len(ids)))
    import_id = f"_pkg + {ids[0]}" if contiguous else "i.import_id"
    ids_join = "" if contiguous else "JOIN pool_stage_ids i USING (_pkg)"
    con.execute(f"INSERT INTO records ({rcols}, import_id) SELECT {rcols}, {import_id} FROM {r} {ids_join} {win}")
    con.execute(f"INSERT INTO measurements ({mcols}) SELECT {mcols} FROM {m} {win}")
    finished = _now()
    log, meta, results = [], {}, []
    for tag, pkg in enumerate(chunk):
        mf, (new, replaced, removed) = pkg.manifest, counts[tag]
        n = mf.file("records").rows
        log.append({"import_id": ids[tag], "kind": "pool", "file_name": mask_ids(pkg.path.name), "file_sha256": pkg.sha256,
                    "municipality": ",".join(mf.codes), "rows_read": n, "rows_accepted": n, "rows_rejected": 0,
                    "records_inserted": new, "records_updated": replaced, "records_unchanged": 0,
                    "started_at": started, "finished_at": finished, "toolkit_version": __version__,
                    "key_fingerprint": mf.key_fingerprint})
        facts = json.dumps({"sha256": pkg.sha256, "created_at": mf.created_at.isoformat()})
        meta.update({_meta_key(code): facts for code in mf.codes})  # the latest package of each wins
        results.append({"status": IMPORTED, "import_id": ids[tag], "records_new": new,
                        "records_replaced": replaced, "records_removed": removed})
    con.register("pool_stage_log", pa.Table.from_pylist(log))
    con.register("pool_stage_meta", pa.table({"key": list(meta), "value": list(meta.values())}))
    con.execute(f"INSERT INTO imports ({', '.join(log[0])}) SELECT * FROM pool_stage_log")
    con.execute("INSERT OR REPLACE INTO meta SELECT * FROM pool_stage_meta")
    return results


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _import_chunk(con: duckdb.DuckDBPyConnection, chunk: list[Package], staged: dict[str, pa.Table],
                  present: set[str]) -> list[dict]:
    """Write one chunk of verified packages from their staged tables."""
    started = _now()
    [(order,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    try:
        for t in TABLES:
            con.register(_STAGE[t], staged[t])
        # the store promises no row order, and inserts that need not keep it run in parallel
        con.execute("SET preserve_insertion_order = false")
        return _apply(con, chunk, started, present)
    finally:
        with contextlib.suppress(duckdb.TransactionException):  # aborted: the rollback drops them anyway
            con.complete()
            con.execute(f"SET preserve_insertion_order = {str(order).lower()}")
            for name in (*_STAGE.values(), "pool_stage_ids", "pool_stage_winners", "pool_stage_log", "pool_stage_meta"):
                con.unregister(name)


def _verified_chunks(con: duckdb.DuckDBPyConnection, packages: list[Package],
                     progress: Callable[[], None]) -> Iterator[tuple[list[Package], dict[str, pa.Table]]]:
    """Chunks of packages, each read and verified, with its staged tables (tagged ``_pkg``).

    A worker thread reads and checks chunk k+1, with its own in-memory DuckDB, while the caller
    writes chunk k (Arrow, hashlib and DuckDB release the GIL), so at most two chunks are held
    in memory. Chunks come in order: the first refusal is the first package's.
    """
    con.complete()  # DuckDB 2: sql() waits for no pending result of execute()
    schemas = {t: _stage_schema(con, t) for t in TABLES}
    checker = duckdb.connect()
    checker.execute("SET enable_progress_bar = false")
    if os.environ.get("ISU_MEMORY_LIMIT"):  # as the workspace's connection (isu.store.connect)
        checker.execute(f"SET memory_limit = '{os.environ['ISU_MEMORY_LIMIT']}'")
    readers = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)

    def read(pkg: Package, tag: int) -> tuple[dict[str, pa.Table], dict[str, bool]]:
        data = {t: _read(pkg, t, schemas[t], tag) for t in TABLES}
        cleared = {t: _strictly_increasing(data[t], _KEYS[t]) for t in TABLES}
        return data, {**cleared, "belong": _belong(data["records"], data["measurements"])}

    def stage(chunk: list[Package]) -> dict[str, pa.Table]:
        parts = list(readers.map(read, chunk, range(len(chunk))))
        staged = {t: pa.concat_tables([data[t] for data, _ in parts]) for t in TABLES}
        proven = {what: {tag for tag, (_, cleared) in enumerate(parts) if cleared[what]} for what in parts[0][1]}
        for t in TABLES:
            checker.register(_STAGE[t], staged[t])
        try:
            _verify(checker, chunk, proven)
        finally:
            checker.complete()
            for t in TABLES:
                checker.unregister(_STAGE[t])
        return staged

    chunks = list(_chunks(packages))
    stager = ThreadPoolExecutor(max_workers=1)
    try:
        ahead = stager.submit(stage, chunks[0]) if chunks else None
        for k, chunk in enumerate(chunks):
            staged = ahead.result()
            ahead = stager.submit(stage, chunks[k + 1]) if k + 1 < len(chunks) else None
            for _ in chunk:
                progress()
            yield chunk, staged
    finally:
        if ahead is not None:
            ahead.cancel()
        stager.shutdown(wait=True)
        readers.shutdown(wait=True, cancel_futures=True)
        checker.close()


def _chunks(packages: list[Package]) -> Iterable[list[Package]]:
    chunk, rows = [], 0
    for pkg in packages:
        n = pkg.manifest.file("records").rows
        if chunk and rows + n > CHUNK_RECORDS:
            yield chunk
            chunk, rows = [], 0
        chunk.append(pkg)
        rows += n
    if chunk:
        yield chunk


def import_packages(
    con: duckdb.DuckDBPyConnection, paths: Iterable, *, key_fingerprint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Verify and merge ``paths`` in one transaction (oldest package first, so the newest wins).

    ``key_fingerprint`` (from ``--key-file``) must match every package when given. Raises
    ``PackageError`` for the first package refused; then nothing at all was imported.
    """
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # hashlib releases the GIL
        packages = sorted(pool.map(open_package, paths), key=lambda p: p.manifest.created_at)
    results: dict[int, dict] = {}
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, len(packages))

    con.execute("SET enable_progress_bar = false")  # DuckDB would draw it on stdout, into --json
    with transaction(con):
        fingerprint = workspace_fingerprint(con)
        imported = dict(con.execute("SELECT file_sha256, import_id FROM imports WHERE kind = 'pool'").fetchall())
        held = {k.removeprefix("pool_package:"): datetime.fromisoformat(json.loads(v)["created_at"]) for k, v in
                con.execute("SELECT key, value FROM meta WHERE key LIKE 'pool_package:%'").fetchall()}
        todo, first_of = [], {}
        for i, pkg in enumerate(packages):
            if pkg.sha256 in imported or pkg.sha256 in first_of:
                results[i] = {"status": ALREADY, "import_id": imported.get(pkg.sha256)}
                step()
                continue
            _check_versions(pkg, fingerprint, key_fingerprint)
            if _superseded(pkg, held):
                results[i] = {"status": SUPERSEDED}
                step()
                continue
            fingerprint = fingerprint or pkg.manifest.key_fingerprint
            first_of[pkg.sha256] = i
            todo.append(i)
        if todo and workspace_fingerprint(con) is None:
            con.execute("INSERT INTO meta VALUES ('key_fingerprint', ?)", [fingerprint])
        present = {c for (c,) in con.execute("SELECT DISTINCT municipality FROM records UNION "
                                             "SELECT DISTINCT municipality FROM measurements").fetchall()}
        for chunk, staged in _verified_chunks(con, [packages[i] for i in todo], step):
            for pkg, res in zip(chunk, _import_chunk(con, chunk, staged, present)):
                results[first_of[pkg.sha256]] = res
        for i, pkg in enumerate(packages):  # listed twice in this command: the first one's import
            if results[i]["status"] == ALREADY and results[i]["import_id"] is None:
                results[i]["import_id"] = results[first_of[pkg.sha256]]["import_id"]
    out = [{"package": str(p.path), "sha256": p.sha256, "municipalities": p.manifest.codes,
            "created_at": p.manifest.created_at.isoformat(), "records": p.manifest.file("records").rows,
            "measurements": p.manifest.file("measurements").rows, **results[i]} for i, p in enumerate(packages)]
    return {
        "packages": out,
        **{s.replace(" ", "_"): sum(r["status"] == s for r in out) for s in (IMPORTED, ALREADY, SUPERSEDED)},
        "key_fingerprint": fingerprint,
    }
