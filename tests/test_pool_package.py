"""Pool package format and export: manifest claims, atomic write, and every way a package can be unfit."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pyarrow as pa
import pytest
from isu.schemas import SCHEMA_VERSION
from test_pool_helpers import (
    export_all,
    fill_workspace,
    flip_member_byte,
    people_of,
    read_members,
    repack,
    snapshot,
)

from isu import __version__
from isu.errors import IsuError, KeyFileError, PackageError, WorkspaceError
from isu.keys import new_key
from isu.pool import export_package, import_packages, open_package
from isu.pool_package import MANIFEST, write_package
from isu.store import STORE_VERSION, connect


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Five municipality packages under one key, and a region that already holds two of them."""
    d = tmp_path_factory.mktemp("pool")
    key = new_key(d / "pool.key")
    packages = export_all(d, key)
    region = d / "region.duckdb"
    con = connect(region, create=True)
    import_packages(con, [packages["2303"], packages["2305"]])
    con.close()
    return d, key, packages, region


def refused(region: Path, package: Path, match: str) -> PackageError:
    """Import ``package``: it must be refused with one line naming it, and change nothing."""
    before = snapshot(region)
    con = connect(region)
    try:
        with pytest.raises(PackageError, match=match) as e:
            import_packages(con, [package])
    finally:
        con.close()
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"package {package} refused: ")
    assert snapshot(region) == before
    return e.value


def test_manifest_states_what_the_package_holds(world):
    d, key, packages, _ = world
    pkg = open_package(packages["2313"])
    m = pkg.manifest
    assert (m.schema_version, m.store_version, m.toolkit_version) == (SCHEMA_VERSION, STORE_VERSION, __version__)
    assert m.key_fingerprint == key.fingerprint and m.codes == ["2313"]
    con = connect(d / "2313.duckdb", read_only=True)
    n_rec, n_meas, first, last = con.execute(
        "SELECT (SELECT count(*) FROM records), (SELECT count(*) FROM measurements), "
        "(SELECT least(min(started_on), min(ended_on)) FROM records), "
        "(SELECT greatest(max(ended_on), max(measured_on)) FROM records, measurements)").fetchall()[0]
    con.close()
    assert (m.file("records").rows, m.file("measurements").rows) == (n_rec, n_meas) == (
        m.municipalities[0].records, m.municipalities[0].measurements)
    assert (m.period.first, m.period.last) == (first, last)
    members = read_members(packages["2313"])
    assert list(members) == [MANIFEST, "records.parquet", "measurements.parquet"]
    with zipfile.ZipFile(packages["2313"]) as zf:
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    raw = json.loads(members[MANIFEST])
    assert key.secret.hex() not in members[MANIFEST].decode() and "secret" not in raw


def test_only_contract_columns_travel(world):
    import pyarrow.parquet as pq

    _, _, packages, _ = world
    members = read_members(packages["2303"])
    rec = pq.read_table(pa.BufferReader(members["records.parquet"]))
    assert "import_id" not in rec.column_names and "row_hash" not in rec.column_names
    assert rec.column_names[:3] == ["municipality", "record_key", "client"]
    assert all(len(c) == 64 for c in rec.column("client").to_pylist())


def test_export_one_of_several_municipalities(tmp_path):
    key = new_key(tmp_path / "k.key")
    db = tmp_path / "two.duckdb"
    fill_workspace(db, key, "2303", people_of(0))
    fill_workspace(db, key, "2305", people_of(1), seed=1)
    con = connect(db, read_only=True)
    both = export_package(con, tmp_path / "both.zip")
    one = export_package(con, tmp_path / "one.zip", municipality="2305")
    with pytest.raises(IsuError, match="2361 has no records"):
        export_package(con, tmp_path / "none.zip", municipality="2361")
    with pytest.raises(KeyFileError, match="not the key"):
        export_package(con, tmp_path / "k.zip", key_fingerprint="0" * 16)
    con.close()
    assert both["municipalities"] == ["2303", "2305"] and one["municipalities"] == ["2305"]
    assert both["records"] == 2 * one["records"]
    assert not (tmp_path / "none.zip").exists() and not (tmp_path / "k.zip").exists()


def test_empty_workspace_has_nothing_to_export(tmp_path):
    connect(tmp_path / "e.duckdb", create=True).close()
    con = connect(tmp_path / "e.duckdb", read_only=True)
    with pytest.raises(WorkspaceError, match="nothing to export"):
        export_package(con, tmp_path / "e.zip")
    con.close()


def test_export_refuses_a_key_that_holds_a_person_id(tmp_path):
    key = new_key(tmp_path / "k.key")
    db = tmp_path / "w.duckdb"
    fill_workspace(db, key, "2303", people_of(0))
    con = connect(db)
    con.execute("UPDATE records SET record_key = 'R-19450617-2383' WHERE record_key = 'R000000-v1'")
    con.execute("UPDATE measurements SET record_key = 'R-19450617-2383' WHERE record_key = 'R000000-v1'")
    con.close()
    con = connect(db, read_only=True)
    with pytest.raises(IsuError, match="record_key looks like it holds a person id") as e:
        export_package(con, tmp_path / "p.zip")
    con.close()
    assert "2383" not in str(e.value)
    assert not (tmp_path / "p.zip").exists() and list(tmp_path.glob(".*")) == []


