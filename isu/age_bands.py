"""Age bands at a record's end date: parsed from the command line's ``--age-bands``.

Its own small module so that the command line can show the default without loading the
aggregation (polars) at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from isu.errors import IsuError

__all__ = ["DEFAULT_AGE_BANDS", "AgeBand", "parse_age_bands"]

DEFAULT_AGE_BANDS = "0-17,18-24,25-44,45-64,65+"


@dataclass(frozen=True)
class AgeBand:
    label: str
    lo: int
    hi: int | None  # inclusive; None = open-ended


def parse_age_bands(text: str) -> tuple[AgeBand, ...]:
    """``"0-17,18-24,65+"`` → bands. They must start at 0, be contiguous and end open (``N+``)."""
    bands: list[AgeBand] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            if part.endswith("+"):
                bands.append(AgeBand(part, int(part[:-1]), None))
            else:
                lo, hi = (int(x) for x in part.split("-"))
                bands.append(AgeBand(part, lo, hi))
        except ValueError:
            raise IsuError(f"age band {part!r} in {text!r} is not 'LOW-HIGH' or 'LOW+'; write e.g. {DEFAULT_AGE_BANDS}") from None
    ok = bands and bands[0].lo == 0 and bands[-1].hi is None and all(b.hi is not None for b in bands[:-1])
    ok = ok and all(a.hi + 1 == b.lo and a.lo <= a.hi for a, b in pairwise(bands))
    if not ok:
        raise IsuError(f"age bands {text!r} must start at 0, follow on without gaps and end with 'N+'; e.g. {DEFAULT_AGE_BANDS}")
    return tuple(bands)
