"""Simulate clients, intervention episodes and their follow-up records, in contract terms (codes).

One episode is one client's intervention; it yields one record per followed need area. The
outcome model works on a latent problem level ``z`` (see ``model``): the baseline is drawn per
category, the change is the category's true effect plus a municipality offset and noise, and
drop-out is more likely for those who started worse off. Values are then read off ``z`` on each
instrument's own scale. Every municipality draws from its own seeded generator, so adding or
resizing one leaves the others' records unchanged. Movers are clients whose episode in one
municipality ends because they moved and who start a new one in another: pooling must link them.
"""

from __future__ import annotations

import math
from bisect import bisect
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from itertools import accumulate
from typing import Callable

import numpy as np

from isu.schemas import code_list

from . import model
from .model import CATEGORIES, EXPORT_DATE, FIRST_START, Category
from .person_ids import PersonId

__all__ = ["Measurement", "Record", "Municipality", "PoolResult", "simulate_pool", "primary_instrument"]

_BY_CODE = {c.code: c for c in CATEGORIES}


@dataclass(frozen=True)
class Measurement:
    timepoint: str
    instrument: str
    measured_on: date
    value: float


@dataclass(frozen=True)
class Record:
    """A follow-up record as the case system holds it (codes; the raw person id)."""

    municipality: str
    episode: int  # running number of the episode within the municipality
    part: int  # 1, 2 … for the need areas followed in one episode
    person: PersonId
    category: str
    intervention_code: str
    need_area: str
    legal_basis: str
    provider: str
    started_on: date
    ended_on: date | None
    end_reason: str | None
    goal_attainment: str | None
    measurements: tuple[Measurement, ...] = ()
    mover: bool = False

    @property
    def timepoints(self) -> set[str]:
        return {m.timepoint for m in self.measurements}


