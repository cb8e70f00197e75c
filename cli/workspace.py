"""Workspace commands: ``isu init``, ``isu key new``, ``isu status``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from isu.keys import new_key
from isu.pseudonym import mask_ids
from isu.status import workspace_status
from isu.store import TABLE_DOCS, connect

from .main import emit, out

key_app = typer.Typer(help="Manage the pool key (the secret behind every pseudonym).", no_args_is_help=True)


def init(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print one JSON summary object.")) -> None:
    """Create the workspace (a DuckDB file with the documented tables). Safe to run twice."""
    db = ctx.obj.db
    existed = db.exists()
    connect(db, create=True).close()
    emit({"db": mask_ids(str(db)), "created": not existed, "tables": TABLE_DOCS}, json_,
         f"{'Workspace already exists' if existed else 'Created workspace'}: {mask_ids(str(db))}")


@key_app.command("new")
def key_new(
    ctx: typer.Context,
    out_path: Optional[Path] = typer.Option(None, "--out", help="Where to write the key (default: --key-file, ./isu.key).",
                                           readable=False),  # an existing key: new_key says so
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Write a new random pool key (file mode 0600) and print its fingerprint.

    Share the key file only with the municipalities of the pool, never with the region: whoever
    holds it can re-identify clients. The fingerprint is public and identifies the key.
    """
    path = out_path or ctx.obj.key_file
    key = new_key(path)
    shown = mask_ids(str(path))  # a path the user gave, shown as all output is: with anything shaped like a person id masked
    emit({"key_file": shown, "fingerprint": key.fingerprint}, json_,
         f"Wrote pool key {shown} (mode 0600). Fingerprint: {key.fingerprint}")


def status(ctx: typer.Context, json_: bool = typer.Option(False, "--json", help="Print one JSON summary object.")) -> None:
    """Show what the workspace holds: imports, records, rejects, publications."""
    con = connect(ctx.obj.db, read_only=True)
    try:
        s = workspace_status(con)
    finally:
        con.close()
    if json_:
        emit(s, True)
        return
    out.print(f"Workspace {mask_ids(str(ctx.obj.db))}")
    out.print(f"  records: {s['records']:,}  clients: {s['clients']:,}  measurements: {s['measurements']:,}  municipalities: {len(s['municipalities'])}")
    replaced = s["rows_rejected_all"] - s["rows_rejected"]
    out.print(f"  imports: {len(s['imports'])}  rejected rows: {s['rows_rejected']:,} (latest import of each file"
              f"{f'; {replaced:,} more in imports replaced since' if replaced else ''})  publications: {s['publications']}")
    for imp in s["imports"][-10:]:
        by = f", replaced by #{imp['superseded_by']}" if imp["superseded_by"] is not None else ""
        out.print(f"  #{imp['import_id']} {imp['kind']} {imp['file_name']}: read {imp['rows_read']:,}, accepted {imp['rows_accepted']:,}, "
                  f"rejected {imp['rows_rejected']:,} ({imp['finished_at']:%Y-%m-%d %H:%M}{by})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.add_typer(key_app, name="key")
