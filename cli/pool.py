"""``isu pool export`` and ``isu pool import``: regional pooling from the command line."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from isu.keys import load_key
from isu.pseudonym import mask_ids
from isu.store import connect

from .main import emit, err

__all__ = ["pool_app", "register"]

pool_app = typer.Typer(
    help="Regional pooling: a municipality exports a pseudonymised package; the region imports packages.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(pool_app, name="pool")


def _given_key_fingerprint(ctx: typer.Context) -> str | None:
    """The fingerprint of ``--key-file`` (or ISU_KEY_FILE) when the user named one, else None."""
    if ctx.find_root().params.get("key_file") is None and not os.environ.get("ISU_KEY_FILE"):
        return None
    return load_key(ctx.obj.key_file).fingerprint


@pool_app.command("export")
def export_cmd(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Package file to write (e.g. 2303-2024.isupool.zip)."),
    municipality: str | None = typer.Option(None, "--municipality", help="Only this municipality (SCB code)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Write one pseudonymised package (records, measurements, manifest) for the region."""
    from isu.pool import export_package  # imported when used: keeps every command's start-up short

    key_fp = _given_key_fingerprint(ctx)
    con = connect(ctx.obj.db, read_only=True)
    try:
        s = export_package(con, out, municipality=municipality, key_fingerprint=key_fp)
    finally:
        con.close()
    p = s["period"]
    s = {**s, "package": mask_ids(s["package"])}  # --out as given, anything shaped like a person id masked
    emit(s, as_json, (
        f"wrote {s['package']}: {s['records']} records, {s['measurements']} measurements of "
        f"{', '.join(s['municipalities'])} ({p['first']} … {p['last']}), key {s['key_fingerprint']}\n"
        f"sha256 {s['sha256']}\nSend this file to the region; the key file never travels."
    ))


@pool_app.command("import")
def import_cmd(
    ctx: typer.Context,
    packages: list[Path] = typer.Argument(..., help="Package files from the municipalities.", readable=False),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Verify packages and merge them into this (regional) workspace, all or nothing."""
    from isu.pool import import_packages

    key_fp = _given_key_fingerprint(ctx)
    con = connect(ctx.obj.db, create=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                   transient=True, disable=as_json or not err.is_terminal)
    try:
        with bar:
            task = bar.add_task("verifying and importing packages", total=len(packages))
            s = import_packages(con, packages, key_fingerprint=key_fp,
                                progress=lambda done, _total: bar.update(task, completed=done))
    finally:
        con.close()
    lines = []
    for r in s["packages"]:
        what = f"{r['records']} records"
        if r["status"] == "imported":
            what += f" ({r['records_new']} new, {r['records_replaced']} replaced, {r['records_removed']} removed)"
        lines.append(f"{r['status']:<16} {','.join(r['municipalities'])}  {what}")
    lines.append(f"{s['imported']} imported, {s['already_imported']} already imported, {s['superseded']} superseded")
    s = {**s, "packages": [{**r, "package": mask_ids(r["package"])} for r in s["packages"]]}
    emit({"workspace": mask_ids(str(ctx.obj.db)), **s}, as_json, "\n".join(lines))
