"""Builders shared by the pool tests (no tests here).

Municipality workspaces are filled directly, the way the importer leaves them: pseudonyms are
HMAC-SHA256 of a synthetic 12-digit person id under the pool key, the key's fingerprint is in
``meta``. People are numbered; the same number in two municipalities is a client who moved.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import random
import zipfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from stdnum import luhn

from isu.keys import PoolKey
from isu.pool_export import build_manifest
from isu.pool_package import Manifest, write_package
from isu.store import connect

__all__ = [
    "JAMTLAND",
    "export_all",
    "fill_workspace",
    "flip_member_byte",
    "id_forms",
    "people_of",
    "person_id",
    "pseudonym",
    "read_members",
    "repack",
    "set_column",
    "snapshot",
]

#: The small rural Jämtland municipalities of the sample pool.
JAMTLAND = ("2303", "2305", "2313", "2326", "2361")


def person_id(i: int) -> str:
    """A valid synthetic personnummer, 12 digits, for person number ``i``."""
    birth = date(1940, 1, 1) + timedelta(days=(i * 7919) % 25000)
    nine = birth.strftime("%y%m%d") + f"{(i * 37) % 1000:03d}"
    return birth.strftime("%Y")[:2] + nine + luhn.calc_check_digit(nine)


def id_forms(pid12: str) -> list[str]:
    """Every written form of an id: 12 and 10 digits, with and without separator."""
    ten = pid12[2:]
    return [pid12, ten, f"{pid12[:8]}-{pid12[8:]}", f"{ten[:6]}-{ten[6:]}", f"{ten[:6]}+{ten[6:]}"]


def pseudonym(key: PoolKey, i: int) -> str:
    return hmac.new(key.secret, person_id(i).encode(), hashlib.sha256).hexdigest()


def people_of(i: int, n: int = 14) -> list[int]:
    """Person numbers of the i-th municipality: 4 of them also lived in the next one (movers)."""
    return list(range(i * (n - 4), i * (n - 4) + n))


def fill_workspace(db: Path, key: PoolKey, municipality: str, people: list[int], *, seed: int = 0,
                   version: int = 1) -> None:
    """One record per person (record_key from the person's number and ``version``), T0 and most T1."""
    rng = random.Random(f"{municipality}-{seed}")
    con = connect(db, create=True)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('key_fingerprint', ?)", [key.fingerprint])
    import_id = con.execute("SELECT nextval('import_seq')").fetchone()[0]
    con.execute("INSERT INTO imports VALUES (?, 'file', 'export.csv', ?, 'isu', ?, ?, ?, 0, ?, 0, 0, now(), now(), "
                "'test', ?)", [import_id, "0" * 63 + str(seed % 10), municipality, len(people), len(people),
                                len(people), key.fingerprint])
    recs, meas = [], []
    for p in people:
        start = date(2022, 1, 1) + timedelta(days=rng.randrange(700))
        end = start + timedelta(days=rng.randrange(30, 300)) if rng.random() < 0.85 else None
        rk = f"R{p:06d}-v{version}"
        recs.append((municipality, rk, pseudonym(key, p), "F" if p % 2 else "M", 1950 + p % 50,
                     rng.choice(["alcohol", "housing", "mental_health"]), "FAM", "family_support", "SoL", "own",
                     start, end, "as_planned" if end else None, "improved" if end else None, import_id))
        meas.append((municipality, rk, "T0", "severity04", start, float(rng.randrange(5))))
        if end:
            meas.append((municipality, rk, "T1", "severity04", end, float(rng.randrange(5))))
    rcols = ["municipality", "record_key", "client", "sex", "birth_year", "need_area", "intervention_code", "category", "legal_basis", "provider", "started_on", "ended_on", "end_reason", "goal_attainment", "import_id"]
    new_records = pa.Table.from_pylist([dict(zip(rcols, r)) for r in recs])  # noqa: F841 - read by DuckDB
    new_meas = pa.Table.from_pylist(  # noqa: F841
        [dict(zip(("municipality", "record_key", "timepoint", "instrument", "measured_on", "value"), m)) for m in meas])
    con.execute(f"INSERT INTO records ({', '.join(rcols)}) SELECT * FROM new_records")
    con.execute("INSERT INTO measurements SELECT * FROM new_meas")
    con.close()


def export_all(folder: Path, key: PoolKey, codes=JAMTLAND, n: int = 14) -> dict[str, Path]:
    """One workspace and one exported package per municipality; returns code -> package."""
    from isu.pool import export_package

    out = {}
    for i, code in enumerate(codes):
        db = folder / f"{code}.duckdb"
        fill_workspace(db, key, code, people_of(i, n))
        con = connect(db, read_only=True)
        export_package(con, folder / f"{code}.isupool.zip")
        con.close()
        out[code] = folder / f"{code}.isupool.zip"
    return out


def snapshot(db: Path, *, ids: bool = True) -> dict[str, list[tuple]]:
    """Every row of the microdata tables and the import log (times left out), sorted."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        drop = "" if ids else " EXCLUDE (import_id)"
        out = {t: sorted(map(str, con.execute(f"SELECT *{drop if t == 'records' else ''} FROM {t}").fetchall()))
               for t in ("records", "measurements", "meta")}
        out["imports"] = sorted(con.execute(
            f"SELECT {'import_id, ' if ids else ''}kind, file_name, file_sha256, municipality, rows_read, "
            "records_inserted, records_updated, key_fingerprint FROM imports").fetchall())
        return out
    finally:
        con.close()


def read_members(package: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(package) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def repack(package: Path, out: Path, *, records=None, measurements=None, manifest_edit=None,
           fingerprint: str | None = None) -> Path:
    """A well-formed package (hashes right) with altered content: ``records``/``measurements`` take
    and return a pyarrow Table; ``manifest_edit`` takes and returns the manifest dict."""
    members = read_members(package)
    old = json.loads(members["manifest.json"])
    tmp = out.with_suffix(".d")
    tmp.mkdir()
    paths = {}
    for table, edit in (("records", records), ("measurements", measurements)):
        data = pq.read_table(io.BytesIO(members[f"{table}.parquet"]))
        paths[table] = tmp / f"{table}.parquet"
        pq.write_table(edit(data) if edit else data, paths[table])
    con = duckdb.connect()
    manifest = build_manifest(con, paths, fingerprint or old["key_fingerprint"])
    if manifest_edit:
        manifest = Manifest.model_validate(manifest_edit(manifest.model_dump(mode="json")))
    write_package(out, manifest, paths)
    return out


def set_column(table: pa.Table, name: str, values: list) -> pa.Table:
    i = table.schema.get_field_index(name)
    field = table.schema.field(i).with_nullable(True)
    return table.set_column(i, field, pa.array(values, type=field.type))


def flip_member_byte(package: Path, member: str, out: Path) -> Path:
    """A copy of ``package`` with one byte in the middle of ``member``'s stored data inverted."""
    data = bytearray(package.read_bytes())
    with zipfile.ZipFile(package) as zf:
        info = zf.getinfo(member)
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0xFF
    out.write_bytes(bytes(data))
    return out


def killable_import(db: str, packages: list[str], conn) -> None:
    """Child process body for the SIGKILL test: say 'ready', import, report the seconds taken."""
    import time

    from isu.pool import import_packages

    con = connect(db)
    conn.send("ready")
    t = time.perf_counter()
    import_packages(con, packages)
    con.close()
    conn.send(time.perf_counter() - t)
