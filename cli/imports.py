"""``isu import`` and ``isu validate``: one line per file, a rejects file, --json summaries."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import duckdb
import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from isu.pseudonym import mask_ids
from isu.errors import IsuError, KeyFileError, UsageError, WorkspaceBusy, WorkspaceError, WorkspaceReadOnly
from isu.importer import import_file
from isu.keys import load_key
from isu.paths import present
from isu.store import connect, init_store

from .main import emit, err, error_line, error_object, out

REJECTS_HELP = "Where to write rejected rows: a folder, or a .csv/.xlsx file (one export only). Default: FILE.rejects.csv in the current folder."
CHECK_REJECTS_HELP = "Write the rejected rows to a file: a folder, or a .csv/.xlsx file (one export only). Default: no file; the first rejects are shown."


def _rejects_target(rejects: Optional[Path], many: bool, dry_run: bool) -> dict:
    """Where ``import_file`` writes the rejects: a file the user named, a folder (named after the
    export there), or, for a check (validate, --dry-run), none unless --rejects asks for one."""
    if rejects is None:
        return {} if dry_run else {"rejects_dir": Path.cwd()}
    if rejects.suffix.lower() in (".csv", ".xlsx"):
        if many:
            raise UsageError(f"--rejects {rejects} names one file, but several exports were given; give a folder instead")
        return {"rejects_path": rejects}
    return {"rejects_dir": rejects}


def _check_workspace(db: Path) -> duckdb.DuckDBPyConnection:
    """Where a check runs: the workspace (its key fingerprint is checked too), or an empty one in
    memory when there is none yet, another process is importing into it, or it cannot be written
    here (a check writes nothing, but runs inside a transaction of the workspace)."""
    try:
        if present(db):  # one that cannot be read: connect says so
            return connect(db)
    except (WorkspaceBusy, WorkspaceReadOnly) as e:
        err.print(f"note: {escape(mask_ids(str(e)))}; checked against an empty workspace instead (new/updated counts are not this workspace's)",
                  soft_wrap=True)
    con = duckdb.connect()
    init_store(con)
    return con


def _key(path: Path, dry_run: bool):
    """The pool key; for a check only (``validate``, ``--dry-run``), none when there is no key file:
    the checks do not depend on the key, so an export can be checked before the key has arrived."""
    return None if dry_run and not present(path) else load_key(path)  # one that cannot be read: load_key says so


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
                task = bar.add_task(f"{'checking' if dry_run else 'importing'} {mask_ids(f.name)}", total=None)
                try:
                    r = import_file(con, f, profile=profile, municipality=municipality, key_loader=lambda: _key(state.key_file, dry_run),
                                    dry_run=dry_run, again=again, **_rejects_target(rejects, len(files) > 1, dry_run))
                except IsuError as e:
                    if isinstance(e, (UsageError, WorkspaceError, KeyFileError)):
                        raise  # nothing else could go better
                    results.append({"file": mask_ids(str(f)), **error_object(str(e), e.exit_code, type(e).__name__)})
                    if len(files) == 1:
                        error_line(str(e))
                        if json_:
                            emit(results[0], True)  # a script reads one object, as for a file that was imported
                        raise typer.Exit(e.exit_code)
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


def _skip_line(r) -> str:
    """Why ``isu import`` skips (or, in a check, would skip) a file imported before, truthfully:
    whether later imports have changed its records since."""
    b = r.imported_before
    name, skip = Path(r.file).name, "would be skipped by isu import" if r.dry_run else "skipped"
    head = f"{name}: already imported on {b['on']} (import #{b['import_id']}, same SHA-256)"
    ids = b["later_imports"]
    later = f"later imports ({', '.join(f'#{i}' for i in ids[:5])}{f' and {len(ids) - 5:,} more' if len(ids) > 5 else ''})"
    tail = "; checked as --again would import it:" if r.dry_run else ""
    if r.changed_since is None:
        return (f"{head}; {skip}. Since then {later} stored records of {', '.join(b['municipalities'])}; whether they "
                f"changed this file's cannot be told without the pool key. Add --again to import it again{tail}")
    if r.changed_since:
        n = f"{r.changed_since:,} of its records"
        return (f"{head}, but {later} have changed {n} since; {skip}. Add --again to import it again "
                f"(this file's version of {'that record' if r.changed_since == 1 else 'them'} would replace the later one){tail}")
    return (f"{head}; its records are stored as it has them: nothing changed since; {skip}. To import it again after "
            f"fixing a code list or --municipality, add --again{tail}")


def _print(r) -> None:
    if r.already_imported:
        out.print(escape(_skip_line(r)), soft_wrap=True)
        if not r.dry_run:
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
    for code, n in r.records_not_in_file.items():  # a partial export is normal: nothing is deleted
        out.print(f"  {n:,} stored {'record' if n == 1 else 'records'} of {code} {'is' if n == 1 else 'are'} not in this file "
                  f"({'would be ' if r.dry_run else ''}kept)")
    if r.rows_rejected:
        kinds = ", ".join(f"{k} {v}" for k, v in r.errors_by_type.items())
        out.print(f"  problems found, by type: {kinds}")
        if r.rejects_file:
            out.print(f"  see {r.rejects_file}")
        for shown in r.rejects_shown:
            out.print(escape(f"  {shown['message']} ({shown['error_type']})"), soft_wrap=True)
        more = sum(r.errors_by_type.values()) - len(r.rejects_shown)
        if r.rejects_shown:
            out.print(f"  {f'… and {more:,} more; ' if more > 0 else ''}--rejects FILE.csv writes {'them all' if more > 0 else 'them'} "
                      "to a file (nothing was written)")


def import_cmd(
    ctx: typer.Context,
    files: List[Path] = typer.Argument(..., help="Export files (CSV or XLSX).", readable=False),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Import profile name or TOML path (default: the shipped profile that fits the header)."),
    municipality: Optional[str] = typer.Option(None, "--municipality", "-m", help="SCB code of the municipality, for exports without a municipality column (rows naming another are rejected)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything, write nothing (a rejects file only with --rejects), as isu validate."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help=REJECTS_HELP + " With --dry-run: no file unless given.", readable=False),
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
    files: List[Path] = typer.Argument(..., help="Export files (CSV or XLSX).", readable=False),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Import profile name or TOML path."),
    municipality: Optional[str] = typer.Option(None, "--municipality", "-m", help="SCB code for exports without a municipality column."),
    rejects: Optional[Path] = typer.Option(None, "--rejects", help=CHECK_REJECTS_HELP, readable=False),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Run every import check on the files, writing nothing: no workspace change, and a rejects file only with --rejects."""
    _run(ctx, files, profile, municipality, True, json_, rejects)


def register(app: typer.Typer) -> None:
    app.command("import")(import_cmd)
    app.command("validate")(validate_cmd)
