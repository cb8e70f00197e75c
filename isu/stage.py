"""Staging inside the import transaction: the typed, checked rows of one export, a chunk at a time.

``open_scan`` reads the file's text on a second connection and streams it out as Arrow (``Scan``
sets aside the rows that stray quotes made of several lines, which ``malformed_lines`` reports);
``chunks`` numbers the rows and cuts the stream into chunks of ``CHUNK_ROWS`` rows, so the memory
an import needs is bounded by the chunk, not the file (a file of at most ``WHOLE_ROWS`` rows is one
chunk: no keys to keep for later chunks). ``Typing`` runs the text and typed layers
(``isu.validate``) over a chunk on all cores, and out come typed rows
with the pseudonym (the raw id and per-check columns stay inside that query). ``Stage`` adds the
checks that need more than one row: duplicate keys within the chunk and, for wide exports,
against the keys of earlier chunks (``_KEYS``); in long exports the rows of one record must
agree and a measurement may not repeat, so a long export is staged as one chunk (its records'
rows may lie anywhere in the file). ``isu.upsert.ChunkWriter`` writes the chunk.

Memory only: spilling is off for the whole import (``isu.importer.no_spill``), because the raw
text holds ids and the stage's reject lists hold raw values (masked later, in ``isu.rejects``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from isu.schemas import Profile

from .read import Source, lines_of
from .errors import InputError
from .trim import BLANK, trim_columns
from .validate import ROW, lit, q, text_layer, typed_layer

__all__ = ["CHUNK_ROWS", "RECORD_FIELDS", "WHOLE_ROWS", "Aside", "Malformed", "Stage", "Typing", "blank_rows", "chunks", "malformed_lines",
           "measurement_count_sql", "measurements_sql", "open_scan", "shown_fields"]

Malformed = tuple[int, str]  # (row, what is wrong with it: DuckDB's error kind, and the lines it spans)
Aside = tuple[int, int]  # (first line in the file, line breaks inside it) of a row DuckDB's reader set aside
#: Rows per chunk of a wide export (a 10-million-row import peaked at 1.1 GB with these).
CHUNK_ROWS = 500_000
#: Rows of the largest export staged as one chunk. Chunks cost bookkeeping (the keys of every
#: earlier chunk, checked against each later one: 0.2 s of a 1-million-row import); one chunk of
#: 1.2 million rows peaked at 1.04 GB, below what a 10-million-row import in chunks needs.
WHOLE_ROWS = 1_200_000
_BATCH = 100_000
RECORD_FIELDS = (
    "municipality", "record_key", "client", "sex", "birth_year", "need_area", "intervention_code", "category",
    "legal_basis", "provider", "started_on", "ended_on", "end_reason", "goal_attainment",
)
_KEYED = "municipality IS NOT NULL AND record_key IS NOT NULL"
#: Keys of earlier chunks (kept by ``isu.upsert.ChunkWriter``): accepted rows' in the workspace
#: (such keys are stored anyway, and the buffer manager may page them to the file: memory stays
#: bounded), rejected rows' in memory (a rejected key may hold a person id).
_KEYS = "(SELECT * FROM _isu_keys UNION ALL SELECT * FROM _isu_rkeys)"


def open_scan(cur: duckdb.DuckDBPyConnection, scan: str, src: Source | None, trim: set[str] | frozenset[str] = frozenset()) -> Scan:
    """Start reading the export's text on ``cur`` (a cursor of the workspace: the caller's
    connection stays free to type and write chunks). The reader owns ``cur`` until it is read to
    its end. A bare scan keeps the file's order (DuckDB's insertion order) and runs on all cores;
    ``chunks`` numbers its rows. (``row_number() OVER ()`` in SQL would read the file on one core.)
    ``src``: the CSV it reads (None for a workbook), whose lines ``Scan`` accounts for; ``trim``:
    the columns whose cells ``Scan`` trims (``isu.trim``: a workbook's cells come trimmed)."""
    return Scan(cur.sql(f"SELECT * FROM {scan}").to_arrow_reader(_BATCH), src, trim)


class Scan:
    """The rows of a scan, as Arrow batches, minus the rows in which a stray quote swallowed whole
    lines of a CSV (``merged``, see ``_swallowed``).
    Such a row is no row of the export, so it is never typed: ``malformed_lines`` reports it, and
    the lines it took. Also noted for that: the rows whose values span lines (``spans``), so that
    line numbers in the file can be told from row numbers. Then the cells of the columns ``trim``
    lose the whitespace around them (after the line breaks were counted)."""

    def __init__(self, reader: pa.RecordBatchReader, src: Source | None, trim: set[str] | frozenset[str] = frozenset()) -> None:
        self.reader, self.schema, self.src, self.trim = reader, reader.schema, src, trim
        self.rows = 0  # rows read, the merged ones with them
        self._spans: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in _typed_errors(self.reader):
            if self.src is not None and any(map(_may_break, batch.columns)):
                batch = self._note(batch)
            else:
                self.rows += batch.num_rows
            yield trim_columns(batch, self.trim) if self.trim else batch

    def _note(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow.compute as pc  # here: loading it costs every import 0.04 s, and few batches get here

        breaks = np.zeros(batch.num_rows, np.int64)
        merged = np.zeros(batch.num_rows, bool)
        whole = max(len(self.schema) - 1, 1)
        for col in batch.columns:
            if _may_break(col):
                n = pc.count_substring(col, "\n").fill_null(0).to_numpy(zero_copy_only=False)
                d = pc.count_substring(col, self.src.delimiter).fill_null(0).to_numpy(zero_copy_only=False)
                breaks += n
                merged |= _swallowed(col, n, d, whole, self.src.delimiter)
        at = np.flatnonzero(breaks)
        self._spans.append((self.rows + 1 + at, breaks[at], merged[at]))
        self.rows += batch.num_rows
        return batch.filter(pa.array(~merged)) if merged.any() else batch

    def spans(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of the scan from 1, line breaks in it, merged) of the rows whose values span lines."""
        return tuple(np.concatenate(a) for a in zip(*self._spans)) if self._spans else _NO_SPANS


_NO_SPANS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))


def _swallowed(col: pa.Array, breaks: np.ndarray, delims: np.ndarray, whole: int, delimiter: str) -> np.ndarray:
    """Which values of ``col`` (``breaks`` line breaks and ``delims`` delimiters in each) hold lines
    of the file that a stray quote took in. DuckDB reads such a value as part of one row only when
    the quote that closes it stands in the column where the stray one opened: the value then holds
    the rest of the first line, each line between whole and the start of the last, that is a whole
    line's delimiters (``whole``) for each line it took in. So: a multiple of ``whole``, or, when
    short rows among the lines taken in break that count, a line of the value with all but two of
    a line's delimiters or more. A comment typed over several lines, semicolons and all, holds
    neither as a rule, and stays a value (it may still, seldom, look like swallowed lines)."""
    out = (breaks > 0) & (delims >= whole) & (delims % whole == 0)
    for i in np.flatnonzero((breaks > 0) & (delims >= whole) & ~out):  # few: values over lines, with many delimiters
        out[i] = max(line.count(delimiter) for line in col[int(i)].as_py().split("\n")) >= max(whole - 2, 1)
    return out


def _typed_errors(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    """``reader``'s batches. An error DuckDB meets while the Arrow stream is read (a bad line deep in
    the file) reaches Python as a bare OSError: it gets its DuckDB type back, which the importer
    reports as a file it cannot read."""
    batches = iter(reader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except OSError as e:
            kind = _ERRORS.get(str(e).split(":", 1)[0])
            if kind is None:
                raise
            raise kind(str(e)) from None
        yield batch


_ERRORS = {"Invalid Input Error": duckdb.InvalidInputException, "IO Error": duckdb.IOException,
           "Conversion Error": duckdb.ConversionException, "Out of Memory Error": duckdb.OutOfMemoryException}


def _may_break(col: pa.Array) -> bool:
    """Whether a column of text may hold a line break (its data buffer has one: no false negatives)."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        import pyarrow.compute as pc

        return bool(pc.any(pc.match_substring(col, "\n")).as_py())
    data = col.buffers()[2]
    return data is not None and 10 in np.frombuffer(data, np.uint8)



class Typing:
    """The text and typed layers (``isu.validate``) over one chunk of numbered text: out come the
    typed rows with the pseudonym; the raw id and the per-check columns stay inside the query."""

    def __init__(self, con: duckdb.DuckDBPyConnection, profile: Profile, src: Source, *, municipality: str | None,
                 params: dict) -> None:
        if ROW in src.header:
            raise InputError(f"{src.path.name}: a column is named {ROW!r}, a name the importer keeps for itself; rename it")
        text = text_layer(profile, src.header, municipality=municipality)
        text.create_alias_tables(con)
        self.con, self.params = con, params or None
        self.sql = typed_layer(profile, text).sql(text.sql("_isu_raw"))
        self.empty = 0  # rows read with every cell empty
        #: columns the profile reads nothing from → rows with a value there (a merged header cell
        #: leaves the column beside it unnamed: its values would go unseen without a word)
        self.read = set(text.read)  # the source columns the profile reads
        self.unread = {c: 0 for c in src.header if c not in text.read}

    def __call__(self, raw: pa.Table) -> pa.Table:
        """The typed rows of ``raw``; rows with no text in any cell are left out (``empty`` counts them)."""
        _isu_raw = raw  # noqa: F841 - read by name in the SQL (see ``Stage``)
        typed = self.con.sql(self.sql, params=self.params).to_arrow_table()
        self.empty += raw.num_rows - typed.num_rows
        if self.unread:
            counts = self.con.sql("SELECT " + ", ".join(f"count(nullif(trim({q(c)}, {lit(BLANK)}), ''))" for c in self.unread)
                                  + " FROM _isu_raw").fetchall()[0]
            for c, n in zip(list(self.unread), counts):
                self.unread[c] += n
        return typed


def chunks(reader: pa.RecordBatchReader, rows: int | None, whole: int | None = None) -> Iterator[tuple[pa.Table, bool]]:
    """(chunk, is it the last) of at least ``rows`` rows each (None: one chunk), each row numbered
    (``ROW``, from 1, in the reader's order); a batch is read ahead so that the last chunk is known
    as such (no later chunk can then repeat its keys). A stream of at most ``whole`` rows is one
    chunk: up to that many rows are read before the first chunk is cut."""
    schema = pa.schema([pa.field(ROW, pa.int64()), *reader.schema])
    batches: list[pa.RecordBatch] = []
    n = done = 0
    limit = max(rows, whole or 0) if rows is not None else None  # rows held before a chunk is cut
    for batch in reader:
        while limit is not None and n >= limit:  # the batch in hand proves that these chunks are not the last
            cut = next(i for i, k in enumerate(itertools.accumulate(b.num_rows for b in batches)) if k >= rows) + 1
            chunk, batches = batches[:cut], batches[cut:]
            n -= sum(b.num_rows for b in chunk)
            limit = rows
            yield pa.Table.from_batches(chunk, schema=schema), False
        # from the buffer: pa.array() of an ndarray imports numpy.ma (~10 ms) to rule out a masked array
        number = pa.Array.from_buffers(pa.int64(), batch.num_rows, [None, pa.py_buffer(np.arange(done + 1, done + batch.num_rows + 1, dtype=np.int64))])
        batches.append(pa.RecordBatch.from_arrays([number, *batch.columns], schema=schema))
        n += batch.num_rows
        done += batch.num_rows
    yield pa.Table.from_batches(batches, schema=schema), True


def malformed_lines(cur: duckdb.DuckDBPyConnection, src: Source, scan: Scan | None = None) -> tuple[list[Malformed], list[Aside]]:
    """The rows DuckDB's CSV reader set aside, and those ``Scan`` did (after the scan has been read
    to its end); each says which lines of the file it spans when they are more than one. Also where
    the rows DuckDB set aside lie in the file (``blank_rows`` and ``isu.line_count`` need them). A quote
    that never closes (the last row of the file, spanning lines) fails the whole file instead: the
    rest of the file was read as one value."""
    if src.kind != "csv":
        return [], []  # XLSX has no malformed lines
    # only counts leave DuckDB: csv_line holds ids. It runs from the line end before the row
    # (blank lines too: DuckDB counts them in ``line``) and may end in the row's own line end.
    text = "trim(csv_line, chr(13) || chr(10))"
    try:
        rows = cur.execute(f"""SELECT line, CAST(min(error_type) AS VARCHAR),
                                      max(length({text}) - length(replace({text}, chr(10), ''))), max(strlen(csv_line)) >= {_CUT}
                               FROM reject_errors GROUP BY line ORDER BY line""").fetchall()
    except duckdb.CatalogException:
        rows = []
    cur.execute("DROP TABLE IF EXISTS reject_errors")
    cur.execute("DROP TABLE IF EXISTS reject_scans")
    spans, read = (scan.spans(), scan.rows) if scan is not None else (_NO_SPANS, 0)
    # an encoding error's csv_line may stop at the bad byte: its lines are counted in the file too
    return _explain(src, [(int(line), kind, None if cut or kind == "INVALID ENCODING" else int(n))
                          for line, kind, n, cut in rows], *spans, read)


def blank_rows(src: Source, scan: Scan | None, aside: list[Aside] = ()) -> list[int]:
    """Spreadsheet rows of the file's empty lines (``Source.blank_lines``): DuckDB skips them, so the
    rows after them are numbered as if they were rows (a spreadsheet shows them). A line is its row
    unless values before it span lines: then it moves up by their line breaks, and an empty line
    inside such a value is none, nor one inside a row DuckDB set aside (``aside``, from
    ``malformed_lines``; the scan's rows are counted; after a row DuckDB set aside that spans lines,
    a number may be one off)."""
    if not src.blank_lines:
        return []
    rows, breaks, _ = scan.spans() if scan is not None else _NO_SPANS
    out: list[int] = []
    taken, i = 0, 0  # taken: line breaks inside the values of the rows before the line
    for line in src.blank_lines:
        if any(first < line <= first + n for first, n in aside):
            continue  # an empty line of a row DuckDB set aside
        inside = False
        while i < len(rows):
            start = int(rows[i]) + 1 + taken + len(out)  # the first line of the i-th row that spans lines
            if start >= line:
                break
            if line <= start + int(breaks[i]):
                inside = True  # an empty line of a value: the value goes on
                break
            taken += int(breaks[i])
            i += 1
        if not inside:
            out.append(line - taken)
    return out


#: DuckDB keeps at most 10,000 bytes of a line in ``csv_line`` (duckdb#18980), cut at a character.
_CUT = 9990
#: DuckDB's error kinds that need more words than their name (``isu.rejects.collect`` lowercases them).
_KINDS = {
    "UNQUOTED VALUE": 'a quoted value goes on after its closing quote (")',
    "LINE SIZE OVER MAXIMUM": "longer than a megabyte (a quote that never closes, or a cell too large to be a value)",
    "INVALID ENCODING": "bytes that are not utf-8, though the rest of the file is utf-8",
}


def _explain(src: Source, bad: list[tuple[int, str, int | None]], scan_rows: np.ndarray, breaks: np.ndarray,
             merged: np.ndarray, read: int) -> tuple[list[Malformed], list[Aside]]:
    """``bad``: DuckDB's (row, error kind, line breaks in it or None if its text was cut); the rest:
    see ``Scan``. Rows count as a spreadsheet shows them (a value spanning lines is one row; the
    header is row 1); a row's first line in the file is its row number plus the line breaks inside
    the rows before it."""
    taken = np.array([row for row, _, _ in bad], np.int64)
    rows = _rows_of(scan_rows, taken)
    last = max([int(_rows_of(np.array([read]), taken)[0]), *taken.tolist()])  # the file's last row
    fine_rows, fine_before = rows[~merged], np.cumsum(breaks[~merged])  # values spanning lines, read as they should be
    records = bad + [(int(row), "merged", int(n)) for row, n in zip(rows[merged], breaks[merged])]
    out, aside, spans = [], 0, []  # aside: the line breaks inside the rows set aside so far; spans: (first line, breaks) of DuckDB's
    for row, kind, n in sorted(records, key=lambda r: r[0]):
        i = int(np.searchsorted(fine_rows, row))
        first = row + aside + (int(fine_before[i - 1]) if i else 0)
        closed = True
        if n is None:  # DuckDB cut its text: count its lines in the file
            n, closed = _breaks_from(src, first)
        aside += n
        if kind != "merged":
            spans.append((first, n))
        if not closed or (n and row == last and kind in ("UNQUOTED VALUE", "LINE SIZE OVER MAXIMUM")):
            raise InputError(f"{src.path.name}: line {first}: a quote (\") opens a value that never closes, so the rest of "
                             "the file would be read as one value; fix the quote and import again")
        what = [] if kind == "merged" else [_KINDS.get(kind, kind.lower())]
        if n:
            what.append(f"lines {first}-{first + n} read as one row: a quote opens at line {first} and closes at line {first + n}")
        out.append((row, "; ".join(what)))
    return out, spans


def _rows_of(scan_rows: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """Row numbers of the scan's rows (from 1), counting the rows DuckDB set aside (``taken``,
    ascending) between them: scan row k is row k + 1 + j, j the rows set aside up to it, that is
    those with ``taken[j] - j <= k + 1``."""
    return scan_rows + 1 + np.searchsorted(taken - np.arange(len(taken)), scan_rows + 1, side="right")


def _breaks_from(src: Source, line: int) -> tuple[int, bool]:
    """Line breaks inside the row that starts on ``line`` of the file: the lines until its quotes
    pair up, and whether they do before the file ends. For rows whose text DuckDB did not keep whole."""
    quotes = breaks = 0
    with lines_of(src) as f:
        for text in itertools.islice(f, line - 1, None):
            quotes += text.count(b'"')
            if quotes % 2 == 0:
                return breaks, True
            breaks += 1
    return max(breaks - 1, 0), False


def _flags(profile: Profile, cross: bool, shown: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """Checks over several rows: (SQL of the flagged ``_row``s of ``_isu_chunk``, column, type, value).
    ``shown``: the record fields the file gives → the column a person sees (see ``Stage``)."""
    key_col = profile.columns.get("record_key", "record_key")
    if profile.shape == "wide":
        dup = f"""SELECT c._row FROM _isu_chunk c SEMI JOIN (SELECT municipality, record_key FROM _isu_chunk WHERE {_KEYED}
                  GROUP BY ALL HAVING count(*) > 1) d USING (municipality, record_key)"""
        if cross:  # an inner join, so that the chunk (not all earlier keys) is the hashed side
            dup += f" UNION SELECT c._row FROM {_KEYS} k JOIN _isu_chunk c USING (municipality, record_key)"
        return [(dup, key_col, "duplicate_key", "record_key"), *_same_slot(profile)]
    # a record's rows that disagree: each row of it, once per field they disagree on (the rows of
    # such records are few, so the per-field counts run over them alone: ``_isu_conflicts``)
    compared = {f: column for f, column in shown.items() if f not in ("municipality", "record_key")}
    differs = {f: f"count(DISTINCT {{'v': {q(f)}}}) > 1" for f in compared}
    conflicting = [(f"""SELECT _row FROM _isu_conflicts SEMI JOIN (SELECT municipality, record_key FROM _isu_conflicts GROUP BY ALL
                        HAVING {differs[f]}) USING (municipality, record_key)""",
                    column, "conflicting_record", "NULL" if f == "client" and column != profile.columns.get("client") else q(f))
                   for f, column in compared.items()]
    differ = " OR ".join(differs.values()) or "false"
    conflicting.append((f"""SELECT _row FROM _isu_conflicts SEMI JOIN (SELECT municipality, record_key FROM _isu_conflicts GROUP BY ALL
                            HAVING NOT ({differ})) USING (municipality, record_key)""", key_col, "conflicting_record", "NULL"))  # in a field not shown
    repeated = "SELECT _row FROM _isu_repeated"  # kept by ``Stage``: its window runs once, for two checks
    # a record is stored whole or not at all: a row rejected on its own (or for a repeated
    # measurement) rejects the record's other rows too; written without it, the record would lose
    # that measurement (or field), and a re-export would delete the stored one
    incomplete = f"""SELECT c._row FROM _isu_chunk c SEMI JOIN (SELECT municipality, record_key FROM _isu_chunk WHERE {_KEYED}
                     AND (NOT _ok OR _row IN ({repeated}))) USING (municipality, record_key) WHERE c._ok AND c._row NOT IN ({repeated})"""
    return [*conflicting, (repeated, profile.long.get("timepoint", "timepoint"), "duplicate_measurement", "NULL"),
            (incomplete, key_col, "incomplete_record", "NULL")]


def shown_fields(profile: Profile, header: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Record fields an export gives → the column a person sees them in: the pseudonym is the person
    id's (the value is then not shown); sex and birth year come from the id when there is one, and
    the category from the intervention code unless given, so a disagreement shows in those."""
    header = set(header)
    out = {f: c for f, c in profile.columns.items() if f in RECORD_FIELDS and c in header}
    if profile.columns.get("person_id") in header:
        out.pop("sex", None)
        out.pop("birth_year", None)
        out["client"] = profile.columns["person_id"]
    return out


def _same_slot(profile: Profile) -> list[tuple[str, str, str, str]]:
    """Two measurement groups of one wide row giving the same instrument at the same time point
    (a measurement stored twice)."""
    out = []
    for tp in dict.fromkeys(t for g in profile.groups for t in g.timepoints):
        slots = [g for g, group in enumerate(profile.groups) if tp in group.timepoints]
        pairs = [f"(m{a}_{tp}_present AND m{b}_{tp}_present AND m{a}_{tp}_instrument = m{b}_{tp}_instrument)"
                 for i, a in enumerate(slots) for b in slots[i + 1:]]
        if pairs:
            column = profile.groups[slots[-1]].timepoints[tp].get("value", tp)
            out.append((f"SELECT _row FROM _isu_chunk WHERE {' OR '.join(pairs)}", column, "duplicate_measurement", "NULL"))
    return out


class Stage:
    """One chunk staged: its typed rows with the multi-row checks folded into ``_ok`` and
    ``_rejects`` and (wide) the record's content hash, readable as ``_isu_stage`` in ``run``.

    Everything a chunk needs stays Python-held Arrow, read by DuckDB by name (its replacement scan
    of the caller's local variables): inside a transaction DuckDB keeps every registered object
    and every table dropped or emptied until the commit, so tables per chunk would make the
    memory of an import grow with the file. ``cross``: check keys against earlier chunks' too;
    ``shown``: ``shown_fields``, the columns a long record's disagreeing rows are reported in.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, profile: Profile, chunk: pa.Table, *, cross: bool,
                 shown: dict[str, str]) -> None:
        self.con, self.tables = con, {"chunk": chunk}
        if profile.shape == "long":  # rows that failed a check of their own are not compared: that error says it
            fields = ", ".join(f for f in RECORD_FIELDS if f != "record_key")
            self.tables["conflicts"] = self.arrow(f"""SELECT _row, {', '.join(RECORD_FIELDS)} FROM _isu_chunk SEMI JOIN
                (SELECT municipality, record_key FROM _isu_chunk WHERE _ok AND {_KEYED} GROUP BY ALL HAVING count(DISTINCT ({fields})) > 1)
                USING (municipality, record_key) WHERE _ok""")
            self.tables["repeated"] = self.arrow(_REPEATED)
        parts = " UNION ALL ".join(
            f"SELECT _row, {{'column': {lit(col)}, 'type': '{type_}', 'value': CAST({value} AS VARCHAR)}} AS e "
            f"FROM _isu_chunk WHERE _row IN ({rows})" for rows, col, type_, value in _flags(profile, cross, shown))
        self.tables["flags"] = self.arrow(f"SELECT _row, list(e) AS errs FROM ({parts}) GROUP BY _row")
        row_hash = f", {_row_hash(profile)} AS row_hash" if profile.shape == "wide" else ""
        self.sql = f"""(SELECT c.* REPLACE (c._ok AND f._row IS NULL AS _ok,
                            CASE WHEN f._row IS NULL THEN c._rejects ELSE list_concat(coalesce(c._rejects, []), f.errs) END AS _rejects)
                               {row_hash}
                        FROM _isu_chunk c LEFT JOIN _isu_flags f USING (_row)) AS _isu_stage"""

    def _bind(self, sql: str) -> str:
        return _STAGE_REF.sub(lambda _: self.sql, sql)

    def run(self, sql: str, params=None) -> list[tuple]:
        """Run ``sql`` (which may name ``_isu_stage`` and the tables kept by ``keep``); its rows."""
        return self._query(sql, params)

    def arrow(self, sql: str) -> pa.Table:
        """``sql``'s result, held in Python (for ``keep``)."""
        return self._query(sql, arrow=True)

    def _query(self, sql: str, params=None, *, arrow: bool = False):
        """DuckDB reads the tables by name from this frame's variables (its replacement scan)."""
        _isu_chunk, _isu_flags, _isu_old, _isu_acc, _isu_late, _isu_conflicts, _isu_repeated = (  # noqa: F841 - read by name in the SQL
            self.tables.get(k) for k in ("chunk", "flags", "old", "acc", "late", "conflicts", "repeated"))
        sql = self._bind(sql)
        return self.con.sql(sql).to_arrow_table() if arrow else self.con.execute(sql, params).fetchall()

    def keep(self, name: str, sql: str) -> int:
        """Hold ``sql``'s result as ``_isu_<name>`` for later statements; its row count."""
        self.tables[name] = self.arrow(sql)
        return self.tables[name].num_rows


#: A long record's rows giving one instrument at one time point more than once (a measurement stored twice).
_REPEATED = f"""SELECT _row FROM (SELECT _row, count(*) OVER (PARTITION BY municipality, record_key, timepoint, instrument) AS c
                FROM _isu_chunk WHERE {_KEYED} AND timepoint IS NOT NULL AND instrument IS NOT NULL) WHERE c > 1"""
_STAGE_REF = re.compile(r"\b_isu_stage\b(?!\.)")


def _present(profile: Profile) -> list[tuple[str, str]]:
    """(column prefix, time point) of each wide measurement slot."""
    return [(f"m{g}_{tp}_", tp) for g, group in enumerate(profile.groups) for tp in group.timepoints]


def _row_hash(profile: Profile) -> str:
    """64-bit content hash of a wide row: its record fields xor its measurements' hashes (order-free,
    the same value as the long shape's hash over the record's rows)."""
    parts = [f"hash({', '.join(q(c) for c in RECORD_FIELDS)})"]
    for p, tp in _present(profile):
        cols = ", ".join(q(p + c) for c in ("instrument", "measured_on", "value"))
        parts.append(f"CASE WHEN {q(p + 'present')} THEN hash('{tp}', {cols}) ELSE 0::UBIGINT END")
    acc = parts[0]
    for x in parts[1:]:
        acc = f"xor({acc}, {x})"
    return acc


def measurements_sql(profile: Profile, rows: str) -> str:
    """The accepted measurements of the staged rows that ``rows`` (a condition on ``_isu_stage``) selects."""
    if profile.shape == "long":
        return f"SELECT municipality, record_key, timepoint, instrument, measured_on, value FROM _isu_stage WHERE _ok AND {rows}"
    parts = [f"SELECT municipality, record_key, '{tp}' AS timepoint, {q(p + 'instrument')} AS instrument, "
             f"{q(p + 'measured_on')} AS measured_on, {q(p + 'value')} AS value FROM _isu_stage WHERE _ok AND {q(p + 'present')} AND {rows}"
             for p, tp in _present(profile)]
    return " UNION ALL ".join(parts) or "SELECT NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::DATE, NULL::DOUBLE WHERE false"


def measurement_count_sql(profile: Profile) -> str:
    """Measurements one accepted staged row carries."""
    if profile.shape == "long":
        return "1"
    return " + ".join(f"CAST({q(p + 'present')} AS INTEGER)" for p, _ in _present(profile)) or "0"
