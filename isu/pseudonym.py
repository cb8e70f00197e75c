"""Person ids in SQL: check, derive birth year and legal sex, replace by a keyed pseudonym, mask.

The checks run vectorised inside DuckDB so that a raw id never leaves the scan that reads it:
the SELECT that reads the export computes the canonical form, the error, the masked form, and the
next layer turns the canonical form into the pseudonym, birth year and sex; the raw column is
never materialised. ``explain()`` uses python-stdnum to say why one id failed; a property test
holds the SQL check and stdnum to the same verdict.

Canonical form hashed: 12 digits ``YYYYMMDDNNNC`` (a 10-digit id gets its century as Skatteverket
defines it: the most recent century not in the future, one earlier with ``+``), so the same person
gets the same pseudonym whichever form an export uses. Samordningsnummer (day + 60) are accepted.

Outside the id column, ``mask_ids`` masks, and SQL flags through ``ID_PATTERN``, every run of digits
that may be an id: each spelling python-stdnum accepts (its Unicode look-alikes included), typos too.
"""

from __future__ import annotations

import functools
import hashlib
import re
import hmac
from datetime import date

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.se import personnummer
from stdnum.util import _char_map  # the look-alike table clean() applies before compact(): see _LOOKALIKE

from . import sql_text
from .keys import PoolKey

__all__ = ["ID_PATTERN", "parse_sql", "derive_sql", "hmac_params", "pseudonymise", "canonical", "explain", "mask", "mask_ids", "mask_sql"]

#: python-stdnum's clean() reads Unicode look-alikes as ASCII before compact() (en and em dash,
#: minus sign, no-break and thin spaces, fullwidth colon and digits…): ``870127–4832`` is a valid
#: id to it. The SQL check, the SQL mask and the masker are all built from this one table.
_LOOKALIKE = {k: v for k, v in _char_map.items() if k != v and v in "0123456789-+ :"}


def _like(ascii_chars: str) -> str:
    """``ascii_chars`` and every look-alike the parser reads as one of them."""
    return ascii_chars + "".join(k for k, v in _LOOKALIKE.items() if v in ascii_chars)


_DIGITS = _like("0123456789")
#: Invisible characters copy-paste leaves between digits (tab, soft hyphen, zero-width space and
#: joiners, word joiner, BOM): no id to the parser, but a person still reads the id through them.
_INVISIBLE = "\t\u00ad\u200b\u200c\u200d\u2060\ufeff"
_SPACES = _like(" :") + _INVISIBLE  # stdnum drops spaces and colons anywhere
_DASHES = _like("-+")  # and '-' or '+' in the date part, keeping one before the serial


def _class(chars: str, *, negate: bool = False) -> str:
    """A character class that means the same to Python's ``re`` and to RE2 ('-' first is literal)."""
    chars = "".join(dict.fromkeys(chars))
    return "[" + ("^" if negate else "") + ("-" if "-" in chars else "") + chars.replace("-", "") + "]"


def _digit(values: str = "0123456789") -> str:
    return _class(_like(values))


_SPACE, _DASH, _SEP = _class(_SPACES), _class(_DASHES), _class(_DASHES + _SPACES)
_NOT_IN_RUN = _class(_DIGITS + _DASHES + _SPACES, negate=True)


def _spelt(sep: str, *, century: bool = True, dash: bool = True) -> str:
    """[CC]YYMMDD, ``sep`` between its digits (the month 0x or 1x, the day 0x–3x or 6x–9x, as a
    samordningsnummer has it), then a '-' or '+' if ``dash`` (spaces and colons around it), then NNNC."""
    date = [_digit()] * 2 + [_digit("01"), _digit(), _digit("01236789"), _digit()]
    cc = f"(?:{_digit()}{sep}*{_digit()}{sep}*)?" if century else ""
    before = f"{sep}*{_DASH}{_SPACE}*" if dash else f"{sep}*"
    return cc + f"{sep}*".join(date) + before + f"{_SPACE}*".join([_digit()] * 4)


