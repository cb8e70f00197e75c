"""The record contract: one follow-up record = one client × one intervention episode × one need area.

These pydantic models are the single source of truth. ``isu.validate`` compiles their field
constraints and ``rules`` into vectorised SQL checks, uses the models themselves to explain the
rows that fail, and ``json/`` holds the JSON Schema generated from them (``isu.schemas.jsonschema``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, ClassVar, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .rules import PSEUDONYM_PATTERN, CodeListRef, NotBefore, Rule, WithinInstrumentRange

__all__ = [
    "SCHEMA_VERSION",
    "Code",
    "Measurement",
    "Need",
    "Intervention",
    "Outcome",
    "FollowUpRecord",
    "ContractModel",
]

#: Bumped when the stored shape of a record changes; pool packages carry it.
SCHEMA_VERSION = "1"

FIRST_DATE, LAST_DATE = date(1990, 1, 1), date(2099, 12, 31)


def Code(name: str):  # noqa: N802 - reads as a type in annotations
    """A string that must be a code in the code list ``name``."""
    ref = CodeListRef(name)
    return Annotated[str, AfterValidator(ref.check), ref, Field(json_schema_extra={"x-code-list": name})]


Day = Annotated[date, Field(ge=FIRST_DATE, le=LAST_DATE)]


class ContractModel(BaseModel):
    """Base: strict about unknown fields, evaluates the class's cross-field ``rules``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False, defer_build=True)
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self):
        values = dict(self)
        for rule in self.rules:
            if rule.violated(values):
                raise ValueError(rule.message())
        return self


class Measurement(ContractModel):
    """One measurement of an instrument at a time point (T0 baseline, T1 end, T2… follow-up)."""

    timepoint: Code("timepoints")
    instrument: Code("instruments")
    measured_on: Optional[Day] = None
    value: float
    rules: ClassVar[tuple[Rule, ...]] = (WithinInstrumentRange(),)


class Need(ContractModel):
    """The need (behov) the intervention addresses. Free-text reasons are not kept."""

    need_area: Code("need_areas")


class Intervention(ContractModel):
    """The intervention episode (insats): local code, national category, legal basis and dates."""

    intervention_code: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    category: Code("intervention_categories")
    legal_basis: Optional[Code("legal_bases")] = None
    provider: Optional[Code("providers")] = None
    started_on: Day
    ended_on: Optional[Day] = None
    end_reason: Optional[Code("end_reasons")] = None
    rules: ClassVar[tuple[Rule, ...]] = (NotBefore(later="ended_on", earlier="started_on"),)


class Outcome(ContractModel):
    """What was measured, and the generic four-level goal attainment."""

    goal_attainment: Optional[Code("goal_attainment")] = None
    measurements: list[Measurement] = Field(default_factory=list)


class FollowUpRecord(ContractModel):
    """A stored follow-up record. ``client`` is the keyed pseudonym; a raw person id never is."""

    municipality: Code("municipalities")
    record_key: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$"),
        Field(description="the case system's key: up to 64 letters a-z, digits and . _ : / # -, beginning with a letter or digit"),
    ]
    client: Annotated[str, StringConstraints(pattern=PSEUDONYM_PATTERN),
                      Field(description="a pseudonym: 64 hexadecimal digits, as isu key and isu import make them")]
    sex: Optional[Code("sexes")] = None
    birth_year: Optional[Annotated[int, Field(ge=1900, le=2099)]] = None
    need: Need
    intervention: Intervention
    outcome: Outcome = Field(default_factory=Outcome)
