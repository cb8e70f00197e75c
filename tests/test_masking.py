"""One rule for "may carry a person id": the masker (``mask_ids``) and the SQL checks (``ID_PATTERN_SQL``,
RE2) use the same pattern, and it covers every spelling python-stdnum accepts as a valid id.

python-stdnum drops spaces and colons anywhere, '-' and '+' anywhere in the date part, and reads
Unicode look-alikes (en dash, minus sign, no-break space, fullwidth digits…) as ASCII. The
strategies below spell valid ids in all of these ways; the SQL id check must agree with stdnum on
them too, so that what the masker guards and what the parser accepts are one set.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.util import clean

from isu import pseudonym
from isu.pseudonym import ID_PATTERN, _compiled, canonical, derive_sql, explain, mask_ids, mask_sql, parse_sql
from isu.validate import ID_PATTERN_SQL

_con = duckdb.connect()
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # the assertion names the failing value

#: What a person writes between the digits: the ASCII and Unicode dashes, spaces and colons that
#: python-stdnum reads as such.
SPACES = [" ", ":", "\u00a0", "\u202f", "\u2009", "\u3000", "\uff1a"]
DASHES = ["-", "+", "\u2013", "\u2014", "\u2212", "\u2010", "\u2011", "\uff0d"]
FULLWIDTH = {str(d): chr(0xFF10 + d) for d in range(10)}


def sql_matches(xs: list[str]) -> list[bool]:
    """``ID_PATTERN_SQL`` as the id_in_key check runs it (RE2, anywhere in the value)."""
    rows = _con.execute(f"SELECT regexp_matches(x, '{ID_PATTERN_SQL}') FROM unnest(CAST($xs AS VARCHAR[])) "
                        "WITH ORDINALITY AS u(x, i) ORDER BY i", {"xs": xs}).fetchall()
    return [r[0] for r in rows]


def sql_twelve(xs: list[str]) -> list[str | None]:
    """The importer's id steps (``parse_sql`` then ``derive_sql``): the canonical form of valid ids."""
    sql = "SELECT i, x FROM unnest(CAST($xs AS VARCHAR[])) WITH ORDINALITY AS u(x, i)"
    steps = {**parse_sql("x"), **derive_sql("pid_twelve")}
    for name, expr in steps.items():
        if name != "pid_client":  # the pseudonym needs a key
            sql = f"SELECT *, {expr} AS {name} FROM ({sql})"
    rows = _con.execute(f"SELECT CASE WHEN pid_valid THEN pid_twelve END FROM ({sql}) ORDER BY i", {"xs": xs}).fetchall()
    return [r[0] for r in rows]


@st.composite
def valid_digits(draw) -> str:
    """10 or 12 digits of a valid personnummer or samordningsnummer."""
    birth = draw(st.dates())
    day = birth.day + (60 if draw(st.booleans()) else 0)
    nine = f"{birth:%y%m}{day:02d}{draw(st.integers(0, 999)):03d}"
    ten = nine + luhn.calc_check_digit(nine)
    return f"{birth.year:04d}"[:2] + ten if draw(st.booleans()) else ten


@st.composite
def spellings(draw, *, dash_before_serial: bool = False) -> str:
    """A valid id spelt as python-stdnum may still accept it: look-alike digits, spaces and colons
    anywhere, dashes in the date part, a separator or none before the last four (stdnum takes
    ``87-01-274832``: 12 characters, so it puts the dash before the serial itself)."""
    digits = draw(valid_digits())
    chars = [FULLWIDTH[d] if draw(st.integers(0, 9)) == 0 else d for d in digits]
    date_part, serial = chars[:-4], chars[-4:]
    for _ in range(draw(st.integers(0, 3))):
        date_part.insert(draw(st.integers(0, len(date_part) - 1)), draw(st.sampled_from(DASHES + SPACES)))
    sep = draw(st.sampled_from(["", "", *DASHES]))
    if dash_before_serial and not sep and any(c in DASHES for c in date_part):
        sep = "-"
    out = date_part + [sep] + serial
    for _ in range(draw(st.integers(0, 3))):
        out.insert(draw(st.integers(0, len(out))), draw(st.sampled_from(SPACES)))
    return "".join(out)


def _accepted(x: str) -> bool:
    """python-stdnum's verdict (which also drops many drawn spellings: dashes in the date part
    and none before the serial, or a '+' that makes 000229 the 29th of February 1900)."""
    return explain(x) is None


valid_spellings = spellings().filter(_accepted)
#: Those that keep a separator before the serial whenever the date part holds a dash.
separated_spellings = spellings(dash_before_serial=True).filter(_accepted)