#: The one definition of "may carry a person id", for the masker (``mask_ids``) and for SQL
#: (``isu.validate.ID_PATTERN_SQL``; RE2 reads it as Python's ``re`` does): the shape of every
#: spelling python-stdnum accepts, its check digit and exact date unchecked so that typos match too.
#: Three ways: no dash (``8701274832``, ``870127 4832``, spaces and colons anywhere); dashes or
#: '+' anywhere in the date part and one before the serial (``870127-4832``, ``1987-01-27–4832``);
#: and, as stdnum reads a 10-digit id with two dashes in its date part and none before the serial
#: (``87-01-27 4832``), that spelling when it is a whole run of digits and separators.
#: Not matched: a date (8 digits), a date and time (``2024-03-01 12:30``), a key such as
#: ``2303-2023-0001:1`` (no YYMMDD where an id has it). Matched, on the safe side: ``20240301 12:30``,
#: a date range ``2024-03-01 - 2024-06-01`` (an id with dashes), phone numbers like ``0701234567``.
ID_PATTERN = (f"(?:{_spelt(_SPACE, dash=False)}|{_spelt(_SEP)}"
              f"|(?:^|{_NOT_IN_RUN}){_SEP}*{_spelt(_SEP, century=False, dash=False)}{_SEP}*(?:$|{_NOT_IN_RUN}))")
#: A run of ten digits or more and separators: the masker masks it whole when it holds ``ID_PATTERN``
#: (Python only: possessive, as separators and digits never overlap, twice as fast where it fails).
_RUN_PATTERN = f"{_digit()}(?:{_SEP}*+{_digit()}){{9,}}+"


def _ascii_or(x: str, ascii_sql: str, unicode_sql: str) -> str:
    """``ascii_sql`` where ``x`` is plain ASCII (as many bytes as characters), else ``unicode_sql``:
    DuckDB's translate() over the ~100 look-alikes costs ~3 µs a value, ten times the ASCII steps."""
    return f"CASE WHEN strlen({x}) = length({x}) THEN {ascii_sql} ELSE {unicode_sql} END"


def hmac_params(key: PoolKey) -> dict[str, bytes]:
    """Inner and outer HMAC pads as named SQL parameters (never put in SQL text)."""
    block = key.secret.ljust(64, b"\0")
    return {"isu_ipad": bytes(b ^ 0x36 for b in block), "isu_opad": bytes(b ^ 0x5C for b in block)}


