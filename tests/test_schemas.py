"""The record contract's files: generated JSON Schema up to date, code lists well formed, profiles valid."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from isu.schemas import code_list, code_list_names, load_profile, profile_names
from isu.schemas.codes import CODES_DIR
from isu.schemas.jsonschema import JSON_DIR, generate
from isu.schemas.profiles import LONG_FIELDS, RECORD_FIELDS

REFERENCE = Path("/work/shared/reference/municipalities.csv")


def test_json_schema_is_up_to_date():
    for name, text in generate().items():
        path = JSON_DIR / name
        assert path.is_file(), f"{path} is missing: run python -m isu.schemas.jsonschema"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} differs from what the models generate: run python -m isu.schemas.jsonschema")
    assert {p.name for p in JSON_DIR.glob("*.json")} == set(generate()), "stale files in schemas/json/"


def test_json_schema_names_the_code_lists():
    import json

    schema = json.loads(generate()["follow_up_record.schema.json"])
    text = json.dumps(schema)
    for name in ("municipalities", "need_areas", "intervention_categories", "instruments", "timepoints"):
        assert f'"x-code-list": "{name}"' in text


@pytest.mark.parametrize("name", code_list_names())
def test_code_list_has_codes_and_both_labels(name):
    with (CODES_DIR / f"{name}.csv").open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        fields = reader.fieldnames or []
    key = "local_code" if name == "intervention_mapping" else "code"
    assert fields[0] == key, f"{name}.csv: the first column must be {key}"
    assert rows, f"{name}.csv is empty"
    if name != "intervention_mapping":  # a mapping, labelled in Swedish only
        assert {"label_sv", "label_en"} <= set(fields), f"{name}.csv needs label_sv and label_en"
        assert all(r["label_sv"].strip() and r["label_en"].strip() for r in rows), f"{name}.csv has empty labels"
    codes = [r[key].strip() for r in rows]
    assert all(codes), f"{name}.csv has an empty code"
    assert len(codes) == len(set(codes)), f"{name}.csv repeats codes"
    assert list(code_list(name).codes) == codes


def test_intervention_mapping_points_at_categories():
    categories = set(code_list("intervention_categories").codes)
    assert {r["category"] for r in code_list("intervention_mapping").rows} <= categories


def test_labels_do_not_collide_across_codes():
    """Labels are accepted in place of codes, so one label may not name two codes of a list."""
    for name in code_list_names():
        if name == "intervention_mapping":
            continue
        seen: dict[str, str] = {}
        for r in code_list(name).rows:
            for text in {r["code"], r["label_sv"], r["label_en"]}:
                other = seen.setdefault(text.strip().lower(), r["code"])
                assert other == r["code"], f"{name}: {text!r} names both {other} and {r['code']}"


def test_municipalities_all_290_with_county_prefix():
    rows = code_list("municipalities").rows
    assert len(rows) == 290
    for r in rows:
        assert len(r["code"]) == 4 and r["code"].isdigit(), r
        assert r["code"][:2] == r["county_code"], r
    assert len({r["county_code"] for r in rows}) == 21


@pytest.mark.skipif(not REFERENCE.is_file(), reason="shared reference list not present")
def test_municipalities_match_the_reference():
    with REFERENCE.open(encoding="utf-8", newline="") as f:
        ref = {r["municipality_code"]: (r["municipality_name"], r["county_code"], r["county_name"]) for r in csv.DictReader(f)}
    ours = {r["code"]: (r["label_sv"], r["county_code"], r["county_sv"]) for r in code_list("municipalities").rows}
    assert ours == ref


def test_instruments_have_usable_ranges():
    for r in code_list("instruments").rows:
        lo, hi = float(r["min"]), float(r["max"])
        assert lo < hi, r
        assert 0 < float(r["reliability"]) < 1 and float(r["reference_sd"]) > 0, r
        assert r["higher_is_better"] in ("true", "false"), r
        if r.get("cutoff"):
            assert lo <= float(r["cutoff"]) <= hi, r


@pytest.mark.parametrize("name", profile_names())
def test_shipped_profile_loads_and_names_contract_fields(name):
    p = load_profile(name)
    assert p.shape in ("wide", "long")
    assert set(p.columns) <= set(RECORD_FIELDS)
    assert set(p.long) <= set(LONG_FIELDS)
    assert {"record_key", "need_area", "intervention_code", "started_on"} <= set(p.columns)
    assert {"person_id", "client"} & set(p.columns)
    record_cols = list(p.columns.values()) + list(p.long.values())
    values = [spec["value"] for g in p.groups for spec in g.timepoints.values()]
    dates = {spec.get("date") for g in p.groups for spec in g.timepoints.values()}  # groups may share a date
    own = record_cols + values
    assert len(own) == len(set(own)) and not dates & set(own), f"profile {name} maps one source column to two fields"
    if p.shape == "wide":
        assert p.groups, f"wide profile {name} has no [[measurements]]"
        for g in p.groups:
            assert set(g.timepoints) <= set(code_list("timepoints").codes)
            assert g.instrument is None or g.instrument in code_list("instruments")
    for field, mapping in p.values.items():
        assert field in RECORD_FIELDS or field in LONG_FIELDS, f"profile {name}: [values.{field}] is not a field"
        lists = {"sex": "sexes", "provider": "providers", "goal_attainment": "goal_attainment", "timepoint": "timepoints",
                 "need_area": "need_areas", "end_reason": "end_reasons", "legal_basis": "legal_bases",
                 "instrument": "instruments"}
        if field in lists:
            assert set(mapping.values()) <= set(code_list(lists[field]).codes), f"profile {name}: [values.{field}]"
    assert set(p.categories.values()) <= set(code_list("intervention_categories").codes)
