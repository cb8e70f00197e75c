"""Person ids in SQL: check, derive birth year and legal sex, replace by a keyed pseudonym, mask.

The checks run vectorised inside DuckDB so that a raw id never leaves the scan that reads it:
the SELECT that reads the export computes the canonical form, the error, the masked form, and the
next layer turns the canonical form into the pseudonym, birth year and sex; the raw column is
never materialised. ``explain()`` uses python-stdnum to say why one id failed; a property test
holds the SQL check and stdnum to the same verdict.

Canonical form hashed: 12 digits ``YYYYMMDDNNNC`` (a 10-digit id gets its century as Skatteverket
defines it: the most recent century not in the future, one earlier with ``+``), so the same person
gets the same pseudonym whichever form an export uses. Samordningsnummer (day + 60) are accepted.
"""

from __future__ import annotations

import hashlib
import re
import hmac
from datetime import date

from stdnum import luhn
from stdnum.exceptions import ValidationError
from stdnum.se import personnummer

from .keys import PoolKey

__all__ = ["parse_sql", "derive_sql", "hmac_params", "pseudonymise", "canonical", "explain", "mask", "mask_ids"]



def hmac_params(key: PoolKey) -> dict[str, bytes]:
    """Inner and outer HMAC pads as named SQL parameters (never put in SQL text)."""
    block = key.secret.ljust(64, b"\0")
    return {"isu_ipad": bytes(b ^ 0x36 for b in block), "isu_opad": bytes(b ^ 0x5C for b in block)}


def parse_sql(col: str, today: date | None = None) -> dict[str, str]:
    """Steps over the raw id column ``col``, each naming the one before (evaluate in order, e.g.
    as nested SELECTs): ``pid_twelve`` (canonical, or NULL) and ``pid_masked``.

    Ids written the usual way (``YYMMDD-NNNN``, ``YYYYMMDD[-]NNNN``, ten or twelve digits) take a
    fast path of one regular-expression test and a few substrings; only other spellings go through
    the full emulation of python-stdnum's ``compact()`` (string steps cost ~0.1 s per million rows each).
    """
    today = today or date.today()
    cy, yy = today.year // 100, today.year % 100

    def century(two: str, plus: str) -> str:  # the most recent century not in the future, one earlier with '+'
        return f"CAST({cy} - CASE WHEN CAST({two} AS INTEGER) > {yy} THEN 1 ELSE 0 END - CASE WHEN {plus} THEN 1 ELSE 0 END AS VARCHAR)"

    # fast path: digits only, separator (if any) before the last four
    fast_digits = f"CASE WHEN length({col}) IN (10, 12) THEN {col} ELSE {col}[:-6] || {col}[-4:] END"
    return {
        "_pid_fast": f"regexp_full_match({col}, '{_FAST}')",
        # python-stdnum's compact(): drop spaces and colons; 10/12 characters without a separator
        # get one before the last four; '-' and '+' inside the date part are dropped
        "_pid_c": f"CASE WHEN NOT _pid_fast THEN replace(replace(trim({col}), ' ', ''), ':', '') END",
        "_pid_d": "CASE WHEN length(_pid_c) IN (10, 12) AND substr(_pid_c, -5, 1) NOT IN ('-', '+') "
                  "THEN _pid_c[:-5] || '-' || _pid_c[-4:] ELSE _pid_c END",
        "_pid_e": "replace(replace(_pid_d[:-6], '-', ''), '+', '') || _pid_d[-5:]",
        "_pid_n": f"CASE WHEN _pid_fast THEN {fast_digits} || CASE WHEN {col}[-5:-5] = '+' THEN '+' ELSE '' END "
                  f"WHEN regexp_full_match(_pid_e, '{_SLOW}') THEN _pid_e[:-6] || _pid_e[-4:] || "
                  "CASE WHEN _pid_e[-5:-5] = '+' THEN '+' ELSE '' END END",
        # _pid_n: 10 or 12 digits, then '+' when the id was written with '+'
        "pid_twelve": f"CASE WHEN _pid_n[11:12] = '+' OR length(_pid_n) = 10 THEN {century('_pid_n[1:2]', chr(95) + 'pid_n[11:12] = ' + repr('+'))} "
                      "|| _pid_n[1:10] WHEN _pid_n IS NOT NULL THEN _pid_n[1:12] END",
        "pid_masked": f"translate({col}, '0123456789', '**********')",
    }


#: Usual spellings: YYMMDD[-+]NNNN, YYYYMMDD[-+]NNNN, or the digits alone.
_FAST = r"\d{6}[-+]?\d{4}|\d{8}[-+]?\d{4}"
#: After compact() and dropping '-'/'+' inside the date part: 6 or 8 digits, separator, 4 digits.
_SLOW = r"(\d{2})?\d{6}[-+]\d{4}"


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


_ID = re.compile(r"(?<!\d)(\d{6}|\d{8})[-+]?\d{4}(?!\d)")


def mask_ids(value: str | None) -> str | None:
    """Every digit run shaped like a personnummer in ``value`` masked (for any text shown to people)."""
    return None if value is None else _ID.sub(lambda m: mask(m.group(0)), value)


def mask(value: str | None) -> str | None:
    """Digits replaced by '*', separators kept: shows the shape of an id, never the id."""
    return None if value is None else "".join("*" if ch.isdigit() else ch for ch in value)
