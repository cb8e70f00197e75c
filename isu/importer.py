"""Import: read → validate → pseudonymise → store, as one transaction with an import log.

Every row of the export ends up either stored or in the rejects (table and file): accepted +
rejected = read. The raw person id exists only in memory, never on disk: in the scan that reads
the file and in the chunk of its text being typed (``isu.stage``); what is staged and stored
holds the pseudonym, and rejects show ids masked.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from isu import __version__
from isu.schemas import Profile, code_list

from . import rejects as rejects_mod
from . import sql_text
from . import reimport
from . import stage as stage_mod
from .errors import InputError, IsuError, KeyFileError, UsageError
from .keys import PoolKey
from .pseudonym import hmac_params, mask_ids
from .read import Source, csv_scan_sql, inspect_file, needs_copy, register_transcoded, release_transcoded
from .diagnose import diagnose
from .line_count import check_every_line, lone_cr_line
from .stage import Stage, Typing, blank_rows, chunks, malformed_lines, open_scan, shown_fields
from .paths import missing_folder, unwritable_folder
from .profile_choice import choose_profile, choose_source
from .upsert import ChunkWriter
from .store import fetch_one, transaction

__all__ = ["ImportResult", "import_file", "choose_profile", "choose_source"]

#: DuckDB's memory limit during an import unless ISU_MEMORY_LIMIT says otherwise.
IMPORT_MEMORY = "512MB"


@dataclass
class ImportResult:
    file: str
    sha256: str
    profile: str
    shape: str
    encoding: str | None
    delimiter: str | None
    sheet: str | None = None  # the workbook's sheet read (XLSX)
    sheet_hidden: bool = False  # that sheet is hidden in Excel (read because a profile names it, or the only one that fits)
    header_row: int = 1  # the header's row (a workbook's may have a title or blank rows above it)
    municipalities: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_empty: int = 0  # rows with every cell empty, left out (not read): a spreadsheet saves formatted blank rows
    columns_unread: list[str] = field(default_factory=list)  # columns with values that no field of the profile reads (masked)
    records_inserted: int = 0
    records_updated: int | None = 0
    records_unchanged: int | None = 0  # None with ``without_key``: updated and unchanged records are then told apart by nothing
    without_key: bool = False  # checked with a stand-in key (a dry run before the pool key arrived)
    records_existing: int | None = None  # with ``without_key``: records already stored, updated or unchanged
    measurements: int = 0
    already_imported: bool = False  # imported before (same SHA-256): an import skips it unless --again; a check says so
    imported_before: dict | None = None  # that import (``isu.reimport.Earlier``): id, when, later imports of its municipalities
    changed_since: int | None = None  # of its records, how many the workspace holds otherwise now (None: cannot tell without the key)
    records_not_in_file: dict[str, int] = field(default_factory=dict)  # municipality → stored records no row of this file has (kept)
    rejects_shown: list[dict] = field(default_factory=list)  # the first rejects, when no rejects file was written (a check)
    dry_run: bool = False
    import_id: int | None = None
    rejects_file: str | None = None
    errors_by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def import_file(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    *,
    profile: str | None = None,
    municipality: str | None = None,
    key: PoolKey | None = None,
    key_loader=None,  # () -> PoolKey, or None when there is no key
    dry_run: bool = False,
    rejects_path: str | Path | None = None,
    again: bool = False,
    rejects_dir: str | Path | None = None,
) -> ImportResult:
    """Import one export into the workspace ``con`` (or only check it, with ``dry_run``).

    Rejected rows are written to ``rejects_path``, or to a file named after the export in
    ``rejects_dir`` (``isu.rejects.default_path``), or to no file. A file imported before (same
    SHA-256) is skipped unless ``again``: after a code list or the municipality was fixed, the same
    file can then be imported again, updating records by key. The skip says whether later imports
    have changed its records since (``changed_since``); a dry run says it would be skipped."""
    t0 = time.perf_counter()
    started = datetime.now()
    _check_municipality(municipality)
    if rejects_path is not None:
        _check_rejects_path(Path(path), Path(rejects_path))
    try:
        prof, src = choose_source(inspect_file(path), profile, municipality)
    except InputError as e:  # a folder, no read permission, a text file named .xlsx...: said with what to do
        raise (diagnose(path) or e) from None
    res = ImportResult(mask_ids(str(path)), src.sha256, prof.name, prof.shape, src.encoding, src.delimiter, dry_run=dry_run,
                       sheet=None if src.sheet is None else mask_ids(src.sheet), header_row=src.header_row,
                       sheet_hidden=src.sheet_hidden)  # a sheet may be named after a person
    if rejects_path is None and rejects_dir is not None:
        rejects_path = rejects_mod.default_path(Path(rejects_dir), Path(path), src.sha256)
        _check_rejects_path(Path(path), rejects_path)
    earlier = None if again else reimport.earlier_import(con, src.sha256)
    if earlier is not None:
        res.already_imported, res.imported_before = True, earlier.as_dict()
        if not dry_run:  # skipped; checked (nothing written) only when later imports may have changed its records
            res.changed_since = 0 if not earlier.later_imports else import_file(
                con, path, profile=profile, municipality=municipality, key=key, key_loader=reimport.quiet(key_loader),
                dry_run=True, again=True).records_updated
            res.seconds = round(time.perf_counter() - t0, 3)
            return res
    has_pid = prof.columns.get("person_id") in src.header
    stand_in = False  # a dry run without a pool key: every check is the same (none depends on the key)
    if has_pid and key is None:
        key = key_loader() if key_loader is not None else None  # None: there is no key
        if key is None and not dry_run:
            raise KeyFileError("this export carries person ids: a pool key is needed to pseudonymise them (isu key new)")
        if key is None:
            key, stand_in = PoolKey(secrets.token_bytes(32)), True
    if has_pid and not stand_in:
        _check_fingerprint(con, key, dry_run)
    params = hmac_params(key) if has_pid else {}
    cur = con.cursor()  # runs the scan while ``con`` writes the chunks it yields
    try:
        with bounded_memory(con):
            with no_spill(con), unordered(con), transaction(con):
                if not dry_run:
                    res.import_id = fetch_one(con, "SELECT nextval('import_seq')")[0]
                rejected, deleted = _run(con, cur, src, prof, res, municipality, params)
                if not dry_run:
                    rejects_mod.store(con, res.import_id, rejected)
                    con.execute(
                        "INSERT INTO imports VALUES (?, 'file', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [res.import_id, mask_ids(src.path.name), src.sha256, prof.name, ",".join(res.municipalities), res.rows_read,
                         res.rows_accepted, res.rows_rejected, res.records_inserted, res.records_updated, res.records_unchanged,
                         started, datetime.now(), __version__, key.fingerprint if has_pid else None],
                    )
                if dry_run:
                    con.execute("ROLLBACK")
                    con.execute("BEGIN TRANSACTION")
            if not dry_run:  # under the memory limit: DuckDB would checkpoint when the workspace closes anyway
                checkpoint(con, vacuum=deleted)
    finally:
        release_transcoded(cur)
        cur.close()
    if stand_in:  # the content hash holds the pseudonym: a stored record would differ under any other key
        res.without_key, res.records_existing = True, res.records_updated + res.records_unchanged
        res.records_updated = res.records_unchanged = None
    if earlier is not None:  # a dry run of a file imported before: what --again would change
        res.changed_since = res.records_updated
    # a rejects file of an earlier run is emptied (its header kept): left as it was, it would list
    # the rows a corrected export no longer has
    if rejects_path is not None and (rejected or Path(rejects_path).is_file()):
        try:
            written = str(rejects_mod.write_file(rejected, Path(rejects_path)))
            res.rejects_file = mask_ids(written) if rejected else None
        except OSError as e:
            done = "checked" if dry_run else "imported (its rejects are in the workspace's rejects table)"
            raise IsuError(f"{Path(path).name} was {done}, but the rejects file {rejects_path} could not be written: "
                           f"{e.strerror or e}") from None
    if rejected and res.rejects_file is None:  # a check without --rejects: no file, the first rejects shown instead
        res.rejects_shown = rejects_mod.preview(rejected)
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def _check_municipality(code: str | None) -> None:
    """``--municipality`` must name a municipality: otherwise every row would be rejected."""
    if code is None or code in code_list("municipalities"):
        return
    near = difflib.get_close_matches(code.zfill(4), code_list("municipalities").codes, n=1, cutoff=0.75)
    hint = f"; did you mean {near[0]}?" if near else ""
    raise UsageError(f"--municipality {code!r} is not an SCB municipality code (four digits, e.g. 0126){hint}")


def _check_rejects_path(export: Path, rejects: Path) -> None:
    """Before anything is written: the rejects file must not be the export itself, and its folder
    must be writable (a failure after the commit would leave the rejects in the workspace only)
    and exist, or be one folder that can be made in one that exists."""
    if rejects.resolve() == export.resolve():
        raise UsageError(f"--rejects {rejects} is the export itself: it would be overwritten; name another file")
    if rejects.is_dir():
        raise UsageError(f"--rejects {rejects} is a folder; name a .csv or .xlsx file")
    if (missing := missing_folder(rejects)) is not None:  # a typo in a folder's name: no folder tree is made for it
        raise UsageError(f"--rejects {rejects}: the folder {missing} does not exist (create it first, or name another)")
    if (folder := unwritable_folder(rejects.parent)) is not None:
        raise UsageError(f"cannot write the rejects file {rejects}: {folder} is not a writable folder "
                         "(name another with --rejects)")
    if rejects.is_file() and not os.access(rejects, os.W_OK):  # one of an earlier run, say, left read-only
        raise UsageError(f"cannot write the rejects file {rejects}: permission denied (name another with --rejects)")


def _run(con, cur, src: Source, prof: Profile, res: ImportResult, municipality: str | None, params: dict) -> tuple[list, bool]:
    """Scan, stage and write chunk by chunk; return the rejects, explained, and whether stored rows were deleted."""
    if src.kind == "xlsx":
        scan = "_isu_xlsx"  # registered once the columns the profile reads are known
    elif needs_copy(src):
        scan = register_transcoded(cur, src)
    else:
        scan = csv_scan_sql(src)
    writer = ChunkWriter(con, prof, res)
    found: list[rejects_mod.Pending] = []
    try:
        typing = Typing(con, prof, src, municipality=municipality, params=params)
        if src.kind == "xlsx":
            cur.register("_isu_xlsx", src.book.shown(typing.read))
        csv = src.kind == "csv"
        reader = open_scan(cur, scan, src if csv else None, trim=typing.read if csv else frozenset())
        shown = shown_fields(prof, src.header)
        for i, (raw, last) in enumerate(chunks(reader, stage_mod.CHUNK_ROWS if prof.shape == "wide" else None, stage_mod.WHOLE_ROWS)):
            chunk = typing(raw)
            del raw  # the chunk's raw text (person ids): gone before the chunk is written
            stage = Stage(con, prof, chunk, cross=i > 0, shown=shown)
            del chunk
            found += writer.chunk(stage, last=last)
            found += rejects_mod.pending(stage.run)
            del stage
        res.rows_empty = typing.empty
        res.columns_unread = [mask_ids(c) for c, n in typing.unread.items() if n]
        malformed, aside = malformed_lines(cur, src, reader)
        blank = blank_rows(src, reader, aside)
        check_every_line(src, reader, aside, blank)
    except duckdb.OutOfMemoryException:
        raise IsuError(
            f"{src.path.name}: too large to check within DuckDB's memory limit (ISU_MEMORY_LIMIT); the import never spills to "
            "disk because the rows hold person ids. Raise ISU_MEMORY_LIMIT or split the file"
        ) from None
    except (duckdb.IOException, duckdb.InvalidInputException, duckdb.ConversionException) as e:
        if "invalid state" in str(e) and (line := lone_cr_line(src)) is not None:
            raise InputError(f"{src.path.name}: line {line} holds a carriage return (CR) that ends no line, which the CSV "
                             "reader cannot place; remove it in a text editor (or save the export again) and import again") from None
        raise InputError(f"{src.path.name}: cannot read as {src.encoding} text with delimiter {src.delimiter!r} ({str(e).splitlines()[0][:200]})") from None
    writer.finish()
    res.rows_read += len(malformed)
    res.rows_rejected += len(malformed)
    res.rows_accepted = res.rows_read - res.rows_rejected
    rejected = rejects_mod.collect(found, malformed, prof, municipality, blank=blank, header_row=src.header_row)
    res.errors_by_type = rejects_mod.count_by_type(rejected)
    return rejected, writer.deleted


@contextmanager
def no_spill(con: duckdb.DuckDBPyConnection):
    """No temporary files while an import runs: its scan sees raw person ids."""
    old_dir = fetch_one(con, "SELECT current_setting('temp_directory')")[0]
    con.execute("SET temp_directory = ''")
    try:
        yield
    finally:
        con.execute("SET temp_directory = " + sql_text.string(old_dir))


def checkpoint(con: duckdb.DuckDBPyConnection, *, vacuum: bool) -> None:
    """Write the import to the workspace file now. Its vacuum (merging part-filled row groups and
    compacting deleted rows) runs only when the import deleted stored rows: after a plain insert it
    would merge the few part-filled row groups the parallel insert leaves, rewriting the data just
    written (0.65 s of a 1-million-row import that otherwise takes 0.01 s)."""
    if not vacuum:
        old = fetch_one(con, "SELECT current_setting('max_vacuum_tasks')")[0]
        con.execute("SET max_vacuum_tasks = 0")
    try:
        with contextlib.suppress(duckdb.TransactionException):  # another connection's open transaction
            con.execute("CHECKPOINT")  # the database in use (the workspace)
    finally:
        if not vacuum:
            con.execute(f"SET max_vacuum_tasks = {int(old)}")


@contextmanager
def unordered(con: duckdb.DuckDBPyConnection):
    """Results in any order on ``con`` while an import runs (rows carry their number; the rejects
    are sorted): DuckDB then fills each thread's row groups, where keeping the file's order
    leaves a part-filled one after every batch. The scan's cursor keeps the order it numbers by."""
    con.execute("SET SESSION preserve_insertion_order = false")
    try:
        yield
    finally:
        con.execute("RESET SESSION preserve_insertion_order")


