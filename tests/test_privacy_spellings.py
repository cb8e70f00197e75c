"""Privacy invariant 1 for ids spelt the way people type them: with spaces, colons, en or em dashes,
minus signs, no-break spaces, fullwidth digits (python-stdnum accepts all of these as valid ids).

Such ids are planted in a code column, a date, a value and the record key, and accepted in the
person id column. After importing through the command line, the DuckDB file (and its WAL), the
rejects files (CSV and XLSX), every table value and every output are searched: for each spelling
as written, and for the id's digits read the way stdnum reads them (look-alikes to ASCII,
separators dropped).
"""

from __future__ import annotations

import json
import re
import zipfile

from stdnum.util import clean

from conftest import pnr, wide_header, wide_row, write_csv, write_xlsx
from test_privacy import _table_values

FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


def _spell(twelve: str, how: str) -> str:
    """One id (12 digits) written a human way."""
    d10 = twelve[2:]
    return {
        "space": f"{d10[:6]} {d10[6:]}",
        "space12": f"{twelve[:8]} {twelve[8:]}",
        "en_dash": f"{d10[:6]}\u2013{d10[6:]}",
        "em_dash12": f"{twelve[:8]}\u2014{twelve[8:]}",
        "minus": f"{d10[:6]}\u2212{d10[6:]}",
        "nbsp": f"{d10[:6]}\u00a0{d10[6:]}",
        "colons": f"{d10[:4]}:{d10[4:6]}:{d10[6:]}",
        "date_dashes": f"{twelve[:4]}-{twelve[4:6]}-{twelve[6:8]}-{twelve[8:]}",
        "fullwidth": f"{d10[:6]}-{d10[6:]}".translate(FULLWIDTH),
        "soft_hyphen": f"{twelve[:8]}\u00ad{twelve[8:]}",  # no id to stdnum, but a person reads one
    }[how]


HOW = ["space", "space12", "en_dash", "em_dash12", "minus", "nbsp", "colons", "date_dashes", "fullwidth", "soft_hyphen"]
# (field, how the id is written) → the row that carries it; every id is another synthetic person
PLANTED = [("need_area", h) for h in HOW] + [
    ("record_key", "colons"), ("record_key", "date_dashes"), ("record_key", "en_dash"), ("record_key", "space"),
    ("started_on", "nbsp"), ("T0_value", "space"), ("intervention_code", "minus"),
]
IN_ID_COLUMN = ["space", "space12", "en_dash", "minus", "nbsp", "colons", "fullwidth"]  # valid: accepted


def _digits(text: str) -> str:
    """``text`` as stdnum reads digits: look-alikes to ASCII, then separators and invisibles dropped."""
    return re.sub(r"[\s:+\-\u00ad\u200b-\u200d\u2060\ufeff]", "", clean(text))


def test_no_id_spelt_with_other_separators_anywhere(ws, isu):
    ids: dict[str, str] = {}  # spelling → 12 digits
    rows = []
    for i, (field, how) in enumerate(PLANTED, start=100):
        twelve = pnr(i)
        x = _spell(twelve, how)
        ids[x] = twelve
        key = {"record_key": f"A{x}"} if field == "record_key" else {field: x}
        rows.append(wide_row(i, **{"record_key": f"K{i}", **key}))
    for i, how in enumerate(IN_ID_COLUMN, start=200):
        x = _spell(pnr(i), how)
        ids[x] = pnr(i)
        rows.append(wide_row(i, person_id=x))
    header = wide_header() + ["Kommentar"]
    rows.append(wide_row(300, Kommentar=f"ringde {_spell(pnr(300), 'en_dash')}"))  # not a contract column
    ids[_spell(pnr(300), "en_dash")] = pnr(300)
    csv_path = write_csv(ws.dir / "export.csv", rows, header, bom=True)
    xlsx_path = write_xlsx(ws.dir / "export.xlsx", rows[:4] + rows[len(PLANTED):len(PLANTED) + 2], header)

    env, cwd = ws.env(), ws.dir / "run"
    cwd.mkdir()
    runs = {
        "import --json": isu("import", str(csv_path), "--rejects", str(ws.dir / "r.csv"), "--json", env=env, cwd=cwd),
        "import xlsx": isu("import", str(xlsx_path), "--rejects", str(ws.dir / "r.xlsx"), env=env, cwd=cwd),
        "validate": isu("validate", str(csv_path), env=env, cwd=cwd),
        "status --json": isu("status", "--json", env=env, cwd=cwd),
    }
    res = json.loads(runs["import --json"].stdout)
    # every planted row rejected (the soft hyphen only in the need area: no id to stdnum), every valid id accepted
    assert res["rows_rejected"] == len(PLANTED), res["errors_by_type"]
    assert res["rows_accepted"] == len(IN_ID_COLUMN) + 1, res["errors_by_type"]
    assert res["errors_by_type"]["id_in_key"] == 4

    # the search works: it finds every id in the export it read
    text = csv_path.read_text(encoding="utf-8-sig")
    assert all(x in text and twelve[2:] in _digits(text) for x, twelve in ids.items())

    leaks: list[str] = []

    def search(where: str, text: str) -> None:
        flat = _digits(text)
        leaks.extend(f"{where}: {x!r}" for x, twelve in ids.items() if x in text or twelve[2:] in flat)

    for name, r in runs.items():
        search(f"{name} stdout", r.stdout)
        search(f"{name} stderr", r.stderr)
    written = [p for p in ws.dir.rglob("*") if p.is_file() and p not in (csv_path, xlsx_path, ws.key_file)]
    assert {"r.csv", "r.xlsx", "isu.duckdb"} <= {p.name for p in written}
    for p in written:
        data = p.read_bytes()
        leaks += [f"{p.name} bytes: {x!r}" for x in ids if x.encode() in data]
        search(f"{p.name} as text", data.decode("utf-8", "ignore"))
        if data[:4] == b"PK\x03\x04":  # XLSX: the text is inside compressed XML
            with zipfile.ZipFile(p) as z:
                for member in z.namelist():
                    search(f"{p.name}/{member}", z.read(member).decode("utf-8", "ignore"))
    for t, c, v in _table_values(ws.db):
        search(f"table {t}.{c}", v)
    assert not leaks, "person ids found:\n" + "\n".join(sorted(set(leaks)))
