"""Reading real exports: find encoding and delimiter, then hand DuckDB a relation of text columns.

CSV is read by DuckDB itself (streaming, parallel, malformed lines collected rather than fatal);
XLSX by fastexcel into Arrow. Every column arrives as text; typing is the validator's job, so a
bad value becomes a reported reject instead of a failed read.

Encodings: UTF-8 (with or without BOM) and Windows-1252. DuckDB has Latin-1 built in, and cp1252
differs from it only in bytes 0x80-0x9F (€, curly quotes…), which DuckDB's Latin-1 refuses: a file
with such bytes is transcoded in memory instead (``register_transcoded``), as is a file whose lines
end in both CRLF and LF (DuckDB's strict reader stops at the first line that differs) or in a CR
alone (Excel for Mac's "CSV (Macintosh)"; DuckDB reads no such lines).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import itertools
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from pathlib import Path

import numpy as np

from . import sql_text
from .errors import InputError
from .headers import header_problem, name_empty
from .pseudonym import mask_ids
from .workbook import Sheet, is_workbook, read_sheet

__all__ = ["Source", "inspect_file", "csv_scan_sql", "needs_copy", "register_transcoded", "release_transcoded"]

DELIMITERS = (";", ",", "\t", "|")
CHUNK = 4 << 20
MAX_LINE = 1 << 20  # bytes of one row, for DuckDB's reader


@dataclass(frozen=True)
class Source:
    """What the reader found out about a file before reading it."""

    path: Path
    sha256: str
    kind: str  # 'csv' or 'xlsx'
    encoding: str | None = None  # 'utf-8' or 'cp1252' for CSV
    bom: bool = False
    c1_bytes: bool = False  # any byte 0x80-0x9F: only then does cp1252 differ from Latin-1
    delimiter: str | None = None
    header: tuple[str, ...] = ()
    mixed_line_ends: bool = False  # CRLF and bare LF (line ends, or inside quoted values): read from a copy in memory
    cr_line_ends: bool = False  # lines end in a CR alone (Excel for Mac's "CSV (Macintosh)"): read from a copy in memory
    blank_lines: tuple[int, ...] = ()  # empty lines (from 1): DuckDB skips them, a spreadsheet shows them as rows
    lines: int = 0  # CSV: the file's lines (a last one without a line end too), every one of which an import accounts for
    header_lines: int = 1  # CSV: the lines of the header row (a quoted name may span lines)
    sheet: str | None = None  # XLSX: the sheet the header is from (the first Excel shows unless ``on_sheet``)
    header_row: int = 1  # the header's row as a spreadsheet shows it (XLSX: blank rows may come before it)
    header_problem: str | None = None  # XLSX: why its header cannot be read (said only if the sheet is the one read)
    sheets: tuple[str, ...] = ()  # XLSX: every sheet of the workbook
    other_sheets: tuple[str, ...] = ()  # XLSX: the sheets but this one, those Excel shows first
    sheet_hidden: bool = False  # XLSX: this sheet is hidden in Excel
    #: XLSX: the sheet as read (``isu.workbook.Sheet``: its rows below the header, as an Arrow table
    #: of strings). Held, because fastexcel parses the whole sheet for any part of it, even the header.
    book: Any = field(default=None, compare=False, repr=False)

    def on_sheet(self, sheet: str) -> Source:
        """This workbook as read from another of its sheets (named letter case aside)."""
        return _from_sheet(self.path, self.sha256, read_sheet(self.path, sheet))

    def header_rows(self) -> list[int]:
        """XLSX: the rows below the header taken that may be the header instead (a title above the table)."""
        return self.book.header_rows() if self.book is not None else []

    def at_row(self, row: int) -> Source:
        """XLSX: this sheet read with its header on ``row``."""
        return _from_sheet(self.path, self.sha256, self.book.at_row(row))


def _digest_and_encoding(path: Path) -> tuple[str, str, bool, bytes, bool, bool, bool, tuple[int, ...], int]:
    """One pass: SHA-256, the encoding, BOM, the first chunk, any byte 0x80-0x9F, mixed line ends,
    CR line ends, the empty lines, the lines.
    The hash runs in a second thread (hashlib lets go of the GIL) beside the checks of the text.

    UTF-8 unless the bytes that do not decode as UTF-8 outnumber the multi-byte sequences that do
    (a BOM means UTF-8). Windows-1252 text practically never forms a valid sequence (å is the lone
    byte 0xE5), so this tells the two apart, and a UTF-8 export with a stray byte stays UTF-8: DuckDB
    sets aside just the line that holds it, where reading it all as cp1252 would garble every row."""
    h = hashlib.sha256()
    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=4)

    def digest() -> None:
        while (chunk := chunks.get()) is not None:
            h.update(chunk)

    hasher = threading.Thread(target=digest, name="isu-sha256", daemon=True)
    hasher.start()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    invalid = multibyte = crs = 0
    lines = _Lines()
    c1 = False
    first = b""
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                chunks.put(chunk)
                if not first:
                    first = chunk
                if invalid <= 100 * (multibyte + 1):  # else cp1252 beyond doubt: spare decoding the rest
                    text = decoder.decode(chunk)
                    invalid += text.count("\ufffd")
                    multibyte += len(chunk) - len(text)  # the bytes after the first of each sequence
                octets = np.frombuffer(chunk, np.uint8)  # numpy: 3x as fast as bytes.count, 5x as a search for b"\n\n"
                c1 = c1 or bool(np.count_nonzero(octets - np.uint8(0x80) < 0x20))  # 0x80-0x9F; 2.5x as fast as bytes.translate
                if crs or b"\r" in chunk:  # a search for one byte costs next to nothing
                    crs += int(np.count_nonzero(octets == 13))
                lines.add(octets, crs > 0)
    finally:
        chunks.put(None)
        hasher.join()
    invalid += decoder.decode(b"", final=True).count("\ufffd")
    bom = first.startswith(codecs.BOM_UTF8)
    utf8 = bom or multibyte >= invalid
    # lines end in CRs alone when those outnumber the LFs; where both occur, when they do so outside
    # quoted values at the start of the file (LFs inside values, or CRs, may outnumber the line ends)
    cr_ends = crs - lines.crlf > lines.count
    if crs > lines.crlf and lines.count:
        cr_ends = cr_line_ends_in(first, whole=lines.offset == len(first), counted=cr_ends)
    mixed = not cr_ends and 0 < lines.crlf < lines.count  # some LFs after a CR, some not
    if cr_ends:
        lines = _lines_of(_as_lf(path.read_bytes()))
    return h.hexdigest(), ("utf-8" if utf8 else "cp1252"), bom, first, c1, mixed, cr_ends, tuple(lines.empty), lines.total()


def cr_line_ends_in(data: bytes, *, whole: bool = False, counted: bool | None = None) -> bool:
    """Whether the lines of a CSV file that holds both CRs alone and LFs end in a CR alone, told by
    the line ends outside quoted values at its start ``data`` (``whole``: all of the file); a quote
    opens or closes a quoted value wherever it stands, whatever the delimiter (``""`` inside one:
    two, and the value goes on). ``counted``: what counting the file's CRs alone against its LFs
    said (more CRs: True), which this overturns only when the start of the file is clear about it;
    None: count those of ``data``.

    Excel for Mac ends lines in a CR and a line break inside a cell in an LF: in a short export with
    long comments the LFs outnumber the CRs. Toward CR line ends, then, the CRs alone that end lines
    outside quoted values need only outnumber the LFs that do (a stray CR in a header, a minority,
    stays an LF file's). Toward LF, no CR alone may end a line outside quoted values: a stray quote
    turns what is in and out of quotes after it around, and the CR after the header then still
    keeps a CR file one. Costs some milliseconds on the first piece of a file (``CHUNK``), and only
    on a file that holds both."""
    octets = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(octets == 34)
    lfs = np.flatnonzero(octets == 10)
    alone = _alone(octets, np.flatnonzero(octets == 13))
    if counted is None:
        counted = len(alone) > len(lfs)
    cr, lf = (at[np.searchsorted(quotes, at) % 2 == 0] for at in (alone, lfs))  # outside quotes: an even number before
    if not whole and len(cr) and cr[-1] == len(octets) - 1:
        cr = cr[:-1]  # an LF may follow it in the next piece
    if not ((len(cr) > 0 or not len(lf)) if counted else len(cr) > len(lf)):
        return False
    # an LF file whose values hold CRs alone, unquoted, in many rows: its LFs part it into rows of the
    # header's width, and its CRs do not (then DuckDB's reader names the first such CR's line)
    delim = max(DELIMITERS, key=lambda d: int(np.count_nonzero(octets == ord(d))))
    delims = np.flatnonzero(octets == ord(delim))
    by_lf = _of_header_width(delims, lfs, whole)
    return not (by_lf >= 0.9 and by_lf > _of_header_width(delims, alone, whole))


def _alone(octets: np.ndarray, crs: np.ndarray) -> np.ndarray:
    """Of the CRs at ``crs``, those no LF follows (the last byte: none follows it)."""
    return crs[octets[np.minimum(crs + 1, len(octets) - 1)] != 10]


def _of_header_width(delims: np.ndarray, ends: np.ndarray, whole: bool) -> float:
    """The share of the lines after the first, the lines ending at ``ends``, that hold as many
    delimiters (at ``delims``) as the first (the header); 0 for fewer than two lines after it."""
    counts = np.diff(np.searchsorted(delims, np.concatenate(([0], ends + 1))))
    rows = counts[1:] if whole or len(counts) < 3 else counts[1:-1]  # its last line end may be half a CRLF
    return float(np.mean(rows == counts[0])) if len(rows) >= 2 else 0.0


def lines_of(src: Source) -> BinaryIO:
    """The CSV's bytes to iterate by line as DuckDB reads them: lines ending in a CR alone made LF
    (such files are read from a copy in memory anyway)."""
    if src.cr_line_ends:
        return io.BytesIO(_as_lf(src.path.read_bytes()))
    return src.path.open("rb")


def _as_lf(data: bytes) -> bytes:
    """CR line ends (and CRLF ones) made LF."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _lines_of(data: bytes) -> _Lines:
    lines = _Lines()
    if data:
        lines.add(np.frombuffer(data, np.uint8))
    return lines


class _Lines:
    """Line ends of a file read in pieces: how many, and which lines are empty (nothing, or a lone
    CR, before the LF). DuckDB skips empty lines without a word; a person counts them as rows."""

    def __init__(self) -> None:
        self.count, self.empty, self.crlf = 0, [], 0  # crlf: the LFs after a CR (counted when ``add`` is told)
        self.start, self.offset, self.last = 0, 0, -1  # where the open line starts; bytes read; the last byte

    def add(self, octets: np.ndarray, crs: bool = False) -> None:
        """The next piece of the file; ``crs``: whether CRs were seen so far (then CRLFs are counted)."""
        lf = np.flatnonzero(octets == 10)
        if crs and len(lf):
            self.crlf += int(np.count_nonzero(octets[lf[lf > 0] - 1] == 13)) + int(lf[0] == 0 and self.last == 13)
        if len(lf):
            gap = lf - np.concatenate(([self.start - self.offset], lf[:-1] + 1))  # bytes before each LF in its line
            near = np.flatnonzero(gap <= 1)
            if len(near):
                at = lf[near]
                before = np.where(at > 0, octets[np.maximum(at - 1, 0)], self.last)
                self.empty += (self.count + 1 + near[(gap[near] == 0) | (before == 13)]).tolist()
            self.count += len(lf)
            self.start = self.offset + int(lf[-1]) + 1
        self.last, self.offset = int(octets[-1]), self.offset + len(octets)

    def total(self) -> int:
        """The file's lines: its line ends, and a last line without one (unless a lone CR, which DuckDB ignores)."""
        return self.count + (self.offset > self.start and not (self.offset - self.start == 1 and self.last == 13))  # a lone CR: none


def _first_record(text: str, delimiter: str | None) -> tuple[str, list[str]]:
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError("the first line is blank; expected a header row with column names")
    head = lines[0]
    if delimiter is None:
        counts = {d: head.count(d) for d in DELIMITERS}
        delimiter = max(counts, key=counts.get)
        if counts[delimiter] == 0:
            raise InputError("no delimiter in the header row (tried ; , tab |); is this a CSV export?")
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'))
    except (csv.Error, StopIteration) as e:
        raise InputError(f"cannot read the header row: {e}") from None
    return delimiter, [h.strip() for h in header]


def _broken_header(text: str, delimiter: str, header: list[str]) -> str | None:
    """A header whose last names went on to the next lines (a line break in a name that is not
    quoted): the rows all have as many values as the header's lines together, read as one. What
    to tell, or None. ``text``: the file's first piece. A break in the last name alone adds no
    value to the header, and is not told from a first row of one value."""
    try:
        records = [r for r in itertools.islice(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'), 1, 41) if r]
    except csv.Error:  # a quote that does not close soon, say: the scan tells what is wrong with the rows
        return None
    if len(records) == 40:
        records.pop()  # the piece may end inside it
    sizes = [len(r) for r in records]
    width = len(header)
    for taken in range(1, 4):  # the header's lines after its first
        if len(sizes) < taken + 2:
            break
        width += sizes[taken - 1] - 1
        rows = set(sizes[taken:])
        if rows == {width} and width > len(header):  # no more names: a row of one value after a whole header, say
            return (f"line 1: the header's column {mask_ids(repr(header[-1]))} goes on at line 2 ({mask_ids(repr(records[0][0]))}): "
                    f"a line break inside a column name that is not in quotes (the rows have {width} values, the header's first line "
                    f"{len(header)} names); join the header's lines in a text "
                    "editor (or save the export again) and import again")
        if width >= max(rows):
            break
    return None


def inspect_file(path: str | Path, *, encoding: str | None = None, delimiter: str | None = None) -> Source:
    """Hash the file and find its kind, encoding, delimiter and header."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        sha, found, bom, first, c1, mixed, cr_ends, blank, total = _digest_and_encoding(path)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if not first:
        raise InputError(f"{path}: the file is empty")
    if first.startswith(b"PK\x03\x04"):
        if path.suffix.lower() not in (".xlsx", ".xlsm"):
            if is_workbook(path):
                raise InputError(f"{path}: an Excel workbook with a {path.suffix or 'missing'} suffix; rename it to .xlsx")
            raise InputError(f"{path}: a zip archive, not a CSV or XLSX export")
        return _from_sheet(path, sha, read_sheet(path, None))
    if b"\0" in first[:4096]:
        raise InputError(f"{path}: binary data (NUL bytes), not a text export; UTF-16 is not supported, save as UTF-8")
    enc = (encoding or found).lower().replace("windows-1252", "cp1252").replace("utf8", "utf-8")
    if enc not in ("utf-8", "cp1252", "latin-1"):
        raise InputError(f"{path}: encoding {enc!r} is not supported (use UTF-8 or Windows-1252)")
    text = first[3 if bom else 0 :].decode(enc if enc != "latin-1" else "latin-1", errors="replace")
    if cr_ends:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        delim, header = _first_record(text, delimiter)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    if (problem := header_problem(header) or _broken_header(text, delim, header)) is not None:
        raise InputError(f"{path}: {problem}")
    return Source(path, sha, "csv", enc, bom, c1, delim, name_empty(header), mixed_line_ends=mixed, cr_line_ends=cr_ends,
                  blank_lines=blank, lines=total, header_lines=1 + sum(h.count("\n") for h in header))


def _from_sheet(path: Path, sha: str, sheet: Sheet) -> Source:
    return Source(path, sha, "xlsx", header=sheet.header, sheet=sheet.name, sheets=sheet.names, book=sheet,
                  header_row=sheet.header_row, header_problem=sheet.problem, other_sheets=sheet.others,
                  sheet_hidden=sheet.name in sheet.hidden)


def needs_copy(src: Source) -> bool:
    """Whether DuckDB must read ``src`` from a copy in memory (``register_transcoded``)."""
    return src.kind == "csv" and (src.mixed_line_ends or src.cr_line_ends or (src.encoding == "cp1252" and src.c1_bytes))


def csv_scan_sql(src: Source) -> str:
    """A DuckDB ``read_csv`` call over ``src``: all text, malformed lines to ``reject_errors``."""
    cols = "{" + ", ".join(f"{sql_text.string(c)}: 'VARCHAR'" for c in src.header) + "}"
    enc = "utf-8" if src.encoding == "utf-8" else "latin-1"
    return (
        f"read_csv({sql_text.string(str(src.path))}, delim={sql_text.string(src.delimiter)}, quote='\"', escape='\"', header=true, "
        f"auto_detect=false, columns={cols}, encoding={sql_text.string(enc)}, ignore_errors=true, store_rejects=true, "
        f"null_padding=false, strict_mode=true, max_line_size={MAX_LINE})")


def register_transcoded(con, src: Source, name: str = "_isu_src") -> str:
    """A CSV that DuckDB cannot read from disk as it is, handed to DuckDB as UTF-8 through an
    in-memory file, never a copy on disk (the file holds person ids): cp1252 with bytes 0x80-0x9F
    (DuckDB's Latin-1 reader refuses those) decoded, mixed or CR line ends made LF (DuckDB's strict
    reader stops at the first line that differs; the lines stay the same lines). Costs the file's size in
    memory, a few times over while it is made; such files are rare."""
    data = src.path.read_bytes()
    if src.cr_line_ends:
        data = _as_lf(data)
    elif src.mixed_line_ends:
        data = data.replace(b"\r\n", b"\n")
    if src.encoding != "utf-8":
        data = data.decode(src.encoding, errors="replace").encode("utf-8")
    rel = con.read_csv(
        io.BytesIO(data), delimiter=src.delimiter, quotechar='"', escapechar='"', header=True, auto_detect=False,
        columns={c: "VARCHAR" for c in src.header}, ignore_errors=True, store_rejects=True, null_padding=False,
        strict_mode=True, max_line_size=MAX_LINE,
    )
    con.register(name, rel)
    return name


def release_transcoded(con, name: str = "_isu_src") -> None:
    """Forget the view of ``register_transcoded`` (and with it the in-memory file). The in-memory
    filesystem itself stays registered: DuckDB 2 reads every later in-memory file through it, and
    unregistering it made the next transcoded import of the process fail."""
    with contextlib.suppress(Exception):
        con.unregister(name)
