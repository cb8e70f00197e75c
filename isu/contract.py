"""The record contract seen flat: one ``FieldSpec`` per leaf field, read off the pydantic models.

``isu.validate`` compiles these to SQL and asks pydantic (through ``adapter``) to explain values
that failed. Nothing here restates a rule: bounds, lengths, patterns, code lists and optionality
come from the models' annotations.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from typing import Any

import annotated_types as at
from pydantic import BaseModel, TypeAdapter
from pydantic.fields import FieldInfo

from isu.schemas.models import FollowUpRecord, Intervention, Measurement, Need, Outcome
from isu.schemas.rules import CodeListRef

__all__ = ["FieldSpec", "record_fields", "measurement_fields", "RECORD_MODELS"]

RECORD_MODELS: tuple[type[BaseModel], ...] = (FollowUpRecord, Need, Intervention, Outcome)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    model: type[BaseModel]
    kind: str  # 'code', 'date', 'int', 'float', 'str'
    required: bool
    code_list: str | None = None
    ge: Any = None
    le: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    description: str | None = None  # the model's words for the field, where a pattern needs them

    @cached_property
    def adapter(self) -> TypeAdapter:
        return TypeAdapter(self.model.model_fields[self.name].rebuild_annotation())

    def explain(self, value: Any) -> str:
        """Pydantic's own words for why ``value`` fails this field ('' if it passes)."""
        from pydantic import ValidationError

        try:
            self.adapter.validate_python(value)
        except ValidationError as e:
            return "; ".join(self._words(err) for err in e.errors())
        return ""

    def _words(self, err: dict) -> str:
        """Pydantic's message for a person: a pattern in the field's description, a ValueError
        of the contract's own checks without pydantic's "Value error, "."""
        if err["type"] == "string_pattern_mismatch" and self.description:
            return f"should be {self.description}"
        return err["msg"].removeprefix("Value error, ")


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(base type, metadata, optional) of an annotation like Optional[Annotated[int, Ge(1)]]."""
    optional = False
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            args = typing.get_args(annotation)
            annotation, metadata = args[0], metadata + list(args[1:])
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(annotation))
            annotation = args[0]
        else:
            return annotation, metadata, optional


def _spec(model: type[BaseModel], name: str) -> FieldSpec:
    info = model.model_fields[name]
    base, metadata, optional = _unwrap(info.annotation)
    metadata += list(info.metadata)
    metadata = [x for m in metadata for x in (m.metadata if isinstance(m, FieldInfo) else [m])]
    kw: dict[str, Any] = {}
    code = None
    for m in metadata:
        if isinstance(m, CodeListRef):
            code = m.name
        elif isinstance(m, at.Ge):
            kw["ge"] = m.ge
        elif isinstance(m, at.Le):
            kw["le"] = m.le
        elif isinstance(m, at.MinLen):
            kw["min_length"] = m.min_length
        elif isinstance(m, at.MaxLen):
            kw["max_length"] = m.max_length
        elif getattr(m, "pattern", None):  # StringConstraints carries pattern and lengths
            kw["pattern"] = m.pattern
        for attr in ("min_length", "max_length"):
            if getattr(m, attr, None) is not None and not isinstance(m, (at.MinLen, at.MaxLen)):
                kw[attr] = getattr(m, attr)
    kind = "code" if code else {date: "date", int: "int", float: "float", str: "str"}[base]
    required = info.is_required() and not optional
    return FieldSpec(name, model, kind, required, code, description=info.description, **kw)


@lru_cache(maxsize=None)
def record_fields() -> dict[str, FieldSpec]:
    """Record-level leaf fields (identity, need, intervention, goal attainment), by name."""
    out: dict[str, FieldSpec] = {}
    for model in RECORD_MODELS:
        for name, info in model.model_fields.items():
            base, _, _ = _unwrap(info.annotation)
            if isinstance(base, type) and issubclass(base, BaseModel) or typing.get_origin(base) is list:
                continue
            out[name] = _spec(model, name)
    return out


@lru_cache(maxsize=None)
def measurement_fields() -> dict[str, FieldSpec]:
    return {name: _spec(Measurement, name) for name in Measurement.model_fields}
