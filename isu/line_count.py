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
from .read import MAX_LINE, Source, lines_of

__all__ = ["check_every_line", "lone_cr_line"]


def check_every_line(src: Source, scan, aside: list[tuple[int, int]], blank: list[int]) -> None:
    """Raise InputError unless each line of ``src`` is in one row the ``scan`` (``isu.stage.Scan``,
    read to its end) read or DuckDB set aside (``aside``: their first line and line breaks, from
    ``isu.stage.malformed_lines``), or among the empty lines ``blank`` (``isu.stage.blank_rows``). Too few: lines are in no row. Too many: DuckDB went on
    inside a row it set aside (a value that spans more lines than its buffer holds), reading part of
    that row's lines again as rows of their own."""
    if src.kind != "csv" or scan is None or not src.lines:
        return
    _, breaks, _ = scan.spans()
    spans = np.array(aside, np.int64).reshape(-1, 2)
    seen = src.header_lines + scan.rows + int(breaks.sum()) + len(spans) + int(spans[:, 1].sum()) + len(blank)
    if seen == src.lines:
        return
    if seen > src.lines and aside:
        first, n = max(aside, key=lambda s: s[1])
        raise InputError(f"{src.path.name}: line {first}: a quote (\") opens a value that closes only at line {first + n}, "
                         "more lines than can be read as one value; fix the quote and import again")
    if seen > src.lines:  # no row set aside to blame: say what was counted
        raise InputError(f"{src.path.name}: {seen - src.lines} more rows and lines were read than the file has lines; "
                         "nothing was imported. Save the export again (as CSV UTF-8) and import it again")
    lost = src.lines - seen
    long = _first_long_line(src.path)
    if long is not None:
        where = f"line {long} is longer than a megabyte (a quote that never closes, or a cell too large to be a value)"
    elif (quote := _runaway_quote(src)) is not None:
        where = f"a quote (\") on line {quote} opens a value that runs on for more than a megabyte or never closes"
    else:
        where = "a quote (\") that never closes may have swallowed them"
    raise InputError(f"{src.path.name}: {lost} line{'s' * (lost != 1)} of the file could not be read as rows: {where}; "
                     "nothing was imported. Fix the file and import again")


def _runaway_quote(src: Source) -> int | None:
    """The first line (from 1) on which a quoted value opens that runs on for more than ``MAX_LINE``
    bytes, or to the end of the file; or None. Quotes pair up as in CSV (``""`` inside a value: two)."""
    opened, size = None, 0
    with lines_of(src) as f:
        for number, text in enumerate(f, 1):
            odd = text.count(b'"') % 2
            if opened is None:
                if odd:
                    opened, size = number, 0
            elif odd:
                opened = None
            if opened is not None:
                size += len(text)
                if size > MAX_LINE:
                    return opened
    return opened


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


def lone_cr_line(src: Source, chunk: int = 8 << 20) -> int | None:
    """The first line (from 1) of a file whose lines end in LF (or CRLF) that holds a CR not
    followed by LF, or None: DuckDB's strict reader stops at one ("invalid state"), which says
    nothing a person can act on."""
    if src.kind != "csv" or src.cr_line_ends:
        return None
    line, tail = 1, b""
    with src.path.open("rb") as f:
        while data := f.read(chunk):
            data = tail + data
            octets = np.frombuffer(data, np.uint8)
            cr = np.flatnonzero(octets[:-1] == 13)
            lone = cr[octets[cr + 1] != 10]
            if len(lone):
                return line + int(np.count_nonzero(octets[: lone[0]] == 10))
            line += int(np.count_nonzero(octets[:-1] == 10))
            tail = data[-1:]
    return line if tail == b"\r" else None
