"""Person ids: the vectorised SQL check agrees with python-stdnum, pseudonyms match their python twin.

The SQL is the one the importer runs (``parse_sql`` then ``derive_sql``), evaluated in DuckDB over
one id at a time; python-stdnum (through ``explain``) is the reference for validity.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.se import personnummer

from isu.keys import PoolKey
from isu.pseudonym import canonical, derive_sql, explain, hmac_params, mask, parse_sql, pseudonymise

from conftest import pnr

KEY = PoolKey(bytes(range(32)))
OTHER_KEY = PoolKey(bytes(range(1, 33)))


def _steps_sql() -> str:
    """The importer's steps (``parse_sql`` then ``derive_sql``, each may name the ones before) as nested SELECTs."""
    sql = "SELECT i, x FROM unnest(CAST($xs AS VARCHAR[])) WITH ORDINALITY AS u(x, i)"
    for name, expr in {**parse_sql("x"), **derive_sql("pid_twelve")}.items():
        sql = f"SELECT *, {expr} AS {name} FROM ({sql})"
    return f"SELECT pid_twelve, pid_masked, pid_valid, pid_client, pid_birth_year, pid_sex FROM ({sql}) ORDER BY i"


SQL = _steps_sql()
_con = duckdb.connect()


def sql_check_many(xs: list[str], key: PoolKey = KEY) -> list[dict]:
    """The importer's SQL over many ids in one query (one query per id would be slow)."""
    cur = _con.execute(SQL, {"xs": list(xs), **hmac_params(key)})
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def sql_check(x: str, key: PoolKey = KEY) -> dict:
    return sql_check_many([x], key)[0]


# --- strategies: digit strings shaped like ids, often with a correct check digit ---------------

@st.composite
def id_digits(draw) -> str:
    """10 or 12 digits: plausible dates (some impossible, some samordningsnummer), serial, check digit."""
    twelve = draw(st.booleans())
    year = draw(st.one_of(st.integers(1890, 2030), st.integers(0, 9999)))
    month = draw(st.one_of(st.integers(1, 12), st.integers(0, 99)))
    day = draw(st.one_of(st.integers(1, 31), st.integers(61, 91), st.integers(0, 99)))
    serial = draw(st.integers(0, 999))
    ymd = f"{year:04d}{month:02d}{day:02d}"[0 if twelve else 2:]
    nine = ymd[-6:] + f"{serial:03d}"
    check = luhn.calc_check_digit(nine) if draw(st.booleans()) else str(draw(st.integers(0, 9)))
    return ymd + f"{serial:03d}" + check


@st.composite
def written_ids(draw) -> str:
    """An id as an export might write it: random separators (-, +, space, colon, and look-alikes
    python-stdnum reads as them: en dash, minus sign, no-break space, fullwidth colon) at random places."""
    digits = draw(st.one_of(id_digits(), st.text("0123456789", min_size=9, max_size=13)))
    chars = list(digits)
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(chars)))
        chars.insert(pos, draw(st.sampled_from(["-", "+", " ", ":", "\u2013", "\u2212", "\u00a0", "\uff1a"])))
    return "".join(chars)


@st.composite
def standard_ids(draw) -> str:
    """An id in one of the standard written forms: separator only before the serial."""
    digits = draw(id_digits())
    sep = draw(st.sampled_from(["", "-", "+", " - ", " "]))
    return f"{digits[:-4]}{sep}{digits[-4:]}"


# No shrinking: the assertion names the one id the two disagree on, and shrinking lists of ids
# through DuckDB takes a minute.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


def _agree(xs: list[str]) -> None:
    for x, got in zip(xs, sql_check_many(xs)):
        _agree_one(x, got)


