"""Header rows, CSV and workbook alike: the names a file's columns are read by.

Each column needs a name of its own, and letter case and spacing do not make one: DuckDB's names
ignore case, and the profile match ignores both (``Profile.spelt_as``), so of ``Kommunkod`` and
``KOMMUNKOD`` either might be read. Empty header cells get names of their own after their place.
"""

from __future__ import annotations

import itertools
from collections import Counter

from isu.schemas.profiles import header_key

from .pseudonym import mask_ids

__all__ = ["header_problem", "name_empty"]


def header_problem(header: list[str]) -> str | None:
    """What makes ``header`` (its cells, stripped) unreadable, or None: a name repeated."""
    keys = Counter(header_key(h) for h in header if h)
    if all(n == 1 for n in keys.values()):
        return None
    dup = sorted({h for h in header if h and keys[header_key(h)] > 1})
    same = " (letter case and spacing do not count)" if len(dup) > len({header_key(d) for d in dup}) else ""
    return f"the header repeats column names {mask_ids(str(dup))}{same}; each column needs its own name"


def name_empty(header: list[str]) -> tuple[str, ...]:
    """Empty header cells (a header ending in a delimiter, say) named 'column N' after their place,
    so that DuckDB can read them; no profile names them, so their values are ignored."""
    taken = set(header)
    named = []
    for i, h in enumerate(header, 1):
        if not h:
            h = next(n for n in (f"column {i}" + "'" * k for k in itertools.count()) if n not in taken)
            taken.add(h)
        named.append(h)
    return tuple(named)
