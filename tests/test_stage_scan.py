"""``isu.stage.Scan``: which values that span lines are lines a stray quote swallowed.

A swallowed row is never stored (the records of the lines it took in would be lost without a
word); a comment typed over several lines is a value, semicolons and all, and is stored.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from isu.stage import _swallowed

from test_read_robust import _export, _quote, _rejects, _save


def _flags(values: list[str], whole: int = 18) -> list[bool]:
    col = pa.array(values)
    n = np.array([v.count("\n") for v in values])
    d = np.array([v.count(";") for v in values])
    return _swallowed(col, n, d, whole, ";").tolist()


def test_what_counts_as_swallowed_lines():
    row = ";".join(["x"] * 19)  # a whole line of a 19-column export: 18 delimiters
    assert _flags([
        "ok",  # one line
        "a;b;c\nd;e",  # a comment over two lines, few semicolons
        "Plan: " + "; ".join(["steg"] * 12) + "\n" + "; ".join(["mål"] * 9),  # 19 semicolons over two lines
        "rest" + ";x" * 3 + "\n" + row + "\n" + "y;" * 15 + "end",  # 3 + 18 + 15 = 36: two lines' worth
        "slut" + ";" * 10 + "\n" + ";" * 8 + "början",  # 18: the rest of one line and the start of the next
        "rest;of\n\n" + ";" * 17,  # 18 with an empty line taken in too
        "rest\n" + ";" * 17 + "\nmore;x",  # a short row taken in: no multiple, but a line of 17
    ]) == [False, False, False, True, True, True, True]


def test_a_comment_over_several_lines_with_many_semicolons_is_a_value(ws):
    p = ws.dir / "plan.csv"
    words = ["kontakt", "boende", "arbete", "skuld", "hälsa", "nätverk", "familj", "skola", "fritid", "ekonomi", "mål"]
    plan = "Plan: " + "; ".join(words) + "\nVecka 12: " + "; ".join(words[:10]) + "\nVecka 24: " + "; ".join(words[:9])
    assert plan.count(";") == 27  # more than the 20 delimiters of a line of this export, and no multiple of them
    lines = _export(p, 5, comment={2: plan})
    r = ws.import_(_save(p, lines))
    assert (r.rows_read, r.rows_accepted, r.rows_rejected) == (5, 5, 0)


def test_lines_swallowed_around_an_empty_line_are_still_one_malformed_row(ws):
    p = ws.dir / "gap.csv"
    lines = _export(p, 8, comment={i: "ok" for i in range(1, 9)})
    lines[3] = lines[3][: -len(b"ok")] + b'"ok'  # line 4, K3 ...
    lines[4] = lines[4][: -len(b"ok")] + b'ok"'  # ... to line 6, K4, with an empty line 5 between
    lines.insert(4, b"")
    r = ws.import_(_save(p, lines))
    assert r.rows_accepted + r.rows_rejected == r.rows_read
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("4", "malformed_row")]
    with ws.connect() as con:
        stored = {k for (k,) in con.execute("SELECT record_key FROM records").fetchall()}
    assert stored == {"K1", "K2", "K5", "K6", "K7", "K8"}


def test_stray_quotes_that_close_in_the_same_column_still_reject_the_row(ws):
    p = ws.dir / "same.csv"
    lines = _export(p, 6)
    lines[3] = _quote(lines[3], b"Boende", opens=True)
    lines[4] = _quote(lines[4], b"Boende", opens=False)
    r = ws.import_(_save(p, lines))
    assert [(x["row"], x["error_type"]) for x in _rejects(r)] == [("4", "malformed_row")]
    assert (r.rows_read, r.rows_accepted) == (5, 4)