def parse_sql(col: str, today: date | None = None) -> dict[str, str]:
    """Steps over the raw id column ``col``, each naming the one before (evaluate in order, e.g.
    as nested SELECTs): ``pid_twelve`` (canonical, or NULL) and ``pid_masked``.

    Ids written the usual way (``YYMMDD-NNNN``, ``YYYYMMDD[-]NNNN``, ten or twelve digits) take a
    fast path of one regular-expression test and a few substrings; only other spellings go through
    the full emulation of python-stdnum's ``clean()`` and ``compact()`` (string steps cost ~0.1 s
    per million rows each; the look-alike translate, for non-ASCII values only, ~3 s).
    """
    today = today or date.today()
    cy, yy = today.year // 100, today.year % 100

    def century(two: str, plus: str) -> str:  # the most recent century not in the future, one earlier with '+'
        return f"CAST({cy} - CASE WHEN CAST({two} AS INTEGER) > {yy} THEN 1 ELSE 0 END - CASE WHEN {plus} THEN 1 ELSE 0 END AS VARCHAR)"

    # fast path: digits only, separator (if any) before the last four
    fast_digits = f"CASE WHEN length({col}) IN (10, 12) THEN {col} ELSE {col}[:-6] || {col}[-4:] END"
    # clean(): ASCII spaces and colons dropped; a value with other characters takes the translate
    clean = _ascii_or(col, f"replace(replace({col}, ' ', ''), ':', '')",
                      f"translate({col}, {sql_text.string(_TRANSLATE_FROM)}, {sql_text.string(_TRANSLATE_TO)})")
    return {
        "_pid_fast": f"regexp_full_match({col}, '{_FAST}')",
        # python-stdnum's clean() and compact(): look-alikes to ASCII, spaces and colons dropped;
        # 10/12 characters without a separator get one before the last four; '-' and '+' inside
        # the date part are dropped
        "_pid_c": f"CASE WHEN NOT _pid_fast THEN {clean} END",
        "_pid_d": "CASE WHEN length(_pid_c) IN (10, 12) AND substr(_pid_c, -5, 1) NOT IN ('-', '+') "
                  "THEN _pid_c[:-5] || '-' || _pid_c[-4:] ELSE _pid_c END",
        "_pid_e": "replace(replace(_pid_d[:-6], '-', ''), '+', '') || _pid_d[-5:]",
        "_pid_n": f"CASE WHEN _pid_fast THEN {fast_digits} || CASE WHEN {col}[-5:-5] = '+' THEN '+' ELSE '' END "
                  f"WHEN regexp_full_match(_pid_e, '{_SLOW}') THEN _pid_e[:-6] || _pid_e[-4:] || "
                  "CASE WHEN _pid_e[-5:-5] = '+' THEN '+' ELSE '' END END",
        # _pid_n: 10 or 12 digits, then '+' when the id was written with '+'
        "pid_twelve": f"CASE WHEN _pid_n[11:12] = '+' OR length(_pid_n) = 10 THEN {century('_pid_n[1:2]', chr(95) + 'pid_n[11:12] = ' + repr('+'))} "
                      "|| _pid_n[1:10] WHEN _pid_n IS NOT NULL THEN _pid_n[1:12] END",
        "pid_masked": mask_sql(col),
    }


#: Usual spellings: YYMMDD[-+]NNNN, YYYYMMDD[-+]NNNN, or the digits alone.
_FAST = r"\d{6}[-+]?\d{4}|\d{8}[-+]?\d{4}"
#: After compact() and dropping '-'/'+' inside the date part: 6 or 8 digits, separator, 4 digits.
_SLOW = r"(\d{2})?\d{6}[-+]\d{4}"
#: clean() with ' :' dropped, as one SQL translate: look-alike digits and dashes become ASCII;
#: spaces and colons, listed past the end of ``_TRANSLATE_TO``, are deleted.
_TRANSLATE_TO = "".join(v for v in _LOOKALIKE.values() if v not in " :")
_TRANSLATE_FROM = "".join(k for k, v in _LOOKALIKE.items() if v not in " :") + " :" + "".join(k for k, v in _LOOKALIKE.items() if v in " :")


