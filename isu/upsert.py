"""Upsert of staged chunks by (municipality, record_key), inside the import's transaction.

The store has no PRIMARY KEY index (it doubled the cost of every import): this module is what
keeps a key stored once. A record is written when new or changed (content hash), replacing the
stored one and its measurements; an unchanged record is left alone; a key repeated in the export
rejects all its rows, also when the repeat comes in a later chunk after the first row was written
(that write is then undone).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from isu.schemas import Profile

from .pseudonym import mask_ids
from .stage import _KEYED, _KEYS, RECORD_FIELDS, Stage, measurement_count_sql, measurements_sql

__all__ = ["ChunkWriter"]

_KEY_COLUMNS = "(municipality VARCHAR, record_key VARCHAR, _row BIGINT, status VARCHAR, n_meas UTINYINT)"
#: Status of a staged key: d(uplicate, already flagged), r(ejected), i(nserted), u(pdated), n(unchanged); a dry run
#: gives the statuses the import would give.
_STATUS = ("CASE WHEN NOT _isu_stage._ok AND list_contains(list_transform(_isu_stage._rejects, lambda x: x.type), 'duplicate_key') "
           "THEN 'd' WHEN NOT _isu_stage._ok THEN 'r' WHEN o._row IS NULL THEN {new} WHEN o.same THEN 'n' ELSE {changed} END")
_UNDO = {"records": "_isu_undo_records", "measurements": "_isu_undo_measurements"}
#: ``_isu_old`` when no stored record can share a key with the chunk.
_NO_OLD = pa.table({"_row": pa.array([], pa.int64()), "municipality": pa.array([], pa.string()),
                    "record_key": pa.array([], pa.string()), "same": pa.array([], pa.bool_())})


class ChunkWriter:
    """Writes each staged chunk and keeps what later chunks need to find repeated keys.

    Wide exports come in chunks, so a key may
    repeat in a later chunk after its first row was written: both rows are then rejected and the
    first row's write is undone. For that, the keys of every chunk but the last are kept in
    ``_isu_keys``/``_isu_rkeys`` with what became of their row, and the stored
    versions a non-last chunk replaces are kept in ``_isu_undo_*`` (workspace tables inside the
    transaction: pseudonymised data, so they may reach the file; dropped before the commit).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, profile: Profile, res) -> None:
        self.con, self.profile, self.res = con, profile, res
        self.write = not res.dry_run
        self.keys = False  # _isu_keys and _isu_rkeys exist
        self.undo = False  # _isu_undo_* exist
        self.deleted = False  # stored rows were deleted (replaced or undone)
        self.municipalities: dict[str, int] = {}
        self.stored: set[str] | None = None  # municipalities with records from earlier imports (``_stored``)

    def chunk(self, stage: Stage, *, last: bool) -> list[tuple[int, str, str, str | None]]:
        """Count, write and remember the staged chunk; undo earlier rows whose key it repeats.
        Returns the rejects of those earlier rows (as ``isu.rejects.Pending``)."""
        res = self.res
        self.stage = stage
        late = self._late_duplicates() if self.keys else []
        parsed, rejected = stage.run("SELECT count(*), count(*) FILTER (NOT _ok) FROM _isu_stage")[0]
        res.rows_read += parsed
        res.rows_rejected += rejected
        records = "count(*)" if self.profile.shape == "wide" else "count(DISTINCT record_key)"  # an accepted wide row is one record
        codes = []
        for code, n, m in stage.run(f"SELECT municipality, {records}, sum({measurement_count_sql(self.profile)}) "
                                    "FROM _isu_stage WHERE _ok GROUP BY 1"):
            self.municipalities[code] = self.municipalities.get(code, 0) + n
            res.measurements += int(m)
            codes.append(code)
        acc = self._accepted()
        if self._stored(codes):  # a dry run counts what the import would do, too
            stage.keep("old", f"SELECT a._row, a.municipality, a.record_key, CAST(a.row_hash AS VARCHAR) = CAST(o.row_hash AS VARCHAR) "
                              f"AS same FROM {acc} a JOIN records o USING (municipality, record_key)")
        else:  # nothing stored to compare with (a municipality's first import): spare the join over the chunk
            stage.tables["old"] = _NO_OLD
        accepted = stage.run(f"SELECT count(*) FROM {acc} a")[0][0]
        old, changed = stage.run("SELECT count(*), count(*) FILTER (NOT same) FROM _isu_old")[0]
        res.records_inserted += accepted - old
        res.records_updated += changed
        res.records_unchanged += old - changed
        if not last:
            self._remember()
        if self.write:
            if changed:
                self._replace(save=not last)

            def fresh(t: str) -> str:  # not an unchanged record
                return "true" if old == changed else ("NOT EXISTS (SELECT 1 FROM _isu_old o WHERE o.same AND "
                                                      f"o.municipality = {t}.municipality AND o.record_key = {t}.record_key)")
            cols = ", ".join(RECORD_FIELDS)
            stage.run(f"INSERT INTO records ({cols}, import_id, row_hash) SELECT {cols}, ?, row_hash FROM {acc} a "
                      f"WHERE {fresh('a')}", [res.import_id])
            stage.run(f"INSERT INTO measurements {measurements_sql(self.profile, fresh('_isu_stage'))}")
        if last:
            self._absent()
        return late

    def _absent(self) -> None:
        """Stored records of the file's municipalities whose key no row of the file has (they are
        kept: an export may hold part of a municipality's records), counted by one anti-join against
        the file's keys (this chunk's and those kept of earlier chunks), once, after the last chunk.
        Nothing to count, and no join, when no earlier import stored records of these municipalities."""
        codes = sorted(c for c, n in self.municipalities.items() if n > 0 and c in (self.stored or ()))
        if not codes:
            return
        earlier = f" UNION ALL SELECT municipality, record_key FROM {_KEYS}" if self.keys else ""
        rows = self.stage.run(f"""SELECT r.municipality, count(*) FROM records r
                                 ANTI JOIN (SELECT municipality, record_key FROM _isu_stage WHERE {_KEYED}{earlier}) f
                                 USING (municipality, record_key) WHERE list_contains(?, r.municipality) GROUP BY 1 ORDER BY 1""", [codes])
        self.res.records_not_in_file = {code: n for code, n in rows if n}

    def _stored(self, codes: list[str]) -> bool:
        """Whether earlier imports stored records of any of these municipalities (read before this
        import wrote its first chunk). This import's own earlier chunks do not count: a key of
        theirs that comes again is a duplicate key, rejected on both rows (``_late_duplicates``),
        never an update."""
        if self.stored is None:
            self.stored = {code for (code,) in self.con.execute("SELECT DISTINCT municipality FROM records").fetchall()}
        return not self.stored.isdisjoint(codes)

    def _accepted(self) -> str:
        """The chunk's accepted records with their content hash: the stage itself (wide), or one
        record per key with its measurements' hashes folded in (long)."""
        if self.profile.shape == "wide":
            return "(SELECT * FROM _isu_stage WHERE _ok)"
        cols = ", ".join(RECORD_FIELDS)
        self.stage.keep("acc", f"""
            SELECT r.*, xor(hash({", ".join("r." + c for c in RECORD_FIELDS)}), m.h) AS row_hash
            FROM (SELECT DISTINCT ON (municipality, record_key) _row, {cols} FROM _isu_stage WHERE _ok ORDER BY municipality, record_key, _row) r
            JOIN (SELECT municipality, record_key, bit_xor(hash(timepoint, instrument, measured_on, value)) AS h
                  FROM _isu_stage WHERE _ok GROUP BY ALL) m USING (municipality, record_key)""")
        return "_isu_acc"

    def _replace(self, *, save: bool) -> None:
        """Remove the stored versions of changed records (kept for undo when a later chunk may follow)."""
        changed = "(SELECT municipality, record_key FROM _isu_old WHERE NOT same)"
        for table in ("records", "measurements"):
            if save:
                if not self.undo:
                    self.con.execute(f"CREATE TABLE {_UNDO[table]} AS SELECT * FROM {table} LIMIT 0")
                self.stage.run(f"INSERT INTO {_UNDO[table]} SELECT * FROM {table} SEMI JOIN {changed} c USING (municipality, record_key)")
            self.stage.run(f"DELETE FROM {table} t USING {changed} c WHERE t.municipality = c.municipality AND t.record_key = c.record_key")
        self.undo = self.undo or save
        self.deleted = True

    def _remember(self) -> None:
        """Keep this chunk's keys for the chunks after it."""
        new, changed = "'i'", "'u'"
        if not self.keys:
            self.con.execute(f"CREATE TABLE _isu_keys {_KEY_COLUMNS}")
            self.con.execute(f"CREATE TEMP TABLE _isu_rkeys {_KEY_COLUMNS}")
            self.keys = True
        for table, ok in (("_isu_keys", "_isu_stage._ok"), ("_isu_rkeys", "NOT _isu_stage._ok")):
            self.stage.run(f"""INSERT INTO {table} SELECT _isu_stage.municipality, _isu_stage.record_key, _isu_stage._row,
                                 {_STATUS.format(new=new, changed=changed)}, {measurement_count_sql(self.profile)}
                               FROM _isu_stage LEFT JOIN _isu_old o USING (_row)
                               WHERE {ok} AND _isu_stage.municipality IS NOT NULL AND _isu_stage.record_key IS NOT NULL""")

    def _late_duplicates(self) -> list[tuple[int, str, str, str | None]]:
        """Rows of earlier chunks whose key this chunk repeats: rejected now, their writes undone."""
        res, stage = self.res, self.stage
        n = stage.keep("late", f"""SELECT k.* FROM {_KEYS} k SEMI JOIN (SELECT municipality, record_key FROM _isu_stage
                                    WHERE {_KEYED}) s USING (municipality, record_key) WHERE k.status <> 'd'""")
        if not n:
            return []
        late = stage.run("SELECT _row, municipality, record_key, status, n_meas FROM _isu_late")
        for table in ("_isu_keys", "_isu_rkeys"):
            stage.run(f"UPDATE {table} SET status = 'd' WHERE _row IN (SELECT _row FROM _isu_late)")
        for table in ("records", "measurements") if self.write else ():
            self.deleted = True
            stage.run(f"DELETE FROM {table} t USING _isu_late l WHERE l.status IN ('i', 'u') "
                      "AND t.municipality = l.municipality AND t.record_key = l.record_key")
            if self.undo:
                stage.run(f"INSERT INTO {table} SELECT * FROM {_UNDO[table]} SEMI JOIN "
                          "(SELECT municipality, record_key FROM _isu_late WHERE status = 'u') l USING (municipality, record_key)")
        column = self.profile.columns.get("record_key", "record_key")
        out = []
        for row, code, key, status, n_meas in late:
            out.append((row, column, "duplicate_key", mask_ids(key)))
            if status == "r":
                continue
            res.rows_rejected += 1
            self.municipalities[code] -= 1
            res.measurements -= n_meas
            if status == "i":
                res.records_inserted -= 1
            elif status == "u":
                res.records_updated -= 1
            else:
                res.records_unchanged -= 1
        return out

    def finish(self) -> None:
        """Drop the import's helper tables; the municipalities that kept accepted rows."""
        for table in ("_isu_keys", "_isu_rkeys", *(_UNDO.values() if self.undo else ())):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.res.municipalities = sorted(c for c, n in self.municipalities.items() if n > 0)