def _agree_one(x: str, got: dict) -> None:
    ref_valid = explain(x) is None
    assert got["pid_valid"] == ref_valid, f"{x!r}: SQL says valid={got['pid_valid']}, python-stdnum says {explain(x)!r}"
    if ref_valid:
        twelve = canonical(x)
        assert got["pid_twelve"] == twelve
        assert got["pid_client"] == pseudonymise(twelve, KEY)
        assert got["pid_birth_year"] == int(twelve[:4])
        assert got["pid_sex"] == personnummer.get_gender(x)


@settings(max_examples=60, deadline=None, phases=NO_SHRINK)
@example(["000001010008"])  # year 0000: no such date (found by this test)
@given(st.lists(standard_ids(), min_size=1, max_size=40))
def test_sql_check_agrees_with_stdnum_on_standard_forms(xs):
    _agree(xs)


@settings(max_examples=60, deadline=None, phases=NO_SHRINK)
@example(["1980-01-01-1231"])  # dashes inside the date (found by this test)
@given(st.lists(written_ids(), min_size=1, max_size=40))
def test_sql_check_agrees_with_stdnum_with_random_separators(xs):
    _agree(xs)


@settings(max_examples=100, deadline=None)
@given(st.dates(date(1900, 1, 1), date(2024, 12, 31)), st.integers(0, 999), st.booleans())
def test_every_written_form_of_a_person_gives_one_pseudonym(birth, serial, coordination):
    day = birth.day + (60 if coordination else 0)
    nine = f"{birth:%y%m}{day:02d}{serial:03d}"
    full = f"{birth.year}{nine[2:]}{luhn.calc_check_digit(nine)}"
    today = date.today()
    yy = birth.year % 100
    dash_year = (today.year // 100 - (yy > today.year % 100)) * 100 + yy  # what YYMMDD-NNNC means today
    short_sep = "-" if dash_year == birth.year else "+"  # '+': a hundred years or more
    forms = [full, f"{full[:8]}-{full[8:]}", f"{full[2:8]}{short_sep}{full[8:]}"]
    if short_sep == "-":
        forms.append(full[2:])
    results = sql_check_many(forms)
    assert all(r["pid_valid"] for r in results), forms
    assert {r["pid_client"] for r in results} == {pseudonymise(full, KEY)}
    assert {r["pid_birth_year"] for r in results} == {birth.year}
    assert {r["pid_sex"] for r in results} == {"M" if serial % 2 else "F"}


def test_pseudonym_is_keyed_hmac_hex():
    x = pnr(7)
    a, b = sql_check(x, KEY)["pid_client"], sql_check(x, OTHER_KEY)["pid_client"]
    assert a != b and len(a) == 64 and all(c in "0123456789abcdef" for c in a)
    assert x not in a and x[2:] not in a


@pytest.mark.parametrize(
    ("written", "year", "sex"),
    [
        ("19800101-1231", 1980, "M"),  # serial 123: odd → M
        ("800101-1231", 1980, "M"),
        ("19800101-1249", 1980, "F"),  # serial 124: even → F
        ("121212+1212", 1912, "M"),  # + : a hundred years or more
        ("19800161-1238", 1980, "M"),  # samordningsnummer (day + 60)
    ],
)
def test_birth_year_and_sex_derivation(written, year, sex):
    assert explain(written) is None, explain(written)
    got = sql_check(written)
    assert (got["pid_valid"], got["pid_birth_year"], got["pid_sex"]) == (True, year, sex)


@pytest.mark.parametrize("bad", ["19800101-1232", "19801301-1231", "19800230-1234", "1980010", "abc", "19800101-12345"])
def test_invalid_ids_are_refused_by_both(bad):
    assert explain(bad) is not None
    assert sql_check(bad)["pid_valid"] in (False, None)


@given(st.lists(st.text("0123456789-+ ab", max_size=20), min_size=1, max_size=20))
@settings(max_examples=40, deadline=None)
def test_masked_form_has_no_digits(xs):
    for x, got in zip(xs, sql_check_many(xs)):
        assert got["pid_masked"] == mask(x) and not any(c.isdigit() for c in got["pid_masked"])
