"""Pool import semantics: key fingerprints, re-sent and newer packages, movers, contract checks, atomicity."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from test_pool_helpers import (
    JAMTLAND,
    export_all,
    fill_workspace,
    people_of,
    person_id,
    repack,
    set_column,
    snapshot,
)

from isu.errors import PackageError
from isu.keys import new_key
from isu.pool_import import _belong, _strictly_increasing
from isu.pool import ALREADY, IMPORTED, SUPERSEDED, export_package, import_packages
from isu.store import connect


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("pool")
    key = new_key(d / "pool.key")
    return d, key, export_all(d, key)


@pytest.fixture
def region(tmp_path):
    path = tmp_path / "region.duckdb"
    connect(path, create=True).close()
    return path


def run(region, packages, **kw) -> dict:
    con = connect(region)
    try:
        return import_packages(con, packages, **kw)
    finally:
        con.close()


def query(region, sql):
    con = connect(region, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def assert_unique(region) -> None:
    """The store's keys are unique (no index holds them so: pool import must)."""
    for table, keys in (("records", "municipality, record_key"),
                        ("measurements", "municipality, record_key, timepoint, instrument")):
        [(n, distinct)] = query(region, f"SELECT count(*), count(DISTINCT ({keys})) FROM {table}")
        assert n == distinct, f"{table}: {n - distinct} duplicate keys"


def refused(region, packages, match, **kw):
    before = snapshot(region)
    with pytest.raises(PackageError, match=match) as e:
        run(region, packages, **kw)
    assert snapshot(region) == before and "\n" not in str(e.value)
    return str(e.value)


def test_five_municipalities_make_one_region(world, region):
    _, key, packages = world
    s = run(region, list(packages.values()))
    assert s["imported"] == 5 and s["key_fingerprint"] == key.fingerprint
    rows = dict(query(region, "SELECT municipality, count(*) FROM records GROUP BY 1"))
    assert rows == {code: 14 for code in JAMTLAND}
    assert query(region, "SELECT count(*), count(DISTINCT file_sha256) FROM imports WHERE kind = 'pool'") == [(5, 5)]
    assert query(region, "SELECT value FROM meta WHERE key = 'key_fingerprint'") == [(key.fingerprint,)]
    # every measurement has its record; records carry the pool import's id
    assert query(region, "SELECT count(*) FROM measurements m ANTI JOIN records r USING (municipality, record_key)") == [(0,)]
    assert query(region, "SELECT count(*) FROM records r ANTI JOIN imports i USING (import_id)") == [(0,)]


def test_movers_are_one_client_at_region_level(world, region):
    _, _, packages = world
    run(region, list(packages.values()))
    (region_clients,), = query(region, "SELECT count(DISTINCT client) FROM records")
    (summed,), = query(region, "SELECT sum(n) FROM (SELECT count(DISTINCT client) AS n FROM records GROUP BY municipality)")
    people = {p for i in range(5) for p in people_of(i)}
    assert region_clients == len(people) == 54 and summed == 70 and region_clients < summed
    movers = query(region, "SELECT client FROM records GROUP BY client HAVING count(DISTINCT municipality) > 1")
    assert len(movers) == 16


def test_the_same_package_twice_changes_nothing(world, region):
    _, _, packages = world
    run(region, [packages["2303"]])
    before = snapshot(region)
    s = run(region, [packages["2303"], packages["2303"]])
    assert [p["status"] for p in s["packages"]] == [ALREADY, ALREADY]
    assert snapshot(region) == before


def test_the_same_package_listed_twice_in_one_command_imports_once(world, region):
    _, _, packages = world
    s = run(region, [packages["2305"], packages["2305"]])
    assert [p["status"] for p in s["packages"]] == [IMPORTED, ALREADY]


def _newer_2303(world, tmp_path):
    _, key, _ = world
    db = tmp_path / "2303-new.duckdb"
    fill_workspace(db, key, "2303", people_of(0)[:6] + [900, 901, 902], seed=7, version=2)
    con = connect(db, read_only=True)
    export_package(con, tmp_path / "2303-new.zip")
    con.close()
    return tmp_path / "2303-new.zip", db


