"""Tests of the synthetic sample data: determinism, committed files, encodings, person ids, faults.

The files are checked against the record contract by a small reference reader written here (the
profile's columns and value tables, the code lists' aliases, python-stdnum for person ids, the
pydantic models for everything else), independent of the importer: each file's failing rows must
be exactly the manifest's planted bad rows, each failing for its one stated reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import fastexcel
import numpy as np
import pydantic
import pytest
from scipy.stats import spearmanr
from stdnum import luhn
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.se import personnummer

from isu.sample_data import FILES_DIR, MANIFEST_NAME, demo_files, generate, load_manifest, write_benchmark_csv
from isu.sample_data import faults, model
from isu.sample_data.generate import _simulate
from isu.sample_data.person_ids import luhn_check_digits
from isu.schemas import FollowUpRecord, Profile, code_list, load_profile

PID = re.compile(r"(\d{2})?(\d{6})([-+]?)(\d{4})")


# ---------------------------------------------------------------- reference reader


def read_table(path: Path, fmt: str, encoding: str | None, delimiter: str | None) -> tuple[list[str], list[list]]:
    if fmt == "xlsx":
        df = fastexcel.read_excel(path).load_sheet(0, dtypes="string").to_polars()
        return df.columns, [list(r) for r in df.iter_rows()]
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode(encoding), newline=""), delimiter=delimiter))
    return rows[0], [[c if c != "" else None for c in r] for r in rows[1:]]


def check_pid(text: str) -> tuple[str | None, Exception | None]:
    """(12-digit canonical id, None) for a valid personnummer/samordningsnummer, else (None, error)."""
    m = PID.fullmatch(text.strip())
    if not m:
        return None, ValueError(f"not an id: {text!r}")
    century, ymd, sep, tail = m.groups()
    day = int(ymd[4:6])
    real = f"{ymd[:4]}{day - 60:02d}" if day > 60 else ymd  # samordningsnummer: day + 60
    as_printed, real_date = f"{century or ''}{ymd}{sep or '-'}{tail}", f"{century or ''}{real}{sep or '-'}{tail}"
    try:
        if day > 60:  # stdnum knows no samordningsnummer: check the real date, then Luhn as printed
            personnummer.get_birth_date(real_date)
            luhn.validate(ymd + tail)
        else:
            personnummer.validate(as_printed)
    except ValidationError as e:
        return None, e
    born = personnummer.get_birth_date(real_date)
    return f"{born.year // 100}{ymd}{tail}", None


class Reader:
    """Turns rows of a profile into contract records and says why a row is invalid (one reason)."""

    def __init__(self, profile: Profile):
        self.p = profile
        self.mapping = {r["code"]: r["category"] for r in code_list("intervention_mapping").rows}
        self.aliases: dict[str, dict[str, str]] = {}

    def code(self, fld: str, value: str | None, list_name: str) -> str | None:
        if value is None:
            return None
        value = self.p.values.get(fld, {}).get(value, value)
        if list_name not in self.aliases:
            self.aliases[list_name] = code_list(list_name).aliases()
        return self.aliases[list_name].get(value.strip().lower(), value)

    def day(self, value: str | None, problems: list[str]) -> date | None | str:
        if value is None:
            return None
        for fmt in (*self.p.date_formats, "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                pass
        problems.append("bad_date")
        return "bad"

    def number(self, value: str | None) -> float | None:
        return None if value is None else float(value.replace(self.p.decimal, ".") if self.p.decimal == "," else value)

    def measurements(self, get, problems: list[str]) -> list[dict]:
        out = []
        if self.p.shape == "long":
            specs = [(get(self.p.long["timepoint"]), get(self.p.long["instrument"]), get(self.p.long["value"]),
                      get(self.p.long.get("measured_on", "")))]
            specs = [(self.code("timepoint", tp, "timepoints"), *rest) for tp, *rest in specs]
        else:
            specs = [(tp, g.instrument or get(g.instrument_column), get(c["value"]), get(c.get("date", "")))
                     for g in self.p.groups for tp, c in g.timepoints.items()]
        for tp, instrument, value, day in specs:
            if value is None and day is None:
                continue
            measured = self.day(day, problems)
            out.append({"timepoint": tp, "instrument": self.code("instrument", instrument, "instruments"),
                        "value": self.number(value), **({"measured_on": measured} if isinstance(measured, date) else {})})
        return out

    def row(self, header: list[str], cells: list) -> tuple[list[str], str | None, dict]:
        """(problems, client, record fields for cross-row checks) of one data row."""
        get = dict(zip(header, cells)).get
        col = lambda f: get(self.p.columns[f]) if f in self.p.columns else None  # noqa: E731
        problems: list[str] = []
        client, birth_year, sex = col("client"), None, self.code("sex", col("sex"), "sexes")
        pseudonym = client
        if col("person_id") is not None:
            client, err = check_pid(col("person_id"))
            pseudonym = hashlib.sha256(client.encode()).hexdigest() if client else "0" * 64
            problems += ["invalid_person_id"] if err else []
            birth_year = int(client[:4]) if client else None
        elif client is None:
            problems.append("missing_identity")
            pseudonym = "0" * 64
        elif col("birth_year"):
            birth_year = int(col("birth_year"))
        started, ended = self.day(col("started_on"), problems), self.day(col("ended_on"), problems)
        if started == "bad":
            started = ended if isinstance(ended, date) else date(1990, 1, 1)
        category = self.mapping.get(col("intervention_code") or "")
        if col("intervention_code") is not None and category is None:
            problems.append("unknown_intervention_code")
        intervention = {
            "intervention_code": col("intervention_code"), "category": category or "case_management",
            "legal_basis": self.code("legal_basis", col("legal_basis"), "legal_bases"),
            "provider": self.code("provider", col("provider"), "providers"), "started_on": started,
            "ended_on": ended if isinstance(ended, date) else None,
            "end_reason": self.code("end_reason", col("end_reason"), "end_reasons"),
        }
        record = {
            "municipality": col("municipality"), "record_key": col("record_key"),
            "client": pseudonym, "sex": sex, "birth_year": birth_year,
            "need": {"need_area": self.code("need_area", col("need_area"), "need_areas")},
            "intervention": {k: v for k, v in intervention.items() if v is not None},
            "outcome": {"goal_attainment": self.code("goal_attainment", col("goal_attainment"), "goal_attainment"),
                        "measurements": self.measurements(get, problems)},
        }
        try:
            FollowUpRecord.model_validate(_drop_none(record))
        except pydantic.ValidationError as e:
            problems += [_error_type(err) for err in e.errors()]
        return problems, client, {k: v for k, v in record.items() if k not in ("outcome",)}

    def check(self, header: list[str], rows: list[list]) -> tuple[dict[int, str], list[str | None]]:
        """({row number: error type} for failing rows, client per row); one reason per failing row."""
        results = [self.row(header, r) for r in rows]
        by_key: dict[tuple, list[int]] = defaultdict(list)
        for n, (_, _, rec) in enumerate(results, 1):
            key = (rec["municipality"], rec["record_key"])
            if self.p.shape == "long":
                m = (self.code("timepoint", dict(zip(header, rows[n - 1]))[self.p.long["timepoint"]], "timepoints"),
                     dict(zip(header, rows[n - 1]))[self.p.long["instrument"]])
                key += m
            by_key[key].append(n)
        dup = "duplicate_measurement" if self.p.shape == "long" else "duplicate_key"
        for numbers in by_key.values():
            for n in numbers if len(numbers) > 1 else ():
                results[n - 1][0].append(dup)
        errors = {}
        for n, (problems, _, _) in enumerate(results, 1):
            assert len(problems) <= 1, f"row {n} fails for more than one reason: {problems}"
            if problems:
                errors[n] = problems[0]
        return errors, [client for _, client, _ in results]


def _drop_none(d):
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return [_drop_none(v) for v in d] if isinstance(d, list) else d


def _error_type(err: dict) -> str:
    msg = err["msg"]
    if err["type"] == "missing":
        return "missing_value"
    if "not in the code list" in msg:
        return "not_in_code_list"
    if "ended_on is before started_on" in msg:
        return "date_order"
    if "outside the instrument's range" in msg:
        return "out_of_range"
    return f"unexpected: {err['loc']} {msg}"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate(out)
    return out


@pytest.fixture(scope="module")
def manifest(fresh) -> dict:
    return load_manifest(fresh)


@pytest.fixture(scope="module")
def checked(fresh, manifest) -> dict[str, tuple]:
    """Per file: header, rows, reference reader's errors and clients."""
    out = {}
    for e in manifest["files"]:
        enc = f"{e['encoding']}-sig" if e["bom"] else e["encoding"]
        header, rows = read_table(fresh / e["file"], e["format"], enc, e["delimiter"])
        errors, clients = Reader(load_profile(e["profile"])).check(header, rows)
        out[e["file"]] = (header, rows, errors, clients)
    return out


