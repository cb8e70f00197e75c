"""A file imported before (same SHA-256): when, and whether later imports have touched its records.

Importing the same file again is skipped (unless ``--again``), and what the skip says must be true:
that nothing has changed since is true only while no later import stored records of the file's
municipalities. Once one has, the records of the file are checked (as a dry run, nothing written)
to count how many of them the workspace now holds otherwise: ``--again`` would put this file's
version of those back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb

from .errors import KeyFileError

__all__ = ["Earlier", "earlier_import", "quiet"]

#: The municipalities of an import (``imports.municipality``, comma-separated; empty when no row was accepted) as a list.
CODES_SQL = "CASE WHEN coalesce({t}.municipality, '') = '' THEN []::VARCHAR[] ELSE string_split({t}.municipality, ',') END"


@dataclass
class Earlier:
    """The latest import of the same file, and the later imports that stored records of its municipalities."""

    import_id: int
    on: str  # when it finished, to the minute
    municipalities: list[str]
    later_imports: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def earlier_import(con: duckdb.DuckDBPyConnection, sha256: str) -> Earlier | None:
    """The latest import of a file with this SHA-256, or None."""
    row = con.execute("SELECT import_id, finished_at, municipality FROM imports WHERE file_sha256 = ? AND kind = 'file' "
                      "ORDER BY import_id DESC LIMIT 1", [sha256]).fetchall()
    if not row:
        return None
    import_id, finished, codes = row[0]
    codes = [c for c in (codes or "").split(",") if c]
    later = [i for (i,) in con.execute(
        f"SELECT import_id FROM imports i WHERE import_id > ? AND list_has_any({CODES_SQL.format(t='i')}, ?) "
        "AND (kind = 'pool' OR records_inserted + records_updated > 0) ORDER BY 1", [import_id, codes]).fetchall()] if codes else []
    on = finished.strftime("%Y-%m-%d %H:%M") if isinstance(finished, datetime) else str(finished)
    return Earlier(import_id, on, codes, later)


def quiet(key_loader):
    """``key_loader`` for the check behind a skip message: no key (or an unusable one) is not an
    error there, only a reason that updated and unchanged records cannot be told apart."""
    if key_loader is None:
        return None

    def load():
        try:
            return key_loader()
        except KeyFileError:
            return None
    return load
