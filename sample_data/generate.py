"""Write the demo exports and their manifest: Södertörn's ten municipalities and rural Jämtland.

Each municipality's case system exports in its own way, so the files exercise the importer:
wide semicolon CSV in Windows-1252 with YYYYMMDD dates, long semicolon CSV in UTF-8 with BOM,
XLSX with real date cells (all ``generic_sv``/``generic_sv_long``), and the rural municipalities'
comma-separated UTF-8 files on the ``regional_sv`` template, each too small to publish alone and
with clients who moved between them. ``manifest.json`` says, per file, how it is encoded and what
an importer must make of it: rows, accepted rows and records, the rejected rows by the importer's
error type and by planted fault (each bad row with its number, 1 = the first row after the
header) and the distinct clients, per file and per pool once records are linked by pseudonym.
The same seed gives the same bytes, so the committed copies in ``files/`` are checked by a test.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections import Counter
from pathlib import Path

import numpy as np

from isu.schemas import code_list, load_profile

from . import model
from .faults import KINDS, plant
from .render import FileSpec, Row, header, render, to_csv_bytes, write_xlsx
from .simulate import primary_instrument, simulate_pool

__all__ = ["generate", "file_specs", "DEFAULT_SEED", "MANIFEST_NAME"]

DEFAULT_SEED = model.DEFAULT_SEED
MANIFEST_NAME = "manifest.json"

#: How each case system exports (keyword arguments of ``FileSpec`` beyond file and municipality).
STYLES = {
    "wide": dict(profile="generic_sv", format="csv", encoding="cp1252", delimiter=";", date_format="%Y%m%d",
                 key_format="{year}-{episode:05d}-{part}", id_forms={"long": 0.7, "short": 0.2, "digits": 0.1}),
    "long": dict(profile="generic_sv_long", format="csv", encoding="utf-8-sig", delimiter=";",
                 date_format="%Y-%m-%d", key_format="{code}/{episode:06d}#{part}",
                 id_forms={"digits": 0.6, "long": 0.3, "short": 0.1}),
    "xlsx": dict(profile="generic_sv", format="xlsx", encoding=None, delimiter=None, date_format="%Y-%m-%d",
                 key_format="ISU.{code}.{episode}.{part}", id_forms={"long": 0.8, "short": 0.2}),
    "regional": dict(profile="regional_sv", format="csv", encoding="utf-8", delimiter=",", date_format="%Y-%m-%d",
                     key_format="{code}-{year}-{episode:04d}:{part}", lower_labels=True, newline="\n"),
}
SODERTORN_STYLE = {"0126": "wide", "0127": "wide", "0181": "wide", "0120": "wide", "0128": "wide",
                   "0136": "long", "0182": "long", "0192": "long", "0138": "xlsx", "0140": "xlsx"}
#: The rural systems print person ids differently, so a mover's two records look unlike.
RURAL_ID_FORMS = ({"short": 1}, {"long": 1}, {"digits": 1}, {"short": 1, "long": 1}, {"digits": 1, "short": 1})


def _slug(code: str) -> str:
    name = code_list("municipalities").label(code)
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower().replace(" ", "_")


def file_specs() -> list[FileSpec]:
    """Every demo file, Södertörn first. Files of 100+ records get every fault kind, others fewer."""
    specs, small = [], 0
    targets = _targets()
    for code, style in SODERTORN_STYLE.items():
        kw = dict(STYLES[style], profile=load_profile(STYLES[style]["profile"]))
        ext = "xlsx" if style == "xlsx" else "csv"
        shape = kw["profile"].shape
        if targets["sodertorn"][code] >= 100:
            faults = KINDS
        else:
            faults, small = tuple(KINDS[(small * 4 + j) % len(KINDS)] for j in range(4)), small + 1
        specs.append(FileSpec(f"{code}_{_slug(code)}_{shape}.{ext}", code, "sodertorn", faults=faults, **kw))
    for i, code in enumerate(model.RURAL_RECORDS):
        kw = dict(STYLES["regional"], profile=load_profile("regional_sv"), id_forms=RURAL_ID_FORMS[i % 5])
        specs.append(FileSpec(f"{code}_{_slug(code)}.csv", code, "jamtland_rural", faults=(KINDS[i % len(KINDS)],), **kw))
    return specs


def _targets() -> dict[str, dict[str, int]]:
    return {
        "sodertorn": {c: round(p * model.RECORDS_PER_INHABITANT) for c, p in model.SODERTORN_POPULATION.items()},
        "jamtland_rural": dict(model.RURAL_RECORDS),
    }


def _simulate(seed: int):
    t = _targets()
    return {
        "sodertorn": simulate_pool(t["sodertorn"], seed, rural=False, instruments=primary_instrument, movers=8,
                                   coordination_share=0.03),
        "jamtland_rural": simulate_pool(t["jamtland_rural"], seed, rural=True, instruments=("severity04", "wellbeing10"),
                                        movers=5, coordination_share=0.02),
    }


def _value_columns(spec: FileSpec) -> list[str]:
    p = spec.profile
    return [p.long["value"]] if p.shape == "long" else [tp["value"] for g in p.groups for tp in g.timepoints.values()]


def _file_entry(spec: FileSpec, rows: list[Row], data: bytes) -> dict:
    key_col = spec.profile.columns["record_key"]
    index = {id(r): n for n, r in enumerate(rows, 1)}
    bad = []
    for n, r in enumerate(rows, 1):
        if r.fault:
            entry = {"row": n, "fault": r.fault["kind"], "error_type": r.fault["type"], "column": r.fault["column"],
                     "record_key": r.cells[key_col]}
            if "duplicate_of" in r.fault:
                entry["duplicate_of_row"] = index[id(r.fault["duplicate_of"])]
            bad.append(entry)
    good = [r for r in rows if not r.fault]
    values = _value_columns(spec)
    return {
        "file": spec.file,
        "profile": spec.profile.name,
        "shape": spec.profile.shape,
        "format": spec.format,
        "encoding": spec.encoding.removesuffix("-sig") if spec.encoding else None,
        "bom": bool(spec.encoding and spec.encoding.endswith("-sig")),
        "delimiter": spec.delimiter,
        "decimal": spec.profile.decimal if spec.format == "csv" else None,
        "date_format": spec.date_format if spec.format == "csv" else "xlsx date cells",
        "newline": spec.newline if spec.format == "csv" else None,
        "pool": spec.pool,
        "municipalities": [spec.municipality],
        "columns": header(spec),
        "rows": len(rows),
        "records": len({r.cells[key_col] for r in rows}),
        "accepted_rows": len(good),
        "accepted_records": len({r.cells[key_col] for r in good}),
        "accepted_measurements": sum(r.cells.get(c) is not None for r in good for c in values),
        "clients": len({r.record.person for r in good}),
        "rejected_rows": len(bad),
        "rejected_by_type": dict(sorted(Counter(b["error_type"] for b in bad).items())),
        "rejected_by_fault": dict(sorted(Counter(b["fault"] for b in bad).items())),
        "bad_rows": bad,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def generate(out_dir: str | Path, *, seed: int = DEFAULT_SEED) -> list[Path]:
    """Write every demo file and ``manifest.json`` into ``out_dir``; return their paths (manifest last)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pools = _simulate(seed)
    paths, entries, accepted = [], [], {}
    for spec in file_specs():
        records = pools[spec.pool].records[spec.municipality]
        rows = render(spec, records, np.random.default_rng([seed, int(spec.municipality), 1]))
        rows = plant(spec, rows, np.random.default_rng([seed, int(spec.municipality), 2]))
        path = out / spec.file
        if spec.format == "xlsx":
            write_xlsx(spec, rows, path)
        else:
            path.write_bytes(to_csv_bytes(spec, rows))
        entries.append(_file_entry(spec, rows, path.read_bytes()))
        accepted.setdefault(spec.pool, []).extend((spec, r) for r in rows if not r.fault)
        paths.append(path)
    manifest = {
        "generator": "isu.sample_data",
        "seed": seed,
        "export_date": model.EXPORT_DATE.isoformat(),
        "fault_kinds": list(KINDS),
        "row_numbers": "1 is the first data row after the header",
        "error_types": "as isu.catalogue names them; every planted row is wrong for exactly one reason",
        "duplicates": "every occurrence of a duplicated key (wide) or measurement (long) is rejected",
        "files": entries,
        "pools": {pool: _pool_entry(pool, pools[pool], accepted[pool]) for pool in pools},
        "totals": {
            "rows": sum(e["rows"] for e in entries),
            "accepted_rows": sum(e["accepted_rows"] for e in entries),
            "rejected_rows": sum(e["rejected_rows"] for e in entries),
            "rejected_by_type": _sum_counts(e["rejected_by_type"] for e in entries),
            "rejected_by_fault": _sum_counts(e["rejected_by_fault"] for e in entries),
        },
    }
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths + [path]


def _sum_counts(counts) -> dict[str, int]:
    return dict(sorted(sum((Counter(c) for c in counts), Counter()).items()))


def _pool_entry(pool: str, result, accepted: list[tuple[FileSpec, Row]]) -> dict:
    """Pool-wide expectations: distinct clients once records are linked by pseudonym, and the movers."""
    movers = []
    for m in result.movers:
        keys = {}
        for spec, r in accepted:
            if r.record.person == m["person"]:
                keys.setdefault(spec.municipality, []).append(r.cells[spec.profile.columns["record_key"]])
        movers.append({"from": m["from"], "to": m["to"], "record_keys": {k: sorted(set(v)) for k, v in keys.items()}})
    return {
        "municipalities": sorted({spec.municipality for spec, _ in accepted}),
        "accepted_records": len({(spec.municipality, r.cells[spec.profile.columns["record_key"]]) for spec, r in accepted}),
        "clients": len({r.record.person for _, r in accepted}),
        "movers": movers,
    }
