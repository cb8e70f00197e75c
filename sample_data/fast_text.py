"""Text for millions of rows without a Python loop per row: the benchmark writer's formatting.

Most columns of an export take few distinct values (dates, codes, labels, instrument values), so
each is formatted once into a small vocabulary and rows pick from it by index (a polars gather,
far cheaper than building a string per row). Windows-1252 output is made from polars' UTF-8 by a
byte translation table instead of a codec pass. ``mix64`` derives stable per-client attributes
(birth date, serial, pseudonym) from a client number, so a client recurs with the same id.
"""

from __future__ import annotations

import codecs

import numpy as np
import polars as pl

from . import model

__all__ = ["mix64", "gather_text", "const", "where", "TextTables", "OutputCodec", "hex64"]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64: a well-spread 64-bit hash of each client number (vectorised, wraps mod 2**64)."""
    x = x.astype(np.uint64) + np.uint64((0x9E3779B97F4A7C15 * (salt + 1)) % 2**64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def gather_text(vocab: list[str] | pl.Series, idx: np.ndarray) -> pl.Series:
    """Row-wise look-up in a small vocabulary: formatting by gather, far cheaper than per-row strings."""
    return pl.Series(vocab, dtype=pl.String).gather(pl.Series(idx))


def _ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of numpy datetime64[D] values."""
    y, m = days.astype("datetime64[Y]"), days.astype("datetime64[M]")
    return (y.astype(np.int64) + 1970, (m - y.astype("datetime64[M]")).astype(np.int64) + 1,
            (days - m.astype("datetime64[D]")).astype(np.int64) + 1)


class TextTables:
    """Every small-domain text the file needs, formatted once: dates, birth dates, id tails, values."""

    DATE_FROM = -400  # days relative to FIRST_START covered by ``dates``
    BIRTH_FROM = np.datetime64("1950-01-01")

    def __init__(self):
        first = np.datetime64(model.FIRST_START, "D")
        days = first + np.arange(self.DATE_FROM, (model.EXPORT_DATE - model.FIRST_START).days + 400)
        self.dates = pl.Series(days).dt.to_string("%Y%m%d")
        births = self.BIRTH_FROM + np.arange((np.datetime64("2024-01-01") - self.BIRTH_FROM).astype(int))
        y, m, d = _ymd(births)
        # index 2*i: personnummer, 2*i+1: samordningsnummer (day + 60)
        self.year, self.month = np.repeat(y, 2), np.repeat(m, 2)
        self.day = np.repeat(d, 2) + np.tile([0, 60], len(births))
        long = pl.Series(self.year * 10_000 + self.month * 100 + self.day).cast(pl.String)
        self.birth_long, self.birth_short = long, long.str.slice(2)
        self.tails = pl.Series(np.arange(10_000) + 10_000).cast(pl.String).str.slice(1)
        whole = [str(v) for v in range(11)]
        self.values = pl.Series(whole + [f"{v // 1000},{v % 1000:03d}" for v in range(1001)])

    def date(self, offsets: np.ndarray) -> pl.Series:
        return gather_text(self.dates, offsets - self.DATE_FROM)


def hex64(client: np.ndarray) -> pl.Series:
    """A 64-hex-digit stand-in pseudonym per client number (for the pseudonymised variant)."""
    words = np.stack([mix64(client, 10 + i) for i in range(4)], axis=1).view(np.uint8).reshape(len(client), 32)
    out = np.empty((len(client), 64), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = _HEX[words >> 4], _HEX[words & 15]
    return pl.Series(out.view("S64").ravel()).cast(pl.String)


def const(value, n: int) -> pl.Series:
    return pl.repeat(value, n, dtype=pl.String, eager=True)


def where(series: pl.Series, keep: np.ndarray, other: pl.Series | None = None) -> pl.Series:
    """``series`` where ``keep``, else ``other`` (empty by default)."""
    return series.zip_with(pl.Series(keep), const(None, len(keep)) if other is None else other)


class OutputCodec:
    """Writes polars' UTF-8 output in the file's encoding without a per-character codec pass.

    For a single-byte encoding (Windows-1252), every non-ASCII character of the vocabularies is
    replaced by a control byte before formatting (``hide``) and swapped back by ``bytes.translate``
    after, which runs at memory speed. UTF-8 output needs neither."""

    _FREE = [b for b in range(1, 32) if b not in (9, 10, 13)]

    def __init__(self, encoding: str, vocab: list[str]):
        self.name = codecs.lookup(encoding).name
        self.utf8 = self.name.startswith("utf-8")
        chars = sorted({ch for text in vocab for ch in text if ord(ch) > 127})
        if not self.utf8 and (len(chars) > len(self._FREE) or any(len(ch.encode(self.name)) != 1 for ch in chars)):
            raise ValueError(f"{encoding}: only UTF-8 or a single-byte encoding of these labels is supported")
        self.hidden = {} if self.utf8 else {ch: chr(b) for ch, b in zip(chars, self._FREE)}
        table = bytearray(range(256))
        for ch, ph in self.hidden.items():
            table[ord(ph)] = ch.encode(self.name)[0]
        self.table = bytes(table)

    def hide(self, texts: list[str | None]) -> list[str | None]:
        return [t if t is None else "".join(self.hidden.get(ch, ch) for ch in t) for t in texts]

    def header(self, columns: list[str], separator: str) -> bytes:
        bom = codecs.BOM_UTF8 if self.name == "utf-8-sig" else b""
        return bom + (separator.join(columns) + "\r\n").encode(self.name.removesuffix("-sig"))

    def body(self, utf8: bytes) -> bytes:
        """The chunk in the output encoding (a codec pass only if something non-ASCII was not hidden)."""
        if self.utf8:
            return utf8
        return utf8.translate(self.table) if utf8.isascii() else utf8.decode("utf-8").translate(
            {ord(ph): ch for ch, ph in self.hidden.items()}).encode(self.name)
