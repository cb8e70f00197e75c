"""Synthetic Swedish person ids: valid personnummer and samordningsnummer made from random draws.

An id is birth date + three-digit serial (its last digit odd for men, even for women) + a Luhn
check digit over the ten digits YYMMDDNNN. A samordningsnummer adds 60 to the day. Exports print
ids in several forms, all of which the importer must read as the same person:
``long`` ``YYYYMMDD-NNNC``, ``short`` ``YYMMDD-NNNC`` and ``digits`` ``YYYYMMDDNNNC``.
The ids come from the seeded generator only and never from a register of real people.
The check digit is computed vectorised (numpy), so the benchmark writer uses the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

__all__ = ["PersonId", "FORMS", "luhn_check_digits", "corrupt_check_digit"]

FORMS = ("long", "short", "digits")

# Luhn: every other digit (from the left of the nine, starting with the first) is doubled.
_DOUBLED = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9])


def luhn_check_digits(nine: np.ndarray) -> np.ndarray:
    """Check digits for an (n, 9) integer array of the digits YYMMDDNNN."""
    nine = np.asarray(nine, dtype=np.int64)
    total = _DOUBLED[nine[:, 0::2]].sum(axis=1) + nine[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


@dataclass(frozen=True)
class PersonId:
    """One synthetic person's id: birth date, serial (000-999) and whether it is a samordningsnummer."""

    birth: date
    serial: int
    coordination: bool = False

    @property
    def sex(self) -> str:
        """Legal sex as the id encodes it (second-to-last digit: odd M, even F)."""
        return "M" if (self.serial % 10) % 2 else "F"

    def _day(self) -> int:
        return self.birth.day + (60 if self.coordination else 0)

    @property
    def check_digit(self) -> int:
        nine = f"{self.birth:%y%m}{self._day():02d}{self.serial:03d}"
        return int(luhn_check_digits(np.array([[int(c) for c in nine]]))[0])

    def format(self, form: str) -> str:
        """The id as an export prints it (see ``FORMS``)."""
        ymd = f"{self.birth.year:04d}{self.birth.month:02d}{self._day():02d}"
        tail = f"{self.serial:03d}{self.check_digit}"
        if form == "long":
            return f"{ymd}-{tail}"
        if form == "short":
            return f"{ymd[2:]}-{tail}"
        if form == "digits":
            return ymd + tail
        raise ValueError(f"unknown id form {form!r}; expected one of {FORMS}")


def corrupt_check_digit(pid: str, shift: int) -> str:
    """The same id with its check digit moved by ``shift`` (1-9): a typo the Luhn check catches."""
    if not 1 <= shift <= 9:
        raise ValueError("shift must be 1..9 so that the check digit really changes")
    return pid[:-1] + str((int(pid[-1]) + shift) % 10)