@contextmanager
def bounded_memory(con: duckdb.DuckDBPyConnection):
    """DuckDB's memory limit during an import and its checkpoint (``ISU_MEMORY_LIMIT``, else
    ``IMPORT_MEMORY``): DuckDB then pages the rows it writes to the workspace file instead of
    caching them all, and the import's memory is bounded by the chunk (``isu.stage.CHUNK_ROWS``)."""
    limit = not os.environ.get("ISU_MEMORY_LIMIT")  # otherwise connect() set it
    if limit:
        con.execute(f"SET memory_limit = '{IMPORT_MEMORY}'")
    try:
        yield
    finally:
        if limit:
            con.execute("RESET memory_limit")


def _check_fingerprint(con: duckdb.DuckDBPyConnection, key: PoolKey, dry_run: bool) -> None:
    row = fetch_one(con, "SELECT value FROM meta WHERE key = 'key_fingerprint'")
    if row and row[0] != key.fingerprint:
        raise KeyFileError(
            f"this workspace's pseudonyms were made with key {row[0]}, not with the given key {key.fingerprint}; "
            "use the pool's key (--key-file) so that clients keep their pseudonyms"
        )
    if not row and not dry_run:
        con.execute("INSERT INTO meta VALUES ('key_fingerprint', ?)", [key.fingerprint])