def test_a_newer_package_replaces_the_municipality_and_nothing_else(world, region, tmp_path):
    _, _, packages = world
    run(region, list(packages.values()))
    others = query(region, "SELECT * FROM records WHERE municipality <> '2303' ORDER BY ALL")
    newer, source = _newer_2303(world, tmp_path)
    s = run(region, [newer])
    (r,) = s["packages"]
    assert r["status"] == IMPORTED and (r["records_new"], r["records_replaced"], r["records_removed"]) == (9, 0, 14)
    assert query(region, "SELECT * FROM records WHERE municipality <> '2303' ORDER BY ALL") == others
    cols = "municipality, record_key, client, sex, birth_year, need_area, started_on, ended_on, goal_attainment"
    con = connect(source, read_only=True)
    expected = con.execute(f"SELECT {cols} FROM records ORDER BY ALL").fetchall()
    expected_m = con.execute("SELECT * FROM measurements ORDER BY ALL").fetchall()
    con.close()
    assert query(region, f"SELECT {cols} FROM records WHERE municipality = '2303' ORDER BY ALL") == expected
    assert query(region, "SELECT * FROM measurements WHERE municipality = '2303' ORDER BY ALL") == expected_m
    # the old package again (even renamed) was imported before: nothing changes
    before = snapshot(region)
    renamed = shutil.copy(packages["2303"], tmp_path / "resent.zip")
    assert [p["status"] for p in run(region, [packages["2303"], renamed])["packages"]] == [ALREADY, ALREADY]
    assert snapshot(region) == before
    assert_unique(region)


def test_older_package_after_a_newer_one_is_superseded(world, region, tmp_path):
    _, _, packages = world
    newer, _ = _newer_2303(world, tmp_path)
    run(region, [newer])
    before = snapshot(region)
    s = run(region, [packages["2303"]])
    assert s["packages"][0]["status"] == SUPERSEDED and snapshot(region) == before


def test_within_one_command_the_newest_package_wins(world, region, tmp_path):
    _, _, packages = world
    newer, _ = _newer_2303(world, tmp_path)
    s = run(region, [newer, packages["2303"]])
    assert [p["status"] for p in s["packages"]] == [IMPORTED, IMPORTED]
    assert s["packages"][1]["package"] == str(newer)
    assert query(region, "SELECT count(*) FROM records WHERE record_key LIKE '%-v2'") == [(9,)]
    assert_unique(region)


def test_a_package_made_with_another_key_is_refused(world, region, tmp_path):
    _, key, packages = world
    run(region, [packages["2303"]])
    other = new_key(tmp_path / "other.key")
    foreign_dir = tmp_path / "foreign"
    foreign_dir.mkdir()
    foreign = export_all(foreign_dir, other, codes=("2305",))["2305"]
    msg = refused(region, [foreign], "made with key .* but this region's data use key")
    assert other.fingerprint in msg and key.fingerprint in msg
    # an empty region takes its fingerprint from --key-file when one is given
    empty = tmp_path / "empty.duckdb"
    connect(empty, create=True).close()
    refused(empty, [packages["2305"]], "--key-file has", key_fingerprint=other.fingerprint)
    assert run(empty, [packages["2305"]], key_fingerprint=key.fingerprint)["imported"] == 1


def test_a_refused_package_leaves_the_whole_command_undone(world, region, tmp_path):
    _, _, packages = world
    bad = repack(packages["2361"], tmp_path / "bad.zip",
                 records=lambda t: set_column(t, "need_area", ["cooking"] * t.num_rows))
    refused(region, [packages["2303"], packages["2305"], bad], "bad.zip refused: 14 rows in records.parquet: "
            "need_area is not a code in the list 'need_areas'")
    assert query(region, "SELECT count(*) FROM records") == [(0,)]


def _edit(name, values_for):
    return lambda t: set_column(t, name, values_for(t))


