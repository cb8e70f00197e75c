"""Whitespace around cells, taken off before the checks see them: spaces, tabs, line breaks and
Unicode spaces (a no-break space from a word processor, a line break after Alt+Enter in Excel).

Most columns of an export have no cell with whitespace at either end, so each column is first
looked at through its Arrow buffers (the first and the last byte of every value, a few
nanoseconds a value) and trimmed only when one may have it. Trimming every cell in the import's
SQL cost 0.3 s of a 1-million-row import on two cores, for spaces alone (DuckDB's ``trim`` takes
no other characters unless told, and then costs three times as much).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa

__all__ = ["BLANK", "padded", "trim_columns"]

#: ASCII whitespace, for SQL's ``trim(x, BLANK)`` over the few columns no field reads (a row or
#: a column with nothing else in it is empty).
BLANK = " \t\n\r\v\f"

#: What pyarrow's ``utf8_trim_whitespace`` takes: in ASCII, tab to carriage return, the
#: separators 1C-1F and space; beyond it U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028/9,
#: U+202F, U+205F and U+3000 (a test holds this to pyarrow).
_ASCII_WHITESPACE = [9, 10, 11, 12, 13, 0x1C, 0x1D, 0x1E, 0x1F, 32]
#: Bytes that may begin a value with whitespace: ASCII whitespace, and the lead bytes of Unicode
#: spaces in UTF-8 (U+0085 and U+00A0: C2; U+1680: E1; U+2000-U+200A, U+2028/9, U+202F, U+205F: E2; U+3000: E3).
_FIRST = np.zeros(256, bool)
_FIRST[[*_ASCII_WHITESPACE, 0xC2, 0xE1, 0xE2, 0xE3]] = True
#: Bytes that end a value with whitespace: ASCII whitespace (``_ASCII``), or a Unicode space's
#: last byte (``_LAST``) after one of the bytes before it in those spaces (``_BEFORE``): the A9 of
#: 'é' (C3 A9) or the A0 of 'à' is no alarm, the A9 of '©' (C2 A9) a false one, settled by a trim.
_ASCII = np.zeros(256, bool)
_ASCII[_ASCII_WHITESPACE] = True
_LAST = np.zeros(256, bool)
_LAST[[*range(0x80, 0x8B), 0x9F, 0xA0, 0xA8, 0xA9, 0xAF]] = True
_BEFORE = np.zeros(256, bool)
_BEFORE[[0xC2, 0x80, 0x81, 0x9A]] = True


def padded(col: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a value of the text column ``col`` may begin or end with whitespace (no false negatives)."""
    if isinstance(col, pa.ChunkedArray):
        return any(padded(c) for c in col.chunks)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        buffers = col.buffers()
        if buffers[2] is None or len(col) == 0:
            return False
        data = np.frombuffer(buffers[2], np.uint8)
        if len(data) == 0:
            return False
        width = np.int32 if pa.types.is_string(col.type) else np.int64
        offsets = np.frombuffer(buffers[1], width, len(col) + 1, col.offset * np.dtype(width).itemsize)
        # an empty value's "first byte" is the next value's and its "last" the one before's: only
        # false alarms, which the trim then settles
        if _FIRST[data.take(offsets[:-1], mode="clip")].any():
            return True
        ends = offsets[1:] - 1
        last = data.take(ends, mode="clip")
        if _ASCII[last].any():
            return True
        wide = _LAST[last]
        return bool(wide.any() and _BEFORE[data.take(ends[wide] - 1, mode="clip")].any())
    # another kind of text (a string view): trimmed to be safe; DuckDB and fastexcel hand out plain strings
    return not (pa.types.is_null(col.type) or pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type))


def trim_columns(batch: pa.RecordBatch | pa.Table, names: Iterable[str] | None = None) -> pa.RecordBatch | pa.Table:
    """``batch`` with the columns ``names`` (default: all) trimmed where ``padded`` says they may need it."""
    wanted = set(batch.column_names if names is None else names)
    todo = [i for i, name in enumerate(batch.column_names) if name in wanted and padded(batch.column(i))]
    if not todo:
        return batch
    import pyarrow.compute as pc  # here: loading it costs 0.04 s, and few exports need it

    columns = list(batch.columns)
    for i in todo:
        columns[i] = pc.utf8_trim_whitespace(columns[i])
    kind = pa.RecordBatch if isinstance(batch, pa.RecordBatch) else pa.Table
    return kind.from_arrays(columns, names=batch.column_names)
