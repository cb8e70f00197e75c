"""Every line of a CSV accounted for: stored, rejected, empty, or inside a value that spans lines.

DuckDB's CSV reader sets a malformed row aside and goes on, but where a value outgrows its buffer
(a quote that never closes early in a large file, a cell of tens of megabytes) it goes on from its
next buffer, and the lines between are in no row and in no reject, without a word. Counting the
lines read against the file's lines (``Source.lines``) finds that; the import then refuses the file,
naming the line to look at, since what those lines hold cannot be told.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .read import MAX_LINE, Source

__all__ = ["check_every_line"]


def check_every_line(src: Source, scan, blank: list[int]) -> None:
    """Raise InputError unless each line of ``src`` is in one row the ``scan`` (``isu.stage.Scan``,
    read to its end and past ``malformed_lines``) read or set aside, or among the empty lines
    ``blank`` (``isu.stage.blank_rows``). Too few: lines are in no row. Too many: DuckDB went on
    inside a row it set aside (a value that spans more lines than its buffer holds), reading part of
    that row's lines again as rows of their own."""
    if src.kind != "csv" or scan is None or not src.lines:
        return
    _, breaks, _ = scan.spans()
    aside = np.array(scan.aside, np.int64).reshape(-1, 2)
    seen = src.header_lines + scan.rows + int(breaks.sum()) + len(aside) + int(aside[:, 1].sum()) + len(blank)
    seen -= _inside(np.array(src.blank_lines, np.int64), aside)  # empty lines of a row set aside: counted with it
    if seen == src.lines:
        return
    if seen > src.lines:
        first, n = max(scan.aside, key=lambda s: s[1])
        raise InputError(f"{src.path.name}: line {first}: a quote (\") opens a value that closes only at line {first + n}, "
                         "more lines than can be read as one value; fix the quote and import again")
    lost = src.lines - seen
    long = _first_long_line(src.path)
    where = (f"line {long} is longer than a megabyte (a quote that never closes, or a cell too large to be a value)"
             if long is not None else "a quote (\") that never closes may have swallowed them")
    raise InputError(f"{src.path.name}: {lost} line{'s' * (lost != 1)} of the file could not be read as rows: {where}; "
                     "nothing was imported. Fix the file and import again")


def _inside(lines: np.ndarray, spans: np.ndarray) -> int:
    """How many of ``lines`` (ascending) fall after the first line of one of ``spans`` (first line,
    line breaks; ascending, not overlapping) and within it."""
    if not len(lines) or not len(spans):
        return 0
    i = np.searchsorted(spans[:, 0], lines, side="left") - 1
    ok = i >= 0
    j = i[ok]
    return int(np.count_nonzero(lines[ok] <= spans[j, 0] + spans[j, 1]))


def _first_long_line(path: Path, chunk: int = 8 << 20) -> int | None:
    """The first line (from 1) of more than ``MAX_LINE`` bytes, or None."""
    start = offset = 0  # where the open line starts; bytes read
    line = 1
    with path.open("rb") as f:
        while data := f.read(chunk):
            lf = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + offset
            ends = np.concatenate(([start - 1], lf))
            over = np.flatnonzero(np.diff(ends) - 1 > MAX_LINE)
            if len(over):
                return line + int(over[0])
            line += len(lf)
            if len(lf):
                start = int(lf[-1]) + 1
            offset += len(data)
            if offset - start > MAX_LINE:
                return line
    return None