def derive_sql(twelve: str) -> dict[str, str]:
    """Steps over the canonical column: ``pid_valid``, then pseudonym (needs ``hmac_params``), birth year, sex.

    Date and check digit by integer arithmetic on the 12 digits (several times faster than
    casting ten substrings or parsing a date string); the days of a month likewise, Gregorian.
    """
    n = "_pid_num"
    year, month, day = f"({n} // 100000000)", f"({n} // 1000000 % 100)", f"({n} // 10000 % 100 - CASE WHEN {n} // 10000 % 100 > 60 THEN 60 ELSE 0 END)"
    d = [f"({n} // {10 ** (9 - i)} % 10)" for i in range(10)]
    luhn_sum = " + ".join(f"({x} * 2 // 10 + {x} * 2 % 10)" if i % 2 == 0 else x for i, x in enumerate(d))
    leap = f"({year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    days = f"CASE WHEN {month} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END ELSE 30 + ({month} + {month} // 8) % 2 END"
    date_ok = f"CASE WHEN {year} >= 1 AND {month} BETWEEN 1 AND 12 THEN {day} BETWEEN 1 AND {days} ELSE false END"
    return {
        n: f"TRY_CAST({twelve} AS BIGINT)",
        "pid_valid": f"coalesce({n} IS NOT NULL AND {date_ok} AND ({luhn_sum}) % 10 = 0, false)",
        "pid_client": f"CASE WHEN pid_valid THEN sha256($isu_opad || unhex(sha256($isu_ipad || encode({twelve})))) END",
        "pid_birth_year": f"CASE WHEN pid_valid THEN CAST({year} AS SMALLINT) END",
        "pid_sex": f"CASE WHEN pid_valid THEN CASE WHEN {n} // 10 % 2 = 1 THEN 'M' ELSE 'F' END END",
    }


def canonical(pid: str, today: date | None = None) -> str | None:
    """Python twin of ``parse_sql``+validity: the 12-digit form of a valid id, else None."""
    if explain(pid) is not None:
        return None
    n = personnummer.compact(pid)
    digits = n.replace("-", "").replace("+", "")
    if len(digits) == 12:
        return digits
    today = today or date.today()
    century = today.year // 100 - (int(digits[:2]) > today.year % 100) - (n[-5] == "+")
    return f"{century:02d}{digits}"


def _moved_day(n: str) -> str:
    """A samordningsnummer with its day moved back by 60, so stdnum can check the date."""
    ymd, rest = n[:-5], n[-5:]
    day = int(ymd[-2:]) if ymd[-2:].isdigit() else 0
    return f"{ymd[:-2]}{day - 60:02d}{rest}" if day > 60 else n


def explain(pid: str) -> str | None:
    """Why ``pid`` is not a valid person id (None when it is), using python-stdnum's checks."""
    try:
        n = personnummer.compact(pid)
        if len(n) not in (11, 13) or n[-5] not in "-+" or not (n[:-5] + n[-4:]).isdigit():
            return "not a personnummer: expected YYMMDD-NNNC or YYYYMMDDNNNC"
        personnummer.get_birth_date(_moved_day(n))
        luhn.validate((n[:-5] + n[-4:])[-10:])
    except ValidationError as e:
        return {"InvalidChecksum": "check digit does not match", "InvalidComponent": "not a valid date of birth"}.get(
            type(e).__name__, str(e)
        )
    except ValueError:
        return "not a personnummer: expected YYMMDD-NNNC or YYYYMMDDNNNC"
    return None


def pseudonymise(twelve: str, key: PoolKey) -> str:
    """Python twin of the SQL pseudonym (HMAC-SHA256, lowercase hex)."""
    return hmac.new(key.secret, twelve.encode("ascii"), hashlib.sha256).hexdigest()


@functools.cache
def _compiled() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The masker's two patterns, compiled on first use: compiling them takes ~15 ms of every
    command's start-up, and most commands never mask free text."""
    return re.compile(_RUN_PATTERN), re.compile(ID_PATTERN)


def mask_ids(value: str | None) -> str | None:
    """Every run of digits and separators in ``value`` that may carry a person id (``ID_PATTERN``)
    masked whole, for any text shown to people or stored: whole, so that no digit of an id
    survives beside other digits (``19870127-4832 2``), and whatever the id's own boundaries."""
    if value is None:
        return None
    run, id_ = _compiled()
    return run.sub(lambda m: mask(m.group(0)) if id_.search(m.group(0)) else m.group(0), value)


def mask_sql(x: str) -> str:
    """SQL twin of ``mask`` over the expression ``x``: every digit the parser reads as one becomes '*'."""
    return _ascii_or(x, f"translate({x}, '0123456789', '**********')",
                     f"translate({x}, {sql_text.string(_DIGITS)}, {sql_text.string('*' * len(_DIGITS))})")


def mask(value: str | None) -> str | None:
    """Digits replaced by '*', separators kept: shows the shape of an id, never the id."""
    return None if value is None else "".join("*" if ch.isdigit() else ch for ch in value)
