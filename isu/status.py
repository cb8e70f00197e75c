"""What a workspace holds, as one dictionary (``isu status``, tests, the demo)."""

from __future__ import annotations

import duckdb

from isu.store import fetch_one

__all__ = ["workspace_status"]


def workspace_status(con: duckdb.DuckDBPyConnection) -> dict:
    one = lambda sql: fetch_one(con, sql)[0]  # noqa: E731
    cols = [d[0] for d in con.execute("SELECT * FROM imports LIMIT 0").description]
    imports = [dict(zip(cols, r)) for r in con.execute("SELECT * FROM imports ORDER BY import_id").fetchall()]
    fp = fetch_one(con, "SELECT value FROM meta WHERE key = 'key_fingerprint'")
    return {
        "records": one("SELECT count(*) FROM records"),
        "clients": one("SELECT count(DISTINCT client) FROM records"),
        "measurements": one("SELECT count(*) FROM measurements"),
        "municipalities": [r[0] for r in con.execute("SELECT DISTINCT municipality FROM records ORDER BY 1").fetchall()],
        # a file imported again (--again) counts once: its latest import's rejects
        "rows_rejected": one("""SELECT coalesce(sum(rows_rejected), 0) FROM (SELECT rows_rejected, row_number() OVER
                                (PARTITION BY kind, file_sha256 ORDER BY import_id DESC) AS n
                                FROM imports) WHERE n = 1"""),
        "rejects_stored": one("SELECT count(*) FROM rejects"),
        "publications": one("SELECT count(*) FROM publications"),
        "key_fingerprint": fp[0] if fp else None,
        "imports": imports,
    }