# ---------------------------------------------------------------- determinism and committed files


def test_committed_files_are_what_the_generator_makes_now(fresh, manifest):
    names = [e["file"] for e in manifest["files"]] + [MANIFEST_NAME]
    assert sorted(p.name for p in FILES_DIR.iterdir() if p.name != "__pycache__") == sorted(names), \
        "sample_data/files is out of date: run  python -m isu.sample_data sample_data/files"
    for name in names:
        assert (FILES_DIR / name).read_bytes() == (fresh / name).read_bytes(), \
            f"{name} differs from the generator's output: run  python -m isu.sample_data sample_data/files"
    assert demo_files() == [FILES_DIR / e["file"] for e in manifest["files"]]


def test_another_seed_gives_other_data(tmp_path, manifest):
    other = generate(tmp_path, seed=7)
    assert other[-1].name == MANIFEST_NAME
    sums = {e["file"]: e["sha256"] for e in load_manifest(tmp_path)["files"]}
    assert all(sums[e["file"]] != e["sha256"] for e in manifest["files"])


def test_committed_files_are_small():
    assert sum(p.stat().st_size for p in FILES_DIR.iterdir()) < 1_500_000


# ---------------------------------------------------------------- what the manifest promises


def test_manifest_describes_each_file(fresh, manifest, checked):
    sodertorn = code_list("pools").row("sodertorn")["municipalities"].split()
    rural = code_list("pools").row("jamtland_rural")["municipalities"].split()
    assert {c for e in manifest["files"] for c in e["municipalities"]} == set(sodertorn) | set(rural)
    for e in manifest["files"]:
        data = (fresh / e["file"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (e["bytes"], e["sha256"])
        header, rows, _, _ = checked[e["file"]]
        assert header == e["columns"] and len(rows) == e["rows"]
        assert {r[header.index(load_profile(e["profile"]).columns["municipality"])] for r in rows} == set(e["municipalities"])
    assert {e["shape"] for e in manifest["files"]} == {"wide", "long"}
    assert {(e["format"], e["encoding"], e["bom"]) for e in manifest["files"]} >= {
        ("csv", "cp1252", False), ("csv", "utf-8", True), ("xlsx", None, False), ("csv", "utf-8", False)}
    t = manifest["totals"]
    assert t["rows"] == t["accepted_rows"] + t["rejected_rows"] == sum(e["rows"] for e in manifest["files"])


def test_headers_fit_their_profiles(manifest, checked):
    for e in manifest["files"]:
        prof = load_profile(e["profile"])
        header = checked[e["file"]][0]
        assert set(header) <= set(prof.source_columns()), e["file"]
        needed = ["municipality", "record_key", "person_id", "need_area", "intervention_code", "started_on"]
        assert all(prof.columns[f] in header for f in needed), e["file"]


def test_encodings_are_as_declared(fresh, manifest):
    for e in manifest["files"]:
        data = (fresh / e["file"]).read_bytes()
        if e["format"] == "xlsx":
            assert data[:2] == b"PK"
            continue
        assert data.startswith(b"\xef\xbb\xbf") == e["bom"]
        if e["encoding"] == "cp1252":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            assert any(ch in data.decode("cp1252") for ch in "åäö")
        else:
            data.decode("utf-8")
        first = data.split(b"\n", 1)[0]
        assert first.count(e["delimiter"].encode()) == len(e["columns"]) - 1
        assert first.endswith(b"\r") == (e["newline"] == "\r\n")


def test_planted_bad_rows_are_exactly_the_rows_that_fail(manifest, checked):
    for e in manifest["files"]:
        header, rows, errors, clients = checked[e["file"]]
        assert errors == {b["row"]: b["error_type"] for b in e["bad_rows"]}, e["file"]
        assert Counter(errors.values()) == Counter(e["rejected_by_type"]), e["file"]
        assert len(rows) - len(errors) == e["accepted_rows"]
        key = header.index(load_profile(e["profile"]).columns["record_key"])
        good = [n for n in range(1, len(rows) + 1) if n not in errors]
        assert len({rows[n - 1][key] for n in good}) == e["accepted_records"]
        assert len({clients[n - 1] for n in good}) == e["clients"]
        for b in e["bad_rows"]:
            assert rows[b["row"] - 1][key] == b["record_key"] and b["column"] in header
    kinds = Counter(b["fault"] for e in manifest["files"] for b in e["bad_rows"])
    assert set(kinds) == set(faults.KINDS)
    by_shape = defaultdict(set)
    for e in manifest["files"]:
        by_shape[(e["profile"], e["format"])] |= {b["fault"] for b in e["bad_rows"]}
    assert all(v == set(faults.KINDS) for k, v in by_shape.items() if k[0] != "regional_sv")


def test_error_types_are_the_importers():
    from isu.catalogue import CATALOGUE

    types = {faults.error_type(k, f, s) for k in faults.KINDS for f in (None, "person_id") for s in ("wide", "long")}
    assert types <= set(CATALOGUE)


# ---------------------------------------------------------------- person ids


def test_person_ids_are_valid_synthetic_and_varied(manifest, checked):
    forms, coordination = Counter(), 0
    for e in manifest["files"]:
        header, rows, errors, _ = checked[e["file"]]
        col = header.index(load_profile(e["profile"]).columns["person_id"])
        for n, r in enumerate(rows, 1):
            pid = r[col]
            if errors.get(n) == "invalid_person_id":
                assert isinstance(check_pid(pid)[1], InvalidChecksum)
                continue
            if pid is None:
                assert errors.get(n) == "missing_identity"
                continue
            assert check_pid(pid)[0] is not None, pid
            forms["short" if len(pid) == 11 else "long" if "-" in pid else "digits"] += 1
            coordination += int(PID.fullmatch(pid).group(2)[4]) >= 6
    assert set(forms) == {"short", "long", "digits"} and min(forms.values()) > 50
    assert 0.01 < coordination / sum(forms.values()) < 0.06


def test_luhn_check_digits_agree_with_stdnum():
    nine = np.random.default_rng(1).integers(0, 10, (500, 9))
    mine = luhn_check_digits(nine)
    assert all(str(c) == luhn.calc_check_digit("".join(map(str, d))) for d, c in zip(nine, mine))


def test_sex_column_agrees_with_the_person_id(manifest, checked):
    for e in manifest["files"]:
        prof = load_profile(e["profile"])
        header, rows, errors, _ = checked[e["file"]]
        pid, sex = header.index(prof.columns["person_id"]), header.index(prof.columns["sex"])
        reader = Reader(prof)
        for n, r in enumerate(rows, 1):
            if n not in errors:
                assert ("M" if int(check_pid(r[pid])[0][10]) % 2 else "F") == reader.code("sex", r[sex], "sexes")


# ---------------------------------------------------------------- pooling


def test_rural_municipalities_are_small_and_movers_link_by_person(manifest, checked):
    rural = [e for e in manifest["files"] if e["pool"] == "jamtland_rural"]
    assert all(8 <= e["accepted_records"] <= 32 for e in rural)
    for pool in ("sodertorn", "jamtland_rural"):
        files = [e for e in manifest["files"] if e["pool"] == pool]
        seen: dict[str, set[str]] = defaultdict(set)
        for e in files:
            _, _, errors, clients = checked[e["file"]]
            for n, c in enumerate(clients, 1):
                if n not in errors:
                    seen[c].add(e["municipalities"][0])
        entry = manifest["pools"][pool]
        assert len(seen) == entry["clients"] < sum(e["clients"] for e in files)
        movers = entry["movers"]
        assert movers and all(len(m["record_keys"]) == 2 for m in movers)
        assert sum(len(v) > 1 for v in seen.values()) >= len(movers)
    rural_keys = {e["municipalities"][0]: e for e in rural}
    printed = []
    for m in manifest["pools"]["jamtland_rural"]["movers"]:
        ids = set()
        for code, keys in m["record_keys"].items():
            e = rural_keys[code]
            header, rows, _, clients = checked[e["file"]]
            k, p = header.index("arendenr"), header.index("personnr")
            ids |= {(clients[i], rows[i][p]) for i, r in enumerate(rows) if r[k] in keys}
        assert len({c for c, _ in ids}) == 1
        printed.append(len({p for _, p in ids}) > 1)
    assert any(printed), "some mover's two municipalities print the same id in different forms"


# ---------------------------------------------------------------- realism of the simulated world


@pytest.fixture(scope="module")
def world():
    pools = _simulate(2026)
    return [r for pool in pools.values() for recs in pool.records.values() for r in recs]


def test_ages_dates_and_episodes_are_plausible(world):
    cats = {c.code: c for c in model.CATEGORIES}
    for r in world:
        age = (r.started_on - r.person.birth).days / 365.25
        lo, hi = cats[r.category].ages
        assert (age <= 21 if cats[r.category].youth else age >= 18), (r.category, age)
        assert lo - 0.01 <= age < hi + 2
        assert date(2023, 1, 1) <= r.started_on <= model.EXPORT_DATE
        assert r.ended_on is None or r.started_on <= r.ended_on <= model.EXPORT_DATE
        assert (r.ended_on is None) == (r.end_reason is None)
        assert all(m.measured_on <= model.EXPORT_DATE for m in r.measurements)
        assert r.person.sex == ("M" if r.person.serial % 2 else "F")


def test_attrition_goal_attainment_and_effects_behave(world):
    ended = [r for r in world if r.ended_on]
    dropouts = [r for r in ended if "T1" not in r.timepoints]
    assert 0.15 <= len(dropouts) / len(ended) <= 0.30
    sev = lambda rs: np.mean([r.measurements[0].value for r in rs if r.measurements[0].instrument == "severity04"])  # noqa: E731
    assert sev(dropouts) > sev([r for r in ended if "T1" in r.timepoints]) + 0.2
    change = {}
    pairs = []
    for r in ended:
        v = {m.timepoint: m.value for m in r.measurements if m.instrument == "severity04"}
        if "T1" in v:
            change.setdefault(r.category, []).append(v["T0"] - v["T1"])
            if r.goal_attainment != "not_assessed":
                rank = int(code_list("goal_attainment").row(r.goal_attainment)["rank"])
                pairs.append((v["T0"] - v["T1"], rank))
    assert spearmanr(*zip(*pairs)).statistic > 0.3
    assert np.mean(change["parenting_programme"]) > np.mean(change["residential_care"]) + 0.3
    assert any("T2" in r.timepoints for r in world)
    assert {m.instrument for r in world for m in r.measurements} == set(model.INSTRUMENT_CENTRES)


# ---------------------------------------------------------------- benchmark writer


def test_benchmark_file_rows_and_faults(tmp_path):
    a = write_benchmark_csv(tmp_path / "a.csv", 1200, bad_fraction=0.02, chunk_rows=500)
    b = write_benchmark_csv(tmp_path / "b.csv", 1200, bad_fraction=0.02, chunk_rows=500)
    assert a.path.read_bytes() == b.path.read_bytes()
    data = a.path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    header, rows = read_table(a.path, "csv", "cp1252", ";")
    assert len(rows) == a.rows == 1200 and data.count(b"\r\n") == 1201 and a.bytes == len(data)
    prof = load_profile("generic_sv")
    assert set(header) <= set(prof.source_columns()) and prof.columns["person_id"] in header
    errors, _ = Reader(prof).check(header, rows)
    assert Counter(errors.values()) == Counter(a.rejected) and set(a.faults) == set(faults.KINDS)
    assert a.accepted_rows == 1200 - len(errors)


def test_benchmark_pseudonymised_variant(tmp_path):
    f = write_benchmark_csv(tmp_path / "p.csv", 800, encoding="utf-8-sig", pseudonymised=True, bad_fraction=0.02)
    data = f.path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header, rows = read_table(f.path, "csv", "utf-8-sig", ";")
    prof = load_profile("generic_sv")
    assert prof.columns["client"] in header and prof.columns["birth_year"] in header
    assert prof.columns["person_id"] not in header
    errors, clients = Reader(prof).check(header, rows)
    assert Counter(errors.values()) == Counter(f.rejected) and "invalid_person_id" not in f.rejected
    assert all(re.fullmatch(r"[0-9a-f]{64}", c) for c in clients)
