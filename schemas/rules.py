"""Constraints as data, so that one declaration drives both pydantic and the vectorised SQL checks.

A field's own constraints (type, bounds, length, pattern, code list) live in its annotation in
``models.py``. Rules that involve more than one field are the small objects below; the models
evaluate them in a ``model_validator`` and ``isu.validate`` compiles the same objects to SQL.
Nothing here imports the core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .codes import code_list

__all__ = ["CodeListRef", "NotBefore", "WithinInstrumentRange", "Rule", "PSEUDONYM_PATTERN"]

PSEUDONYM_PATTERN = r"^[0-9a-f]{64}$"


@dataclass(frozen=True)
class CodeListRef:
    """Annotation marker: the value must be a code in the named code list."""

    name: str

    def check(self, value: str) -> str:
        if value not in code_list(self.name):
            codes = code_list(self.name)
            known = ", ".join(_known(row) for row in codes.rows[:12]) + ("…" if len(codes.rows) > 12 else "")
            raise ValueError(f"not in the code list {self.name} (known: {known})")
        return value


def _known(row: dict[str, str]) -> str:
    """A code as a person knows it: its Swedish label, then the code (both are accepted)."""
    label = row.get("label_sv") or ""
    return f"{label} = {row['code']}" if label and label.lower() != row["code"].lower() else row["code"]


@dataclass(frozen=True)
class NotBefore:
    """``later`` may not be earlier than ``earlier`` (both optional dates)."""

    later: str
    earlier: str
    type: str = "date_order"

    def message(self) -> str:
        return f"{self.later} is before {self.earlier}"

    def violated(self, values: dict[str, Any]) -> bool:
        a, b = values.get(self.later), values.get(self.earlier)
        return a is not None and b is not None and a < b


@dataclass(frozen=True)
class WithinInstrumentRange:
    """``value`` must lie within the ``instrument``'s [min, max] from the instruments code list."""

    value: str = "value"
    instrument: str = "instrument"
    type: str = "out_of_range"

    def bounds(self, instrument: str) -> tuple[float, float]:
        row = code_list("instruments").row(instrument)
        return float(row["min"]), float(row["max"])

    def message(self) -> str:
        return f"{self.value} is outside the instrument's range"

    def violated(self, values: dict[str, Any]) -> bool:
        v, ins = values.get(self.value), values.get(self.instrument)
        if v is None or ins is None or ins not in code_list("instruments"):
            return False
        lo, hi = self.bounds(ins)
        return not (math.isfinite(v) and lo <= v <= hi)


Rule = NotBefore | WithinInstrumentRange