def primary_instrument(cat: Category, need: str, rng: np.random.Generator) -> tuple[str, ...]:
    """Södertörn practice: ASI for alcohol/drugs in substance treatment, else wellbeing or severity."""
    if cat.code.startswith("substance") and need in model.ASI_BY_NEED:
        return (model.ASI_BY_NEED[need],)
    return ("wellbeing10",) if rng.random() < cat.wellbeing else ("severity04",)


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key drawn with probability proportional to its weight."""
    keys, cum = list(weights), list(accumulate(weights.values()))
    return keys[min(bisect(cum, rng.random() * cum[-1]), len(keys) - 1)]


def _scales() -> dict[str, tuple[float, float, float, float]]:
    """Instrument -> (min, max, signed reference SD, centre) from the instruments code list."""
    out = {}
    for row in code_list("instruments").rows:
        sign = -1.0 if row["higher_is_better"] == "true" else 1.0
        centre = model.INSTRUMENT_CENTRES.get(row["code"])
        if centre is not None:
            out[row["code"]] = (float(row["min"]), float(row["max"]), sign * float(row["reference_sd"]), centre)
    return out


def _goal(improvement: float | None, ongoing: bool, rng: np.random.Generator) -> str | None:
    if ongoing:
        return None
    if improvement is None:  # ended without a T1: mostly not assessed
        return _pick(rng, {"not_assessed": 6, "": 2, "no_change": 1, "worse": 1}) or None
    if rng.random() < 0.06:
        return "not_assessed"
    d = improvement + rng.normal(0, 0.3)
    return "goal_met" if d > 1.0 else "improved" if d > 0.35 else "no_change" if d > -0.35 else "worse"


class Municipality:
    """One municipality's case system: its category mix, local codes and effect offsets."""

    def __init__(self, code: str, seed: int, rural: bool, instruments: Callable | tuple[str, ...]):
        self.code = code
        self.rng = np.random.default_rng([seed, int(code)])
        self.instruments = instruments
        self.records: list[Record] = []
        rng = self.rng
        self.weights = {c.code: (c.rural_weight if rural else c.weight) * rng.lognormal(0, 0.25) for c in CATEGORIES}
        self.offsets = {c.code: rng.normal(0, 0.12) for c in CATEGORIES}
        codes = model.local_codes()
        self.local = {c: dict(zip(codes[c], rng.dirichlet(np.ones(len(codes[c]))))) for c in sorted(codes)}
        self._episodes = 0
        self.scales = _scales()

    def pick_category(self, age: int | None = None) -> Category:
        """A category by this municipality's mix; one that fits ``age`` if given (adults' if none fits)."""
        fits = {k: w for k, w in self.weights.items() if age is None or _BY_CODE[k].ages[0] <= age <= _BY_CODE[k].ages[1]}
        fits = fits or {k: w for k, w in self.weights.items() if not _BY_CODE[k].youth}
        return _BY_CODE[_pick(self.rng, fits)]

    def new_person(self, cat: Category, start: date, coordination_share: float) -> PersonId:
        rng = self.rng
        age = int(rng.integers(cat.ages[0], cat.ages[1] + 1))
        birth = start - timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
        sex_digit = int(rng.choice([0, 2, 4, 6, 8] if rng.random() < cat.female else [1, 3, 5, 7, 9]))
        serial = int(rng.integers(0, 100)) * 10 + sex_digit
        return PersonId(birth, serial, bool(rng.random() < coordination_share))

    def episode(self, person: PersonId, cat: Category, start: date, moved_on: date | None = None) -> list[Record]:
        """One episode's records; ``moved_on`` ends it on that day because the client moved away."""
        rng, self._episodes = self.rng, self._episodes + 1
        planned = start + timedelta(days=int(rng.uniform(*cat.months) * 30.4))
        z0 = rng.normal(cat.baseline, 0.9)
        p_drop = 1 / (1 + math.exp(-(math.log(cat.attrition / (1 - cat.attrition)) + 0.7 * (z0 - cat.baseline))))
        ongoing, dropout = planned > EXPORT_DATE and moved_on is None, False
        if moved_on is not None:
            ended, reason, dropout = moved_on, "moved", rng.random() < 0.6
        elif ongoing:
            ended, reason = None, None
        elif rng.random() < p_drop:
            ended, dropout = start + (planned - start) * rng.uniform(0.2, 0.8), True
            reason = "deceased" if rng.random() < cat.deceased else _pick(
                rng, {"client_ended": 5, "service_ended": 1.5, "moved": 2, "other": 1})
        else:
            ended, reason = planned, _pick(rng, {"as_planned": 22, "moved": 1, "client_ended": 1, "other": 1})
        n_needs = 2 if rng.random() < 0.2 and len(cat.needs) > 1 else 1
        weights, chosen = dict(cat.needs), []
        for _ in range(n_needs):
            chosen.append(_pick(rng, weights))
            weights.pop(chosen[-1])
        base = dict(
            municipality=self.code, episode=self._episodes, person=person, category=cat.code,
            intervention_code=_pick(rng, self.local[cat.code]), legal_basis=_pick(rng, cat.legal),
            provider="external" if rng.random() < cat.external else "own", started_on=start,
            ended_on=ended, end_reason=reason, mover=moved_on is not None,
        )
        return [self._record(base, cat, part, need, z0, dropout) for part, need in enumerate(chosen, 1)]

    def _record(self, base: dict, cat: Category, part: int, need: str, z0: float, dropout: bool) -> Record:
        """One need area's record: baseline, change and (unless dropped out) end and follow-up values."""
        rng = self.rng
        instruments = self.instruments(cat, need, rng) if callable(self.instruments) else self.instruments
        start, ended = base["started_on"], base["ended_on"]
        z0 = z0 + rng.normal(0, 0.4)
        z1 = z0 - (cat.effect + self.offsets[cat.code]) - 0.15 * (z0 - cat.baseline) + rng.normal(0, 0.6)
        t0 = min(start + timedelta(days=int(rng.integers(0, 15))), ended or EXPORT_DATE)
        points = [("T0", t0, z0)]
        has_t1 = ended is not None and not dropout
        if has_t1:
            points.append(("T1", max(t0, ended - timedelta(days=int(rng.integers(0, 11)))), z1))
            t2 = ended + timedelta(days=int(rng.integers(165, 200)))
            if t2 <= EXPORT_DATE and rng.random() < cat.follow_up:
                points.append(("T2", t2, z1 + rng.normal(0.1, 0.5)))
        ms = tuple(Measurement(tp, ins, d, self._value(ins, z)) for tp, d, z in points for ins in instruments)
        goal = _goal(z0 - z1 if has_t1 else None, ended is None, rng)
        return Record(**base, part=part, need_area=need, goal_attainment=goal, measurements=ms)

    def _value(self, instrument: str, z: float) -> float:
        lo, hi, signed_sd, centre = self.scales[instrument]
        v = centre + signed_sd * (z + self.rng.normal(0, 0.25))
        return round(min(hi, max(lo, v)), model.INSTRUMENT_DECIMALS[instrument])

    def fill(self, target: int, coordination_share: float) -> None:
        """Draw clients and their (sometimes repeated) episodes until ``target`` records exist."""
        rng, span = self.rng, (EXPORT_DATE - FIRST_START).days - 45
        while len(self.records) < target:
            cat = self.pick_category()
            start = FIRST_START + timedelta(days=int(rng.integers(0, span)))
            person = self.new_person(cat, start, coordination_share)
            while len(self.records) < target:
                recs = self.episode(person, cat, start)
                self.records += recs
                last = recs[0]
                if last.ended_on is None or last.end_reason in ("deceased", "moved") or rng.random() > 0.25:
                    break
                start = last.ended_on + timedelta(days=int(rng.integers(14, 200)))
                if start > EXPORT_DATE - timedelta(days=30):
                    break
                cat = self.pick_category(age=(start - person.birth).days // 365)

    def finish(self) -> list[Record]:
        """Records in export order (by start date), episodes renumbered 1, 2 … in that order."""
        self.records.sort(key=lambda r: (r.started_on, r.episode, r.part))
        numbers: dict[int, int] = {}
        for r in self.records:
            numbers.setdefault(r.episode, len(numbers) + 1)
        return [replace(r, episode=numbers[r.episode]) for r in self.records]


@dataclass
class PoolResult:
    """Each municipality's records in export order, and who moved from where to where."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    movers: list[dict] = field(default_factory=list)


def simulate_pool(
    targets: dict[str, int], seed: int, *, rural: bool, instruments, movers: int, coordination_share: float
) -> PoolResult:
    """Records for each municipality (``targets``: code -> records), plus ``movers`` shared clients."""
    sims = {code: Municipality(code, seed, rural, instruments) for code in targets}
    for code, n in targets.items():
        sims[code].fill(n, coordination_share)
    out = PoolResult()
    codes = list(targets)
    for i in range(movers):
        a, b = sims[codes[i % len(codes)]], sims[codes[(i + 1) % len(codes)]]
        rng = np.random.default_rng([seed, 7, i])
        start = FIRST_START + timedelta(days=int(rng.integers(0, 540)))
        cat = a.pick_category()
        person = a.new_person(cat, start, 0.0)
        left = start + timedelta(days=int(rng.integers(60, 240)))
        a.records += a.episode(person, cat, start, moved_on=left)
        arrived = left + timedelta(days=int(rng.integers(10, 90)))
        cat_b = b.pick_category(age=(arrived - person.birth).days // 365)
        b.records += [replace(r, mover=True) for r in b.episode(person, cat_b, arrived)]
        out.movers.append({"person": person, "from": a.code, "to": b.code})
    out.records = {code: sims[code].finish() for code in codes}
    return out
