"""``isu dashboard``: the before/after dashboard, one self-contained HTML file from published cells."""

from __future__ import annotations

from pathlib import Path

import typer

from isu.pseudonym import mask_ids

from .main import emit

__all__ = ["dashboard_cmd", "register"]


def dashboard_cmd(
    ctx: typer.Context,
    out_file: Path = typer.Option(Path("isu-dashboard.html"), "--out", help="HTML file to write."),
    lang: str = typer.Option("sv", "--lang", help="Language of the page: sv (default) or en."),
    municipality: str | None = typer.Option(
        None, "--municipality", help="Focus on one municipality (SCB code, e.g. 0127), compared with its county, pool and all."
    ),
    region: str | None = typer.Option(
        None, "--region", help="Focus on a county (code, e.g. 01) or a pool (code from pools.csv, e.g. sodertorn)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
) -> None:
    """Build the before/after dashboard from the latest publication (run 'isu publish' first).

    The file holds everything it needs (charts, data, Plotly): it opens offline, on an intranet or
    as an e-mail attachment, and shows only published cells: hidden ones appear as "..".
    """
    from isu.dashboards import build_dashboard  # heavy (plotly, scipy): imported when used

    result = build_dashboard(ctx.obj.db, out_file, lang=lang, municipality=municipality, region=region)
    shown = mask_ids(str(result.path))  # --out as given, anything shaped like a person id masked
    text = (
        f"Wrote {shown} ({result.bytes / 1e6:.1f} MB, {result.seconds:.1f} s): "
        f"{result.focus}, publication {result.publication_id}, language {result.lang}"
    )
    emit({**result.summary(), "out": shown}, json_, text)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard_cmd)
