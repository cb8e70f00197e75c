"""``isu import`` and ``isu validate``: one line per file, a rejects file, --json summaries."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import duckdb
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from isu.pseudonym import mask_ids
from isu.errors import IsuError, KeyFileError, UsageError, WorkspaceBusy, WorkspaceError, WorkspaceReadOnly
from isu.importer import import_file
from isu.keys import load_key
from isu.store import connect, init_store

from .main import emit, err, error_line, out

REJECTS_HELP = "Where to write rejected rows: a folder, or a .csv/.xlsx file (one export only). Default: FILE.rejects.csv in the current folder."


def _rejects_path(file: Path, rejects: Optional[Path], many: bool) -> Path:
    if rejects is None:
        return Path.cwd() / f"{file.stem}.rejects.csv"
    if rejects.suffix.lower() in (".csv", ".xlsx"):
        if many:
            raise UsageError(f"--rejects {rejects} names one file, but several exports were given; give a folder instead")
        return rejects
    return rejects / f"{file.stem}.rejects.csv"


def _check_workspace(db: Path) -> duckdb.DuckDBPyConnection:
    """Where a check runs: the workspace (its key fingerprint is checked too), or an empty one in
    memory when there is none yet, another process is importing into it, or it cannot be written
    here (a check writes nothing, but runs inside a transaction of the workspace)."""
    try:
        if db.exists():
            return connect(db)
    except (WorkspaceBusy, WorkspaceReadOnly) as e:
        err.print(f"note: {e}; checked against an empty workspace instead (new/updated counts are not this workspace's)",
                  soft_wrap=True)
    con = duckdb.connect()
    init_store(con)
    return con


def _key(path: Path, dry_run: bool):
    """The pool key; for a check only (``validate``, ``--dry-run``), none when there is no key file:
    the checks do not depend on the key, so an export can be checked before the key has arrived."""
    return None if dry_run and not path.exists() else load_key(path)


def _run(ctx: typer.Context, files: list[Path], profile, municipality, dry_run, json_, rejects, again=False) -> None:
    """Each file in turn, each its own transaction. A file that cannot be imported is reported and
    the others still run (those before it are committed): the exit code is then that file's."""
    state = ctx.obj
    con = _check_workspace(state.db) if dry_run else connect(state.db)
    results: list[dict] = []
    failed: IsuError | None = None
    any_rejected = False
    try:
        # on stderr and on a terminal only: stdout holds the summary alone (a bar stopped off a terminal wrote a newline)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True,
                      disable=json_ or not err.is_terminal) as bar:
            for f in files:
                task = bar.add_task(f"{'checking' if dry_run else 'importing'} {f.name}", total=None)
                try:
                    r = import_file(con, f, profile=profile, municipality=municipality, key_loader=lambda: _key(state.key_file, dry_run),
                                    dry_run=dry_run, rejects_path=_rejects_path(f, rejects, len(files) > 1), again=again)
                except IsuError as e:
                    if isinstance(e, (UsageError, WorkspaceError, KeyFileError)):
                        raise  # nothing else could go better
                    results.append({"file": mask_ids(str(f)), "error": mask_ids(str(e)), "exit_code": e.exit_code})
                    if len(files) == 1:
                        if json_:
                            emit(results[0], True)  # a script reads one object, as for a file that was imported
                        raise
                    failed = failed or e
                    error_line(str(e))
                    continue
                finally:
                    bar.remove_task(task)
                results.append(r.as_dict())
                any_rejected |= r.rows_rejected > 0
                if not json_:
                    _print(r)
    finally:
        con.close()
    if json_:
        emit(results[0] if len(results) == 1 else {"files": results}, True)
    if failed is not None:
        if not json_:
            n, verb = sum("error" in r for r in results), "checked" if dry_run else "imported"
            others = len(files) - n
            rest = "; the other was" if others == 1 else f"; the other {others} were" if others else ""
            err.print(f"{n} of {len(files)} files could not be {verb}{rest}", soft_wrap=True)
        raise typer.Exit(failed.exit_code)
    if any_rejected:
        raise typer.Exit(10)


def _print(r) -> None:
    if r.already_imported:
        out.print(f"{Path(r.file).name}: already imported (same SHA-256); nothing changed. To import it again after "
                  "fixing a code list or --municipality, add --again")
        return
    verb = "checked" if r.dry_run else "imported"
    how = f"{r.shape}, {r.encoding}, delimiter {r.delimiter!r}" if r.encoding else f"{r.shape}, xlsx sheet {r.sheet!r}"
    if r.sheet_hidden:
        how += " (hidden in Excel)"
    if r.header_row > 1:
        how += f", header on row {r.header_row}"
    empty = f" ({r.rows_empty:,} empty {'row' if r.rows_empty == 1 else 'rows'} left out)" if r.rows_empty else ""
    if not r.rows_read:
        empty += " (the file has a header but no rows: is it the right export?)"
    out.print(f"{Path(r.file).name}: {verb} with profile {r.profile} ({how}): "
              f"read {r.rows_read:,}{empty}, accepted {r.rows_accepted:,}, rejected {r.rows_rejected:,}")
    would = "would be " if r.dry_run else ""
    if r.without_key:  # checked before the pool key arrived: a stored record's content hash holds its pseudonym
        out.print(f"  records: {would}{r.records_inserted:,} new, {r.records_existing:,} already stored (updated or unchanged: "
                  f"telling them apart needs the pool key); measurements {r.measurements:,}")
    else:
        out.print(f"  records: {would}{r.records_inserted:,} new, {r.records_updated:,} updated, {r.records_unchanged:,} unchanged; "
                  f"measurements {r.measurements:,}")
    if r.columns_unread:  # a misnamed or unnamed column (a merged header cell): its values are not stored
        out.print(f"  not read (profile {r.profile} names no such column): {', '.join(repr(c) for c in r.columns_unread)}; "
                  "rename a column that should be read")
    if r.rows_rejected:
        kinds = ", ".join(f"{k} {v}" for k, v in r.errors_by_type.items())
        out.print(f"  problems found, by type: {kinds}")
        out.print(f"  see {r.rejects_file}")


def import_cmd(
    ctx: typer.Context,
    files: List[Path] = typer.Argument(..., help="Export files (CSV or XLSX)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Import profile name or TOML path (default: the shipped profile that fits the header)."),
    municipality: Optional[str] = typer.Option(None, "--municipality", "-m", help="SCB code of the municipality, for exports without a municipality column (rows naming another are rejected)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything, write nothing to the workspace."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help=REJECTS_HELP),
    again: bool = typer.Option(False, "--again", help="Import a file even if it was imported before (after fixing a code list or --municipality)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Read, validate, pseudonymise and store follow-up exports; report every rejected row.

    Each file is one transaction. The same file twice changes nothing (unless --again); a corrected
    re-export updates records by their record key. Exit code 10 means some rows were rejected.
    """
    _run(ctx, files, profile, municipality, dry_run, json_, rejects, again)


def validate_cmd(
    ctx: typer.Context,
    files: List[Path] = typer.Argument(..., help="Export files (CSV or XLSX)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Import profile name or TOML path."),
    municipality: Optional[str] = typer.Option(None, "--municipality", "-m", help="SCB code for exports without a municipality column."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help=REJECTS_HELP),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Run every import check on the files without writing to the workspace."""
    _run(ctx, files, profile, municipality, True, json_, rejects)


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("validate")(validate_cmd)
