"""What each chart looks like: sections, plain-language titles, colours, axes and fonts.

Layouts are built and validated with ``plotly.graph_objects`` here; the page's script only fills in
the numbers for the chosen filters. Colours are the Okabe-Ito palette (safe for the common kinds of
colour blindness) and fonts are large enough to read on a projector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from .labels import Labels

__all__ = ["COLOURS", "FONT", "PALETTE", "SECTIONS", "Section", "layouts"]

#: Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
    "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000",
}  # fmt: skip
GREY = "#B8B8B8"

#: Colour of each role in the charts; the page's script reads this too.
COLOURS = {
    "before": PALETTE["orange"],
    "after": PALETTE["blue"],
    "change": PALETTE["black"],
    "improved": PALETTE["blue"],
    "unchanged": GREY,
    "deteriorated": PALETTE["vermillion"],
    "goal_met": PALETTE["blue"],
    "goal_improved": PALETTE["sky"],
    "goal_no_change": GREY,
    "goal_worse": PALETTE["vermillion"],
    "goal_not_assessed": "#E8E8E8",
    "point": PALETTE["blue"],
    "focus": PALETTE["vermillion"],
    "limit": "#444444",
    "completers": PALETTE["blue"],
    "dropouts": PALETTE["orange"],
    "series": [PALETTE["blue"], PALETTE["orange"], PALETTE["green"], PALETTE["purple"], PALETTE["sky"]],
}

FONT = {"family": "'Segoe UI', 'Helvetica Neue', Arial, sans-serif", "size": 16, "color": "#1a1a1a"}


@dataclass(frozen=True)
class Section:
    """One chart on the page: its element id and the catalogue keys of its title and lead text."""

    id: str
    title: str
    lead: str


SECTIONS = (
    Section("beforeafter", "fig_beforeafter_title", "fig_beforeafter_lead"),
    Section("rci", "fig_rci_title", "fig_rci_lead"),
    Section("goals", "fig_goals_title", "fig_goals_lead"),
    Section("funnel", "fig_funnel_title", "fig_funnel_lead"),
    Section("trend", "fig_trend_title", "fig_trend_lead"),
    Section("attrition", "fig_attrition_title", "fig_attrition_lead"),
)


def _base(labels: Labels, **extra: Any) -> dict[str, Any]:
    """Common look of every chart; ``extra`` adds or replaces top-level layout attributes."""
    common: dict[str, Any] = {
        "font": FONT,
        "separators": ", " if labels.lang == "sv" else ".,",
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "margin": {"l": 20, "r": 30, "t": 50, "b": 70},
        "legend": _legend(),
        "hoverlabel": {"font": {"size": 16}},
    }
    return go.Layout(**{**common, **extra}).to_plotly_json()


def _legend(**extra: Any) -> dict[str, Any]:
    return {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 16}, **extra}


def _rows_axis() -> dict[str, Any]:
    return {"type": "category", "autorange": "reversed", "automargin": True, "showgrid": False, "ticksuffix": "  "}


def _percent(value: float, lang: str) -> str:
    """``20 %`` in Swedish, ``20%`` in English (Plotly's own formats cannot put the space in)."""
    sign = "\u00a0%" if lang == "sv" else "%"
    return f"{value * 100:.0f}{sign}"


def _share_axis(title: str, lang: str) -> dict[str, Any]:
    ticks = [i / 5 for i in range(6)]
    return {"title": {"text": title}, "range": [0, 1], "gridcolor": "#e5e5e5", "zeroline": False,
            "tickvals": ticks, "ticktext": [_percent(v, lang) for v in ticks]}  # fmt: skip


def layouts(labels: Labels) -> dict[str, dict[str, Any]]:
    """Base layout of every chart; axis titles that depend on the instrument are set by the page."""
    t = labels
    grid = {"gridcolor": "#e5e5e5", "zeroline": False, "automargin": True}
    return {
        "beforeafter": _base(
            t,
            xaxis={**grid, "domain": [0, 0.58]},
            xaxis2={**grid, "domain": [0.66, 1], "title": {"text": t("axis_change")},
                    "zeroline": True, "zerolinecolor": "#333", "zerolinewidth": 2},
            yaxis=_rows_axis(),
        ),
        "rci": _base(
            t, barmode="stack", legend=_legend(traceorder="normal"),
            xaxis=_share_axis(t("axis_share_clients"), t.lang), yaxis=_rows_axis(),
        ),
        "goals": _base(
            t, barmode="stack", legend=_legend(traceorder="normal"), margin={"l": 20, "r": 30, "t": 90, "b": 70},
            xaxis=_share_axis(t("axis_share_all"), t.lang), yaxis=_rows_axis(),
        ),
        "funnel": _base(
            t,
            xaxis={**grid, "title": {"text": t("axis_paired_n")}, "rangemode": "tozero"},
            yaxis={**_share_axis(t("axis_share_improved"), t.lang), "automargin": True},
            showlegend=True,
        ),
        "trend": _base(
            t,
            scattermode="group",  # comparison areas side by side at each period, not on top of each other
            scattergap=0.6,
            xaxis={**grid, "type": "category", "title": {"text": t("axis_period")}},
            yaxis={**_share_axis(t("axis_share_improved"), t.lang), "automargin": True},
        ),
        "attrition": _base(t, xaxis={**grid}, yaxis=_rows_axis()),
    }
