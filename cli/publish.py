"""Publication commands: ``isu publish`` (aggregate → suppress → audit → write) and ``isu sql``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from isu.age_bands import DEFAULT_AGE_BANDS, parse_age_bands
from isu.pseudonym import mask_ids

from .main import emit, out


def publish_cmd(
    ctx: typer.Context,
    threshold: int = typer.Option(5, "--threshold", "-k", help="Smallest count shown (k): counts 1..k-1 are hidden."),
    out_dir: Path | None = typer.Option(None, "--out", help="Folder for the published files (default: store only)."),
    fmt: str = typer.Option("csv", "--format", help="File format: csv, xlsx or parquet."),
    period: str = typer.Option("half", "--period", help="Period leaves: 'half' (half-years and years) or 'year'."),
    age_bands: str = typer.Option(DEFAULT_AGE_BANDS, "--age-bands", help="Age bands at the end date, e.g. 0-17,18-64,65+."),
    lp_max_cells: int = typer.Option(2000, "--lp-max-cells", help="Audit LP intervals when a suppression call has at most this many cells."),
    insiders: bool = typer.Option(False, "--insiders", help="Protect against member municipalities too (each knows its own cells); for regional publications."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Publish aggregates: primary and secondary suppression, an audit, then pub_cells and files.

    Nothing is written when the audit finds a hidden cell that the published cells would reveal.
    """
    if period not in ("half", "year"):
        raise typer.BadParameter("use 'half' or 'year'", param_hint="--period")
    from isu.aggregate import AggregationSpec  # imported when used: keeps every command's start-up short
    from isu.publish import publish

    spec = AggregationSpec(age_bands=parse_age_bands(age_bands), period=period)  # type: ignore[arg-type]

    result = publish(ctx.obj.db, k=threshold, out=out_dir, fmt=fmt, spec=spec, lp_max_cells=lp_max_cells,
                     municipal_insiders=insiders)
    a = result.audit
    summary = {"publication_id": result.publication_id, "threshold": result.threshold, "cells": a["cells"],
               "shown": a["shown"], "primary": a["primary"], "secondary": a["secondary"], "na": a["na"],
               "tables": a["tables"], "files": [mask_ids(str(f)) for f in result.files], "audit": a}
    text = (f"Publication {result.publication_id} (k = {result.threshold}): {a['cells']:,} cells, {a['shown']:,} shown, "
            f"{a['primary']:,} primary and {a['secondary']:,} secondary suppressed, {a['na']:,} not applicable; audit passed.")
    if result.files:
        text += f"\nWrote {len(result.files)} files to {mask_ids(str(out_dir))}"
    emit(summary, json_, text)


def sql_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="The SQL query, e.g. \"SELECT * FROM cells LIMIT 10\"."),
    microdata: bool = typer.Option(False, "--microdata", help="Query the workspace's microdata (read-only) instead of published tables."),
    fmt: str = typer.Option("table", "--format", help="Output: table, csv or json."),
) -> None:
    """Run SQL over the latest publication (views: cells, pub_cells, publications, one per published table)."""
    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("use table, csv or json", param_hint="--format")
    from isu.query import sql

    frame = sql(ctx.obj.db, query, microdata=microdata)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv())
    elif fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dicts(), ensure_ascii=False, default=str) + "\n")
    else:
        table = Table(*frame.columns, show_lines=False)
        for row in frame.iter_rows():
            table.add_row(*("" if v is None else str(v) for v in row))
        out.print(table)
        out.print(f"{frame.height:,} row(s)")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish_cmd)
    app.command("sql")(sql_cmd)
