"""Chunked staging: an export imported in many small chunks leaves exactly what one chunk leaves.

A key that repeats in a later chunk rejects both rows, and the first row's write (new, updated or
unchanged record) is undone; counts, rejects and the store agree with the one-chunk import. The
store keeps (municipality, record_key) and measurement keys unique without an index: checked
after every import here.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

import isu.stage
import isu.upsert
from isu.importer import import_file
from isu.keys import PoolKey

from conftest import long_header, long_rows, make_workspace, store_state, wide_row, write_csv

KEY = PoolKey(bytes(range(32)))
FIELDS = ("rows_read", "rows_accepted", "rows_rejected", "records_inserted", "records_updated", "records_unchanged",
          "measurements", "errors_by_type", "municipalities")


def assert_unique(con: duckdb.DuckDBPyConnection) -> None:
    """No record key and no measurement key is stored twice."""
    for table, keys in (("records", "municipality, record_key"),
                        ("measurements", "municipality, record_key, timepoint, instrument")):
        n, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({keys})) FROM {table}").fetchall()[0]
        assert n == distinct, f"{table}: {n - distinct} duplicate keys"


def small_chunks(monkeypatch, rows: int) -> None:
    """Chunks (and scan batches) of ``rows`` rows, however small the export."""
    monkeypatch.setattr(isu.stage, "CHUNK_ROWS", rows)
    monkeypatch.setattr(isu.stage, "WHOLE_ROWS", rows)
    monkeypatch.setattr(isu.stage, "_BATCH", rows)


def _cut(sizes: list[int], rows: int | None, whole: int | None = None) -> list[tuple[list[int], bool]]:
    """The row numbers and last flag of each chunk that ``chunks`` cuts from batches of ``sizes`` rows."""
    schema = pa.schema([pa.field("x", pa.string())])
    batches = [pa.record_batch([pa.array(["v"] * k)], schema=schema) for k in sizes]
    reader = pa.RecordBatchReader.from_batches(schema, batches)
    return [(t.column(isu.stage.ROW).to_pylist(), last) for t, last in isu.stage.chunks(reader, rows, whole)]


def test_a_stream_up_to_whole_rows_is_one_chunk():
    assert _cut([2, 2, 2], rows=2, whole=6) == [([1, 2, 3, 4, 5, 6], True)]
    assert _cut([2, 2, 2], rows=None, whole=2) == [([1, 2, 3, 4, 5, 6], True)]


def test_a_longer_stream_is_cut_into_chunks_of_rows_numbered_on():
    # 7 rows held (whole 6) when the fourth batch comes: they are cut into chunks of at least 2 rows
    got = _cut([2, 2, 3, 1, 2, 2], rows=2, whole=6)
    assert got == [([1, 2], False), ([3, 4], False), ([5, 6, 7], False), ([8, 9, 10], False), ([11, 12], True)]
    assert _cut([2, 2, 2], rows=3) == [([1, 2, 3, 4], False), ([5, 6], True)]  # no whole: chunks as before
    assert _cut([], rows=2, whole=4) == [([], True)]


def _rows() -> tuple[list[dict], list[dict]]:
    """(already stored, new export): the export updates, repeats and leaves alone stored records."""
    stored = [wide_row(i) for i in range(1, 9)]
    export = [
        wide_row(1, need_area="Skola"),             # updated ...
        wide_row(20),                               # new ...
        wide_row(2),                                # unchanged ...
        wide_row(30, need_area="BAD"),              # rejected ...
        wide_row(3, need_area="Skola"),             # updated, not repeated
        wide_row(21),                               # new, not repeated
        wide_row(4),                                # unchanged, not repeated
        wide_row(1, need_area="Alkohol"),           # ... repeated: both rejected, record 1 as stored before
        wide_row(20),                               # ... repeated: both rejected, record 20 not stored
        wide_row(2, need_area="Skola"),             # ... repeated: both rejected, record 2 as stored before
        wide_row(30),                               # ... repeated: rejected twice over
        wide_row(22), wide_row(22),                 # repeated within a chunk (or across, by chunk size)
        wide_row(1),                                # a third time
        wide_row(5, T0_value="9"),                  # rejected for its value
        wide_row(23, record_key="K23"),
    ]
    return stored, export


def _import(tmp_path, name: str, chunk_rows: int, monkeypatch) -> tuple[dict, dict, list[str]]:
    ws = make_workspace(tmp_path / name)
    ws.key = KEY  # the same pseudonyms in both workspaces
    stored, export = _rows()
    ws.import_(write_csv(ws.dir / "stored.csv", stored))
    small_chunks(monkeypatch, chunk_rows)
    res = ws.import_(write_csv(ws.dir / "export.csv", export))
    con = ws.connect()
    try:
        assert_unique(con)
        state = store_state(con)
        rejects = sorted(con.execute("SELECT row_number, column_name, value_masked, error_type FROM rejects "
                                     "WHERE import_id = ?", [res.import_id]).fetchall())
    finally:
        con.close()
    state.pop("imports")  # import times differ; the counts are compared below
    return {f: getattr(res, f) for f in FIELDS}, state, rejects


@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 5])
def test_chunks_leave_what_one_chunk_leaves(tmp_path, monkeypatch, chunk_rows):
    whole = _import(tmp_path, "whole", 1_000_000, monkeypatch)
    chunked = _import(tmp_path, f"chunks{chunk_rows}", chunk_rows, monkeypatch)
    assert chunked == whole
    counts = whole[0]
    assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_rejected"] == 16
    assert (counts["records_inserted"], counts["records_updated"], counts["records_unchanged"]) == (2, 1, 1)


def test_dry_run_in_chunks_counts_as_the_import(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    stored, export = _rows()
    ws.import_(write_csv(ws.dir / "stored.csv", stored))
    path = write_csv(ws.dir / "export.csv", export)
    small_chunks(monkeypatch, 2)
    before = store_state(ws.connect())
    dry = ws.import_(path, dry_run=True)
    assert store_state(ws.connect()) == before
    real = ws.import_(path)
    counts = lambda r: (r.rows_accepted, r.rows_rejected, r.errors_by_type, r.records_inserted, r.records_updated,  # noqa: E731
                        r.records_unchanged, r.measurements, r.municipalities)
    assert counts(dry) == counts(real) and real.records_updated and real.records_unchanged and real.records_inserted
    again = write_csv(ws.dir / "again.csv", export[:-1])  # the same rows but one: all unchanged, as a dry run says first
    assert counts(ws.import_(again, dry_run=True)) == counts(ws.import_(again))


def test_reimports_keep_keys_unique(ws):
    rows = [wide_row(i) for i in range(1, 6)]
    ws.import_(write_csv(ws.dir / "a.csv", rows))
    ws.import_(write_csv(ws.dir / "b.csv", [wide_row(i, need_area="Skola", T2_value="2", T2_date="2024-09-01") for i in range(3, 8)]))
    ws.import_(write_csv(ws.dir / "c.csv", [wide_row(i, T1_value="") for i in range(1, 4)]))
    ws.import_(write_csv(ws.dir / "d.csv", long_rows(1) + long_rows(1, measurements=(("Uppföljning", "1"),)) + long_rows(2),
                         long_header()))
    con = ws.connect()
    try:
        assert_unique(con)
        assert con.execute("SELECT count(*) FROM records").fetchall()[0][0] == 7 + 2
    finally:
        con.close()


def test_a_chunked_import_that_fails_changes_nothing(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path)
    stored, export = _rows()
    ws.import_(write_csv(ws.dir / "stored.csv", stored))
    before = store_state(ws.connect())
    small_chunks(monkeypatch, 2)
    calls = []
    real = isu.upsert.ChunkWriter.chunk

    def fail_late(self, stage, **kw):
        calls.append(1)
        if len(calls) == 5:
            raise OSError("disk full (simulated)")
        return real(self, stage, **kw)

    monkeypatch.setattr(isu.upsert.ChunkWriter, "chunk", fail_late)
    con = ws.connect()
    try:
        with pytest.raises(OSError, match="simulated"):
            import_file(con, write_csv(ws.dir / "export.csv", export), key=ws.key)
        assert store_state(con) == before
        assert not con.execute("SELECT * FROM duckdb_tables() WHERE table_name LIKE '_isu%'").fetchall()
    finally:
        con.close()


def test_row_numbers_follow_the_file_across_a_parallel_scan(ws):
    """The scan is read on all cores and numbered as it arrives: every reject names the row the
    generator spoilt (every 500th, counted from the header), in a file of many scan buffers."""
    from isu.sample_data import write_benchmark_csv

    every = 500
    bf = write_benchmark_csv(ws.dir / "big.csv", 300_000, encoding="utf-8", bad_fraction=1 / every)
    res = ws.import_(bf.path)
    assert (res.rows_read, res.rows_accepted, res.errors_by_type) == (bf.rows, bf.accepted_rows, bf.rejected)
    con = ws.connect()
    try:
        rows = con.execute("SELECT DISTINCT row_number, error_type FROM rejects WHERE import_id = ?", [res.import_id]).fetchall()
    finally:
        con.close()
    spoilt = {g + 2 for g in range(every // 2, bf.rows, every)}  # rows are the file's lines: the header is line 1
    for row, kind in rows:
        assert row in spoilt or (kind == "duplicate_key" and row + 1 in spoilt), (row, kind)
    assert len({r for r, _ in rows} & spoilt) == len(spoilt)