def test_write_is_atomic(world, tmp_path, monkeypatch):
    _, _, packages, _ = world
    out = tmp_path / "2303.zip"
    out.write_bytes(b"the previous package")
    pkg = open_package(packages["2303"])
    members = {t: tmp_path / f"{t}.parquet" for t in ("records", "measurements")}
    for t, data in read_members(packages["2303"]).items():
        if t != MANIFEST:
            (tmp_path / t).write_bytes(data)
    real_write = zipfile.ZipFile.write

    def crash(self, filename, arcname=None, *a, **k):
        if arcname == "measurements.parquet":
            raise OSError(28, "No space left on device")
        return real_write(self, filename, arcname, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "write", crash)
    with pytest.raises(IsuError, match="No space left"):
        write_package(out, pkg.manifest, members)
    assert out.read_bytes() == b"the previous package"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2303.zip", "measurements.parquet", "records.parquet"]


def test_flipped_byte_in_a_parquet_member_is_refused(world, tmp_path):
    _, _, packages, region = world
    for member in ("records.parquet", "measurements.parquet"):
        bad = flip_member_byte(packages["2313"], member, tmp_path / f"flip-{member}.zip")
        refused(region, bad, "damaged|SHA-256")


def test_member_replaced_with_valid_zip_but_old_manifest_is_refused(world, tmp_path):
    _, _, packages, region = world
    members = read_members(packages["2313"])
    rec = bytearray(members["records.parquet"])
    rec[len(rec) // 2] ^= 0x01
    bad = tmp_path / "swapped.zip"
    with zipfile.ZipFile(bad, "w") as zf:  # CRCs recomputed: only the manifest's SHA-256 can tell
        zf.writestr(MANIFEST, members[MANIFEST])
        zf.writestr("records.parquet", bytes(rec))
        zf.writestr("measurements.parquet", members["measurements.parquet"])
    refused(region, bad, "records.parquet does not match its SHA-256")


def _with_manifest(src: Path, out: Path, edit) -> Path:
    members = read_members(src)
    text = edit(members[MANIFEST].decode())
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, text if name == MANIFEST else data)
    return out


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace('"rows": 14', '"rows": 13', 1), "rows, the manifest says 13"),
    (lambda t: t.replace('"code": "2313"', '"code": "2305"'), "manifest edited"),
    (lambda t: t.replace('"first": "20', '"first": "19', 1), "manifest edited"),
    (lambda t: re.sub(r'"sha256": "[0-9a-f]', '"sha256": "x', t).replace('"x', '"0'), "does not match its SHA-256"),
    (lambda t: t.replace(f'"schema_version": "{SCHEMA_VERSION}"', '"schema_version": "99"'), "schema version 99"),
    (lambda t: t.replace('"format": "isu-pool-package"', '"format": "zip"'), "not a valid isu manifest"),
    (lambda t: t.replace('{\n  "format"', '{\n  "note": "x",\n  "format"'), "not a valid isu manifest"),
    (lambda t: t[: len(t) // 2], "not a valid isu manifest"),
    (lambda t: t.replace('"bytes": ', '"bytes": 1', 1), "bytes, the manifest says"),
])
def test_edited_manifest_is_refused(world, tmp_path, edit, match):
    _, _, packages, region = world
    bad = _with_manifest(packages["2313"], tmp_path / "edited.zip", edit)
    assert read_members(bad)[MANIFEST] != read_members(packages["2313"])[MANIFEST]
    refused(region, bad, match)


def test_truncated_package_is_refused_wherever_it_is_cut(world, tmp_path):
    _, _, packages, region = world
    data = packages["2326"].read_bytes()
    before = snapshot(region)
    con = connect(region)
    bad = tmp_path / "cut.zip"
    cuts = [*range(0, len(data), 61), *range(len(data) - 40, len(data))]
    for cut in cuts:
        bad.write_bytes(data[:cut])
        with pytest.raises(PackageError, match="refused: (not a readable package|.* is damaged|.*SHA-256)"):
            import_packages(con, [bad])
    con.close()
    assert snapshot(region) == before and len(cuts) > 100


def test_container_shape_is_enforced(world, tmp_path):
    _, _, packages, region = world
    members = read_members(packages["2326"])
    extra, deflated = tmp_path / "extra.zip", tmp_path / "deflated.zip"
    with zipfile.ZipFile(extra, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("notes.txt", "free text")
    refused(region, extra, "must hold exactly")
    with zipfile.ZipFile(deflated, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    refused(region, deflated, "compressed")
    (tmp_path / "text.zip").write_text("hello")
    refused(region, tmp_path / "text.zip", "not a readable package")


def test_wrong_types_or_extra_columns_are_refused(world, tmp_path):
    _, _, packages, region = world
    wide = repack(packages["2361"], tmp_path / "wide.zip",
                  records=lambda t: t.append_column("note", pa.array(["free text"] * t.num_rows)))
    refused(region, wide, "does not have the contract's columns")
    typed = repack(packages["2361"], tmp_path / "typed.zip",
                   records=lambda t: t.set_column(4, "birth_year", t.column("birth_year").cast(pa.int64())))
    refused(region, typed, "does not have the contract's columns")
