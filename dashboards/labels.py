"""Every word the dashboard shows, in Swedish and English, from one catalogue (``labels.csv``).

Free text (titles, axis labels, notes) comes from the catalogue; codes (interventions, need areas,
instruments, municipalities…) come from the shared code lists in ``isu.schemas``, so a regional
unit that edits a code list sees its own labels in the dashboard too.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from isu.schemas import code_list

from isu.errors import IsuError

__all__ = ["CATALOGUE", "LANGS", "Labels", "UnknownLanguage", "catalogue", "load_labels"]

LANGS = ("sv", "en")
CATALOGUE = Path(__file__).with_name("labels.csv")


class UnknownLanguage(IsuError):
    """--lang names a language the catalogue does not hold."""

    exit_code = 2


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict[str, str]]:
    """key → {lang: text}. A key without text in every language is a packaging bug: fail loudly."""
    with CATALOGUE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, dict[str, str]] = {}
    for row in rows:
        key = row["key"].strip()
        texts = {lang: (row.get(lang) or "").strip() for lang in LANGS}
        missing = [lang for lang, text in texts.items() if not text]
        if missing or key in out:
            raise ValueError(f"{CATALOGUE.name}: key {key!r} is duplicated or lacks {', '.join(missing)}")
        out[key] = texts
    return out


_PERIOD = re.compile(r"^(\d{4})(?:([HQ])(\d))?$")


@dataclass(frozen=True)
class Labels:
    """The catalogue in one language, plus code-list labels in the same language."""

    lang: str

    def __call__(self, key: str, **values: object) -> str:
        text = catalogue()[key][self.lang]
        return text.format(**values) if values else text

    def texts(self) -> dict[str, str]:
        """All catalogue texts in this language (the page's scripts look labels up here)."""
        return {key: texts[self.lang] for key, texts in catalogue().items()}

    def code(self, list_name: str, code: str) -> str:
        """A code's label from the code list ``list_name``; ``all`` is the margin; unknown codes show as is."""
        if code == "all":
            return self(f"all_{list_name}")
        codes = code_list(list_name)
        return codes.label(code, self.lang) if code in codes else code

    def geo(self, level: str, code: str) -> str:
        """Name of a municipality, county, pool or the whole publication."""
        if level == "all":
            return self("geo_all")
        if level == "municipality":
            return self.code("municipalities", code)
        if level == "pool":
            return self.code("pools", code)
        for row in code_list("municipalities").rows:
            if row.get("county_code") == code:
                return row.get(f"county_{self.lang}") or code
        return self("geo_county", code=code)

    def period(self, code: str) -> str:
        """``all`` → the whole time span; ``2024H1`` → a readable half-year; a year stays a year."""
        if code == "all":
            return self("period_all")
        m = _PERIOD.match(code)
        if not m or not m.group(2):
            return code
        key = "period_half" if m.group(2) == "H" else "period_quarter"
        return self(key, year=m.group(1), part=m.group(3))


def load_labels(lang: str) -> Labels:
    if lang not in LANGS:
        raise UnknownLanguage(f"unknown language {lang!r} for the dashboard; use one of: {', '.join(LANGS)}")
    catalogue()  # fail early on a broken catalogue
    return Labels(lang)
