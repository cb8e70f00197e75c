"""Import profiles: small TOML files that map a source's columns, value codes and formats onto the contract.

A profile says which source column holds each contract field, how measurements are laid out
(``wide``: one row per record with T0/T1… columns; ``long``: one row per measurement), how source
values translate to codes, and the number and date formats. Delimiter and encoding are found by
the reader unless the profile fixes them. Profiles ship in ``schemas/profiles/``; a path to any
other TOML file works too.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

__all__ = ["Profile", "MeasurementGroup", "header_key", "load_profile", "profile_names", "PROFILES_DIR", "ProfileError", "ProfileNotFound"]

PROFILES_DIR = Path(__file__).with_name("profiles")

#: Contract fields a profile may map to a source column (record level).
RECORD_FIELDS = (
    "municipality", "record_key", "person_id", "client", "sex", "birth_year", "need_area",
    "intervention_code", "category", "legal_basis", "provider", "started_on", "ended_on",
    "end_reason", "goal_attainment",
)
#: Long shape: the columns of one measurement row.
LONG_FIELDS = ("timepoint", "instrument", "measured_on", "value")


class ProfileError(ValueError):
    """A profile file that cannot be used, with the reason."""


class ProfileNotFound(ProfileError):
    """No shipped profile by that name, and no such file."""


@dataclass(frozen=True)
class MeasurementGroup:
    """Wide shape: one instrument's columns, per time point ``{"T0": {"value": col, "date": col}}``."""

    timepoints: dict[str, dict[str, str]]
    instrument: str | None = None  # a fixed instrument code …
    instrument_column: str | None = None  # … or the column that names it


@dataclass(frozen=True)
class Profile:
    name: str
    shape: Literal["wide", "long"]
    columns: dict[str, str]
    description: str = ""
    groups: tuple[MeasurementGroup, ...] = ()
    long: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    categories: dict[str, str] = field(default_factory=dict)
    decimal: str = ","
    date_formats: tuple[str, ...] = ("%Y-%m-%d", "%Y%m%d")
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None

    def source_columns(self) -> list[str]:
        """Every source column the profile names (for matching a file's header)."""
        cols = list(self.columns.values()) + list(self.long.values())
        for g in self.groups:
            cols += [g.instrument_column] if g.instrument_column else []
            cols += [c for tp in g.timepoints.values() for c in tp.values()]
        return cols

    def spelt_as(self, header: tuple[str, ...] | list[str]) -> Profile:
        """This profile with its source columns spelt as ``header`` spells them, where they differ
        only in letter case or spacing (``kommunkod`` for ``Kommunkod``): case systems and
        spreadsheets change the case of headers, and a person reads both as the same column (so
        the reader refuses a header with two such names: ``isu.read``)."""
        by_key = {header_key(h): h for h in header}

        def spell(col: str) -> str:
            return col if col in header else by_key.get(header_key(col), col)

        groups = tuple(replace(g, instrument_column=g.instrument_column and spell(g.instrument_column),
                               timepoints={tp: {k: spell(c) for k, c in spec.items()} for tp, spec in g.timepoints.items()})
                       for g in self.groups)
        return replace(self, columns={f: spell(c) for f, c in self.columns.items()}, groups=groups,
                       long={f: spell(c) for f, c in self.long.items()})


def header_key(name: str) -> str:
    """A header name as matched: letter case and runs of spaces do not count."""
    return " ".join(name.split()).casefold()


def _parse(data: dict, name: str) -> Profile:
    shape = data.get("shape")
    if shape not in ("wide", "long"):
        raise ProfileError(f"profile {name}: shape must be 'wide' or 'long', not {shape!r}")
    columns = dict(data.get("columns", {}))
    unknown = set(columns) - set(RECORD_FIELDS)
    if unknown:
        raise ProfileError(f"profile {name}: unknown contract fields {sorted(unknown)}")
    groups = tuple(
        MeasurementGroup(
            timepoints={tp: dict(spec) for tp, spec in g.get("timepoints", {}).items()},
            instrument=g.get("instrument"),
            instrument_column=g.get("instrument_column"),
        )
        for g in data.get("measurements", [])
    )
    long = dict(data.get("long", {}))
    if shape == "long" and set(long) != set(LONG_FIELDS) - {"measured_on"} and set(long) != set(LONG_FIELDS):
        raise ProfileError(f"profile {name}: [long] must name {', '.join(LONG_FIELDS)}")
    if not isinstance(data.get("sheet", ""), str):
        raise ProfileError(f"profile {name}: sheet must be the name of a workbook sheet, in quotes (sheet = \"Data\")")
    for g in groups:
        if (g.instrument is None) == (g.instrument_column is None):
            raise ProfileError(f"profile {name}: each [[measurements]] needs instrument or instrument_column")
    return Profile(
        name=data.get("name", name),
        shape=shape,
        columns=columns,
        description=data.get("description", ""),
        groups=groups,
        long=long,
        values={k: {str(a): str(b) for a, b in v.items()} for k, v in data.get("values", {}).items()},
        categories={str(a): str(b) for a, b in data.get("categories", {}).items()},
        decimal=data.get("decimal", ","),
        date_formats=tuple(data.get("date_formats", ("%Y-%m-%d", "%Y%m%d"))),
        encoding=data.get("encoding"),
        delimiter=data.get("delimiter"),
        sheet=data.get("sheet"),
    )


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or any profile file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ProfileNotFound(f"no profile {str(name_or_path)!r}; shipped profiles: {', '.join(profile_names())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ProfileError(f"profile {path}: not valid TOML ({e})") from None
    return _parse(data, path.stem)