@pytest.mark.parametrize("table, edit, match", [
    ("records", _edit("client", lambda t: [c.upper() for c in t.column("client").to_pylist()]), "client does not match"),
    ("records", _edit("client", lambda t: [person_id(i) for i in range(t.num_rows)]), "client does not match"),
    ("records", _edit("record_key", lambda t: [f"K{person_id(i)}" for i in range(t.num_rows)]), "person id"),
    ("records", _edit("intervention_code", lambda t: [person_id(1)] * t.num_rows), "person id"),
    ("records", _edit("sex", lambda t: ["X"] * t.num_rows), "sex is not a code"),
    ("records", _edit("birth_year", lambda t: [1800] * t.num_rows), "birth_year is below 1900"),
    ("records", _edit("category", lambda t: [None] * t.num_rows), "category is empty"),
    ("records", _edit("ended_on", lambda t: [date(2020, 1, 1)] * t.num_rows), "ended_on is before started_on"),
    ("records", _edit("started_on", lambda t: [date(1980, 1, 1)] * t.num_rows), "started_on is below"),
    ("measurements", _edit("value", lambda t: [9.0] * t.num_rows), "outside the instrument's range"),
    ("measurements", _edit("value", lambda t: [float("nan")] * t.num_rows), "not a finite number|outside"),
    ("measurements", _edit("instrument", lambda t: ["iq"] * t.num_rows), "instrument is not a code"),
    ("measurements", _edit("record_key", lambda t: ["ZZZ"] * t.num_rows), "belong to no record"),
    ("records", lambda t: pa.concat_tables([t, t.slice(0, 1)]), "duplicate keys"),
    ("measurements", lambda t: pa.concat_tables([t, t.slice(0, 1)]), "duplicate keys"),
    ("records", lambda t: pa.concat_tables([t.slice(0, 1), t]), "duplicate keys"),  # in key order otherwise
    ("measurements", lambda t: pa.concat_tables([t.slice(0, 1), t]), "duplicate keys"),
])
def test_rows_that_break_the_contract_are_refused(world, region, tmp_path, table, edit, match):
    _, _, packages = world
    bad = repack(packages["2326"], tmp_path / "bad.zip", **{table: edit})
    msg = refused(region, [bad], match)
    assert not any(person_id(i) in msg or person_id(i)[2:] in msg for i in range(20))


def test_keys_in_order_are_proven_unique_and_other_orders_are_grouped():
    keys = ("municipality", "record_key", "timepoint")
    t = pa.table({"municipality": pa.array(["2303", "2303", "2303", "2326"]).dictionary_encode(),
                  "record_key": ["a", "a", "b", "a"], "timepoint": ["T0", "T1", "T0", "T0"]})
    assert _strictly_increasing(t, keys)
    assert _strictly_increasing(t.slice(0, 1), keys) and _strictly_increasing(t.slice(0, 0), keys)
    assert not _strictly_increasing(pa.concat_tables([t.slice(0, 1), t]), keys)  # a key twice, side by side
    assert not _strictly_increasing(t.take([1, 0, 2, 3]), keys)
    with_null = t.set_column(2, "timepoint", pa.array(["T0", None, "T0", "T0"]))
    assert not _strictly_increasing(with_null, keys)


def test_measurements_are_proven_to_belong_only_for_one_municipality_without_null_keys():
    def table(munis, keys):
        return pa.table({"municipality": pa.array(munis).dictionary_encode(), "record_key": keys})

    records = table(["2303"] * 3, ["a", "b", "c"])
    assert _belong(records, table(["2303"] * 3, ["a", "a", "c"]))
    assert not _belong(records, table(["2303"] * 2, ["a", "d"]))
    assert not _belong(records, table(["2303"] * 2, ["a", None]))
    assert not _belong(records, table(["2326"], ["a"]))  # another municipality: left to the join
    assert not _belong(table(["2303", "2326"], ["a", "a"]), table(["2303"], ["a"]))


def test_a_package_whose_rows_are_not_in_key_order_is_imported(world, region, tmp_path):
    _, _, packages = world
    flipped = repack(packages["2326"], tmp_path / "flipped.zip",
                     records=lambda t: t.take(list(range(t.num_rows))[::-1]),
                     measurements=lambda t: t.take(list(range(t.num_rows))[::-1]))
    assert run(region, [flipped])["imported"] == 1