def test_one_pattern_for_python_and_sql():
    assert ID_PATTERN_SQL is ID_PATTERN and _compiled()[1].pattern == ID_PATTERN


def test_the_lookalikes_come_from_python_stdnum():
    """The table is stdnum's own (a private name: if it moves, this and the import fail loudly)."""
    for ch, ascii_ in {"\u2013": "-", "\u2212": "-", "\u00a0": " ", "\uff1a": ":", "\uff18": "8"}.items():
        assert clean(ch) == ascii_ and pseudonym._LOOKALIKE[ch] == ascii_


@settings(max_examples=300, deadline=None, phases=NO_SHRINK)
@example(["870127 4832", "19870127 4832", "870127\u20134832", "870127\u22124832", "870127\u00a04832", "8701-27-4832",
          "87-01-27 4832", "87-01-274832"])
@given(st.lists(valid_spellings, min_size=1, max_size=30))
def test_every_valid_spelling_is_masked_matched_and_parsed(xs):
    assert all(explain(x) is None for x in xs)  # the examples too
    for x, matched, twelve in zip(xs, sql_matches(xs), sql_twelve(xs)):
        masked = mask_ids(x)
        assert not any(clean(c).isdigit() for c in masked), f"{x!r} masked as {masked!r}"
        assert matched, f"{x!r} not matched by ID_PATTERN_SQL"
        assert twelve == canonical(x), f"{x!r}: SQL reads {twelve!r}, python-stdnum {canonical(x)!r}"


TEXT = st.text("ab 0123456789-,./:\u2013", max_size=12)


def _masked_inside(x: str, before: str, after: str) -> None:
    out = mask_ids(before + x + after)
    inner = out[len(before): len(before) + len(x)]
    assert len(out) == len(before + x + after) and not any(clean(c).isdigit() for c in inner), out


@settings(max_examples=150, deadline=None, phases=NO_SHRINK)
@given(separated_spellings, TEXT, TEXT)
def test_an_id_inside_text_is_masked_whatever_stands_beside_it(x, before, after):
    """Masking whole runs: no digit of the id survives, even next to other digits."""
    _masked_inside(x, before + " ", " " + after)


@settings(max_examples=100, deadline=None, phases=NO_SHRINK)
@given(valid_spellings, TEXT, TEXT)
def test_an_id_between_words_is_masked(x, before, after):
    """``87-01-274832`` is an id to stdnum only as the whole value: it is masked as a whole run."""
    _masked_inside(x, before + " ord ", " ord " + after)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("0123456789 -+:ab.,/\u2013\u00a0\uff11", max_size=24), min_size=1, max_size=30))
def test_python_and_re2_read_the_pattern_alike(xs):
    assert sql_matches(xs) == [_compiled()[1].search(x) is not None for x in xs]


def test_sql_mask_hides_every_digit_the_parser_reads():
    xs = ["870127-4832", "８７０１２７–４８３２", "A19800101:1231", None]
    got = [r[0] for r in _con.execute(f"SELECT {mask_sql('x')} FROM unnest(CAST($xs AS VARCHAR[])) AS u(x)", {"xs": xs}).fetchall()]
    assert got == ["******-****", "******–****", "A********:****", None]


@pytest.mark.parametrize(("value", "shown"), [
    ("2024-03-01", "2024-03-01"),  # a date: 8 digits
    ("20240301", "20240301"),
    ("K123-2024", "K123-2024"),
    ("3,5", "3,5"),
    ("123456789", "123456789"),  # nine digits: no id
    ("v. 12, 2024-03-01", "v. 12, 2024-03-01"),  # ',' ends a run
    ("2024-03-01 12:30", "2024-03-01 12:30"),  # a date and time: dashes in the date part but none before the last four
    ("20240301 12:30", "******** **:**"),  # but without them it is read as an id: masked on the safe side
    ("2024-03-01 - 2024-06-01", "****-**-** - ****-**-**"),  # likewise a date range (20240301-2024)
    ("2303-2023-0001:1", "2303-2023-0001:1"),  # a case system's key (the sample data's): no YYMMDD before NNNC
    ("87-01-27 4832", "**-**-** ****"),  # stdnum's reading of 12 characters
    ("ringde 870127 4832 idag", "ringde ****** **** idag"),
    ("870127-4832 2 ggr", "******-**** * ggr"),  # the whole run
    ("0701234567", "**********"),  # a phone number is masked too
    ("19870127\u00ad4832", "********\u00ad****"),  # a soft hyphen: no id to stdnum, but readable as one
])
def test_what_is_masked_and_flagged_in_sql(value, shown):
    assert mask_ids(value) == shown
    assert sql_matches([value]) == [value != shown]  # a key like it is refused as id_in_key, or not
