"""The before/after dashboard: one self-contained HTML file (Plotly) from published cells only.

``build_dashboard(db, out, lang=, municipality=, region=)`` reads the latest publication
(``publications`` and ``pub_cells``; never microdata) and writes the page.
"""

from .data import NoPublication
from .labels import UnknownLanguage
from .report import DashboardResult, build_dashboard
from .scope import UnknownArea

__all__ = ["DashboardResult", "NoPublication", "UnknownArea", "UnknownLanguage", "build_dashboard"]