def test_a_municipality_outside_the_code_list_is_refused(world, region, tmp_path):
    _, _, packages = world

    def recode(t):
        return set_column(t, "municipality", ["9999"] * t.num_rows)

    bad = repack(packages["2326"], tmp_path / "bad.zip", records=recode, measurements=recode)
    refused(region, [bad], "municipality is not a code in the list 'municipalities'")


def test_period_and_counts_are_held_to_the_rows(world, region, tmp_path):
    _, _, packages = world
    shifted = repack(packages["2326"], tmp_path / "shift.zip", manifest_edit=lambda m: {
        **m, "municipalities": [{**m["municipalities"][0], "period": {
            "first": str(date.fromisoformat(m["municipalities"][0]["period"]["first"]) - timedelta(days=1)),
            "last": m["municipalities"][0]["period"]["last"]}}]})
    refused(region, [shifted], "do not match the manifest")
    empty_ok = repack(packages["2326"], tmp_path / "fewer.zip",
                      measurements=lambda t: t.filter(pc.equal(t.column("timepoint"), "T0")))
    assert run(region, [empty_ok])["imported"] == 1


def test_a_package_of_two_municipalities_and_a_newer_one_of_one(world, region, tmp_path):
    _, key, _ = world
    both_db = tmp_path / "both.duckdb"
    fill_workspace(both_db, key, "2303", people_of(0))
    fill_workspace(both_db, key, "2305", people_of(1), seed=1)
    con = connect(both_db, read_only=True)
    export_package(con, tmp_path / "both.zip")
    con.close()
    newer, _ = _newer_2303(world, tmp_path)
    for i, order in enumerate(([tmp_path / "both.zip", newer], [newer, tmp_path / "both.zip"])):
        db = tmp_path / f"r{i}.duckdb"
        connect(db, create=True).close()
        assert run(db, order)["imported"] == 2
        # 2305 comes from the two-municipality package, 2303 from the newer one, whatever the order
        assert query(db, "SELECT municipality, count(*), min(record_key LIKE '%-v2') FROM records GROUP BY 1 "
                         "ORDER BY 1") == [("2303", 9, True), ("2305", 14, False)]
    # across commands: the two-municipality package is now older for 2303 but not for 2305: refused
    db = tmp_path / "r-late.duckdb"
    connect(db, create=True).close()
    run(db, [newer])
    refused(db, [tmp_path / "both.zip"], "some of its municipalities already have newer packages")


def test_chunks_give_the_same_result_as_one_transaction(world, tmp_path, monkeypatch):
    import isu.pool_import

    _, _, packages = world
    newer, _ = _newer_2303(world, tmp_path)
    order = [*packages.values(), newer]
    whole, chunked = tmp_path / "whole.duckdb", tmp_path / "chunked.duckdb"
    for db in (whole, chunked):
        connect(db, create=True).close()
    a = run(whole, order)
    monkeypatch.setattr(isu.pool_import, "CHUNK_RECORDS", 20)  # one or two packages per chunk
    b = run(chunked, order)
    assert snapshot(whole, ids=False) == snapshot(chunked, ids=False)
    assert_unique(whole)
    assert_unique(chunked)
    strip = lambda s: [{k: v for k, v in p.items() if k != "import_id"} for p in s["packages"]]
    assert strip(a) == strip(b)
    assert [p["records_removed"] for p in b["packages"] if p["package"] == str(newer)] == [14]


def test_a_refusal_in_a_later_chunk_undoes_the_chunks_already_written(world, region, tmp_path, monkeypatch):
    import isu.pool_import

    _, _, packages = world
    bad = repack(packages["2326"], tmp_path / "bad.zip",
                 records=lambda t: set_column(t, "sex", ["X"] * t.num_rows))
    good = [p for code, p in packages.items() if code != "2326"]
    monkeypatch.setattr(isu.pool_import, "CHUNK_RECORDS", 20)  # one or two packages per chunk
    written = []
    apply = isu.pool_import._apply
    monkeypatch.setattr(isu.pool_import, "_apply", lambda *a: written.append(1) or apply(*a))
    refused(region, [*good, bad], "sex is not a code")
    assert written  # earlier chunks had been written inside the transaction, then rolled back
