"""What a workspace holds, as one dictionary (``isu status``, tests, the demo)."""

from __future__ import annotations

import duckdb

from isu.reimport import CODES_SQL
from isu.store import fetch_one

__all__ = ["workspace_status", "SUPERSEDED_SQL"]

#: Each import with the first later import that replaces it: the same file again (same SHA-256,
#: ``--again``), or a file of the same name (a corrected version) covering all its municipalities
#: (``imports`` keeps no more of a file: its rejected rows' keys may hold person ids). A name
#: masked when stored (a file named after a person: ``********-****.csv``) names no one file and
#: replaces nothing. A monthly export under one name counts as a corrected version, so
#: ``rows_rejected_all`` is reported too.
SUPERSEDED_SQL = f"""SELECT i.import_id, (SELECT min(l.import_id) FROM imports l WHERE l.import_id > i.import_id AND l.kind = i.kind
    AND (l.file_sha256 = i.file_sha256 OR (l.file_name = i.file_name AND NOT contains(i.file_name, '*')
         AND list_has_all({CODES_SQL.format(t='l')}, {CODES_SQL.format(t='i')})))) AS superseded_by FROM imports i"""


def workspace_status(con: duckdb.DuckDBPyConnection) -> dict:
    one = lambda sql: fetch_one(con, sql)[0]  # noqa: E731
    cur = con.execute(f"SELECT * FROM imports JOIN ({SUPERSEDED_SQL}) USING (import_id) ORDER BY import_id")
    cols = [d[0] for d in cur.description]
    imports = [dict(zip(cols, r)) for r in cur.fetchall()]
    fp = fetch_one(con, "SELECT value FROM meta WHERE key = 'key_fingerprint'")
    return {
        "records": one("SELECT count(*) FROM records"),
        "clients": one("SELECT count(DISTINCT client) FROM records"),
        "measurements": one("SELECT count(*) FROM measurements"),
        "municipalities": [r[0] for r in con.execute("SELECT DISTINCT municipality FROM records ORDER BY 1").fetchall()],
        # rows rejected in the imports no later import replaces (SUPERSEDED_SQL), and in all imports
        "rows_rejected": sum(i["rows_rejected"] for i in imports if i["superseded_by"] is None),
        "rows_rejected_all": sum(i["rows_rejected"] for i in imports),
        "rejects_stored": one("SELECT count(*) FROM rejects"),
        "publications": one("SELECT count(*) FROM publications"),
        "key_fingerprint": fp[0] if fp else None,
        "imports": imports,
    }
