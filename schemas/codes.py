"""Code lists: plain CSV files with Swedish and English labels, editable without touching code.

The files ship in ``schemas/codes/``. A regional unit can override any of them by pointing the
environment variable ``ISU_CODES_DIR`` at a folder holding files of the same name; a file there
replaces the shipped one whole.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

__all__ = ["CodeList", "code_list", "code_list_names", "CODES_DIR"]

CODES_DIR = Path(__file__).with_name("codes")


@dataclass(frozen=True)
class CodeList:
    """One code list: its name and rows (each a dict of the file's columns, ``code`` first)."""

    name: str
    rows: tuple[dict[str, str], ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r["code"] for r in self.rows)

    def __contains__(self, code: object) -> bool:
        return code in self._index

    @cached_property
    def _index(self) -> dict[str, dict[str, str]]:
        return {r["code"]: r for r in self.rows}

    def row(self, code: str) -> dict[str, str]:
        return self._index[code]

    def label(self, code: str, lang: str = "sv") -> str:
        return self._index[code].get(f"label_{lang}") or code

    def aliases(self) -> dict[str, str]:
        """Lower-cased code and labels (sv, en) → code, so an export may carry either; and a numeric
        code with leading zeros by its number too (``126`` for ``0126``), the way Excel writes it
        (a number cell, or a CSV saved from one) — unless that number is itself another code or
        label, or stands for two codes (``01`` and ``001``)."""
        out: dict[str, str] = {}
        unpadded: dict[str, set[str]] = {}
        for r in self.rows:
            code = r["code"]
            if code.isdigit() and code.startswith("0") and code.strip("0"):
                unpadded.setdefault(code.lstrip("0"), set()).add(code)
        out.update({number: codes.pop() for number, codes in unpadded.items() if len(codes) == 1})
        for r in self.rows:
            for key in ("label_en", "label_sv", "code"):
                if r.get(key):
                    out[r[key].strip().lower()] = r["code"]
        return out


def _path(name: str) -> Path:
    override = os.environ.get("ISU_CODES_DIR")
    if override and (Path(override) / f"{name}.csv").is_file():
        return Path(override) / f"{name}.csv"
    return CODES_DIR / f"{name}.csv"


@lru_cache(maxsize=None)
def _load(name: str, override: str | None) -> CodeList:
    path = _path(name)
    if not path.is_file():
        raise KeyError(f"no code list named {name!r} (looked for {path})")
    with path.open(encoding="utf-8", newline="") as f:
        rows = tuple({k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(f))
    key = "local_code" if rows and "local_code" in rows[0] else "code"
    if key != "code":
        rows = tuple({"code": r[key], **r} for r in rows)
    return CodeList(path.stem, rows)


def code_list(name: str) -> CodeList:
    """The code list ``name`` (file ``<name>.csv``), read once per process and ``ISU_CODES_DIR``."""
    return _load(name, os.environ.get("ISU_CODES_DIR"))


def code_list_names() -> list[str]:
    return sorted(p.stem for p in CODES_DIR.glob("*.csv"))
