"""Build the dashboard: one self-contained HTML file from the latest publication.

Plotly.js is inlined once, the view model is embedded as JSON and the page's script draws the
charts, so the file opens offline, on an intranet or as an e-mail attachment and fetches nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from html import escape
from pathlib import Path
from string import Template
from typing import Any

import polars as pl
from plotly.offline import get_plotlyjs

from isu import __version__
from isu.errors import UsageError
from isu.store import connect

from .data import latest_publication, load_cells, published_geos
from .figures import COLOURS, SECTIONS, layouts
from .labels import Labels, load_labels
from .model import FUNNEL_MEASURES, TREND_MEASURES, build_model
from .scope import Scope, resolve_scope

__all__ = ["DashboardResult", "build_dashboard", "render_html"]

HERE = Path(__file__).parent
#: Explanations at the foot of the page, in order: (term key, text key).
NOTES = (
    ("note_hidden_term", "note_hidden"),
    ("note_threshold_term", "note_threshold"),
    ("note_ci_term", "note_ci"),
    ("note_rci_term", "note_rci"),
    ("note_funnel_term", "note_funnel"),
    ("note_attrition_term", "note_attrition"),
)


@dataclass(frozen=True)
class DashboardResult:
    path: Path
    bytes: int
    seconds: float
    publication_id: int
    focus: str
    lang: str

    def summary(self) -> dict[str, Any]:
        return {"out": str(self.path), "bytes": self.bytes, "seconds": round(self.seconds, 3),
                "publication_id": self.publication_id, "focus": self.focus, "lang": self.lang}  # fmt: skip


@cache
def _asset(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return get_plotlyjs()


def _json_for_script(value: Any) -> str:
    """JSON that cannot close the script element it sits in."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _sections(t: Labels) -> str:
    return "\n".join(
        f'  <section aria-labelledby="h-{s.id}">\n    <h2 id="h-{s.id}">{escape(t(s.title))}</h2>\n'
        f'    <p class="lead">{escape(t(s.lead))}</p>\n    <div id="fig-{s.id}" class="figure"></div>\n  </section>'
        for s in SECTIONS
    )


def _notes(t: Labels, threshold: int) -> str:
    items = "".join(
        f"\n      <dt>{escape(t(term, k=threshold))}</dt><dd>{escape(t(text, k=threshold, k_low=threshold - 1))}</dd>"
        for term, text in NOTES
    )
    return f"    <dl>{items}\n    </dl>"


def render_html(model: dict[str, Any], scope: Scope, t: Labels) -> str:
    """The page for a view model (``build_model``) and its scope."""
    meta = model["meta"]
    title = t("page_title", area=scope.focus.label)
    fields = {
        "lang": t.lang, "version": escape(__version__), "title": escape(title),
        "subtitle": escape(t("page_subtitle", id=meta["publication_id"], date=meta["created_at"], k=meta["threshold"])),
        "filters_label": escape(t("filters_label")), "filter_period": escape(t("filter_period")),
        "filter_category": escape(t("filter_category")), "filter_need": escape(t("filter_need")),
        "filter_instrument": escape(t("filter_instrument")), "selection_label": escape(t("selection_label")),
        "cards_title": escape(t("cards_title")), "table_title": escape(t("table_title")),
        "table_lead": escape(t("table_lead", k=meta["threshold"])), "notes_title": escape(t("notes_title")),
        "sections": _sections(t), "notes": _notes(t, meta["threshold"]),
        "footer": escape(t("footer", version=meta["toolkit_version"], id=meta["publication_id"])),
        "style": _asset("style.css"), "plotly": _plotly_js(), "app": _asset("app.js"),
        "data": _json_for_script({**model, "colours": COLOURS, "layouts": layouts(t)}),
    }  # fmt: skip
    return Template(_asset("template.html")).substitute(fields)


def build_dashboard(
    db: str | Path,
    out: str | Path = "isu-dashboard.html",
    *,
    lang: str = "sv",
    municipality: str | None = None,
    region: str | None = None,
) -> DashboardResult:
    """Write the dashboard for the workspace ``db`` to ``out`` and say what was written."""
    started = time.perf_counter()
    t = load_labels(lang)
    con = connect(db, read_only=True)
    try:
        publication = latest_publication(con)
        scope = resolve_scope(published_geos(con, publication.publication_id), t, municipality, region)
        pid = publication.publication_id
        focus = load_cells(con, pid, [(scope.focus.level, scope.focus.code)])
        comparisons = load_cells(con, pid, [(g.level, g.code) for g in scope.comparisons], TREND_MEASURES)
        wide = pl.concat([focus, comparisons], how="diagonal_relaxed")
        funnel_geos = {(g.level, g.code) for g in scope.members} | {(scope.reference.level, scope.reference.code)}
        funnel_cells = load_cells(con, pid, funnel_geos, FUNNEL_MEASURES)
    finally:
        con.close()
    html = render_html(build_model(publication, scope, wide, funnel_cells, t), scope, t)
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the dashboard to {path}: {e.strerror or e}; choose another --out") from None
    return DashboardResult(path, path.stat().st_size, time.perf_counter() - started, pid, scope.focus.label, lang)
