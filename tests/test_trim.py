"""Whitespace around cells (``isu.trim``): found through the Arrow buffers, never missed."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from isu.trim import padded, trim_columns

#: Every character pyarrow's utf8_trim_whitespace takes (as ``isu.trim`` lists them)
_WHITESPACE = [chr(c) for c in (9, 10, 11, 12, 13, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                0x2028, 0x2029, 0x202F, 0x205F, 0x3000)]


def test_the_list_of_whitespace_is_pyarrows():
    """Were pyarrow to trim another character, ``padded`` could miss it."""
    chars = [chr(c) for c in range(0x3001) if not 0xD800 <= c < 0xE000]
    out = pc.utf8_trim_whitespace(pa.array(["a" + ch for ch in chars])).to_pylist()
    assert [ch for ch, o in zip(chars, out) if o == "a"] == _WHITESPACE


def test_columns_without_whitespace_at_either_end_are_left_as_they_are():
    batch = pa.record_batch({"a": ["x y", "", None, "Öppenvård"], "b": ["1", "2", "3", "é"]})
    assert not padded(batch.column(0)) and not padded(pa.array([], pa.string()))
    assert trim_columns(batch) is batch  # nothing copied


def test_whitespace_at_either_end_is_found_and_trimmed_in_the_named_columns_only():
    batch = pa.record_batch({"a": ["x", " y", "z"], "b": ["M\t", "F", None], "c": ["k\n", "k", "k"]})
    out = trim_columns(batch, {"a", "b"})
    assert out.column(0).to_pylist() == ["x", "y", "z"]
    assert out.column(1).to_pylist() == ["M", "F", None]
    assert out.column(2).to_pylist() == ["k\n", "k", "k"]


def test_a_slice_and_large_strings_are_read_at_their_own_offsets():
    col = pa.array(["  a", "b", "c", "d "])
    assert not padded(col.slice(1, 2)) and padded(col.slice(2, 2)) and padded(col.slice(0, 1))
    assert padded(pa.array(["a", "b\u00a0"], pa.large_string()))
    assert padded(pa.chunked_array([pa.array(["a"]), pa.array(["\tb"])]))


@settings(max_examples=300)
@given(st.lists(st.one_of(st.none(), st.text(st.sampled_from(["a", "ö", "é", "à", "©", "1", "-", *_WHITESPACE]), max_size=6)), max_size=8),
       st.integers(0, 3))
def test_never_a_value_with_whitespace_at_an_end_missed(values, start):
    col = pa.array(values, pa.string()).slice(min(start, len(values)))
    trimmed = pc.utf8_trim_whitespace(col)
    if not padded(col):
        assert trimmed.equals(col)
    out = trim_columns(pa.record_batch({"v": col})).column(0)
    assert out.equals(trimmed)
