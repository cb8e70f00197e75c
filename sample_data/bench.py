"""A fast streaming writer of large ``generic_sv`` exports, for benchmarks of the importer.

Millions of rows are drawn in chunks with numpy (vectorised: no Python loop over rows), formatted
by polars and appended to the file, so memory stays bounded by the chunk size. The rows follow the
same model as the demo files (categories, ages, effects, drop-out) at lower fidelity: one record
per row, clients recurring across rows with the same id, birth date and sex. A person's id is a
hash of a client number, never a draw from real data. Every ``1/bad_fraction``-th row is spoilt
in one way (the fault kinds of ``faults.KINDS``, in turn), so accepted + rejected can be checked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from isu.schemas import code_list, load_profile

from . import model
from .faults import KINDS, error_type
from .fast_text import OutputCodec, TextTables, const, gather_text, hex64, mix64, where
from .person_ids import luhn_check_digits

__all__ = ["write_benchmark_csv", "BenchmarkFile"]

_CATS = model.CATEGORIES
_CODES = list(model.SODERTORN_POPULATION)
_INSTRUMENTS = ["severity04", "wellbeing10", "asi_alcohol", "asi_drugs"]
_GOAL_TEXT = ["1", "2", "3", "4", "0"]  # worse, no_change, improved, goal_met, not_assessed (generic_sv)


@dataclass(frozen=True)
class BenchmarkFile:
    """What was written: the file, its data rows, the planted faults by kind and the rows an
    importer must reject by its error type (a duplicate key spoils two rows)."""

    path: Path
    rows: int
    faults: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    @property
    def accepted_rows(self) -> int:
        return self.rows - sum(self.rejected.values())


def _pick(rng: np.random.Generator, cum: np.ndarray, n: int) -> np.ndarray:
    """Indices drawn by the cumulative weights ``cum`` (last entry = total)."""
    return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)


def _choose_per_category(rng, cat: np.ndarray, options: list[dict[str, float]]) -> tuple[np.ndarray, list[str]]:
    """For each row, one key of its category's weight table; returns indices into a shared vocabulary."""
    vocab = sorted({k for o in options for k in o})
    out = np.zeros(len(cat), dtype=np.int64)
    for c, weights in enumerate(options):
        rows = np.flatnonzero(cat == c)
        keys = list(weights)
        picked = _pick(rng, np.cumsum([weights[k] for k in keys]), len(rows))
        out[rows] = np.array([vocab.index(k) for k in keys])[picked]
    return out, vocab


def _person(t: TextTables, client: np.ndarray, youth: np.ndarray, bad_id: np.ndarray, rng, pseudonymised: bool):
    """Person id columns for each client number: a valid id in one of three printed forms, and sex;
    or (``pseudonymised``) a stand-in pseudonym, birth year and sex."""
    h = [mix64(client, i) for i in range(3)]
    born = np.where(youth, 20_100 + h[0] % 6_500, h[0] % 20_000).astype(np.int64)  # days after 1950-01-01
    b = 2 * born + (h[1] % 100 < 3)
    serial = (h[2] % 1000).astype(np.int64)
    yy, mm, dd = t.year[b] % 100, t.month[b], t.day[b]
    digits = np.stack([yy // 10, yy % 10, mm // 10, mm % 10, dd // 10, dd % 10,
                       serial // 100, serial // 10 % 10, serial % 10], axis=1)
    check = (luhn_check_digits(digits) + bad_id) % 10
    sex = gather_text(["K", "M"], serial % 2)
    if pseudonymised:
        return {"client": hex64(client), "birth_year": pl.Series(t.year[b]), "sex": sex}
    form = pl.Series(_pick(rng, np.cumsum([0.7, 0.2, 0.1]), len(client)))
    df = pl.DataFrame({"long": gather_text(t.birth_long, b), "short": gather_text(t.birth_short, b),
                       "tail": gather_text(t.tails, serial * 10 + check), "form": form})
    pid = df.select(pl.concat_str(
        pl.when(pl.col("form") == 1).then("short").otherwise("long"),
        pl.when(pl.col("form") == 2).then(pl.lit("")).otherwise(pl.lit("-")),
        "tail")).to_series()
    return {"person_id": pid, "sex": sex}


def _draw(n: int, rng: np.random.Generator, client: np.ndarray, youth: np.ndarray) -> dict[str, np.ndarray]:
    """One chunk's records as numpy arrays: category, codes, day offsets, latent outcomes."""
    cum_y = np.cumsum([c.weight if c.youth else 0 for c in _CATS])
    cum_a = np.cumsum([0 if c.youth else c.weight for c in _CATS])
    cat = np.where(youth, _pick(rng, cum_y, n), _pick(rng, cum_a, n))

    def per_cat(attr: str) -> np.ndarray:
        return np.array([getattr(c, attr) for c in _CATS], dtype=float)[cat]

    d = {"cat": cat}
    d["need"], d["needs"] = _choose_per_category(rng, cat, [c.needs for c in _CATS])
    d["code"], d["codes"] = _choose_per_category(rng, cat, [dict.fromkeys(model.local_codes()[c.code], 1.0) for c in _CATS])
    d["legal"], d["legals"] = _choose_per_category(rng, cat, [c.legal for c in _CATS])
    substance = np.array([c.code.startswith("substance") for c in _CATS])[cat]
    ins = np.where(rng.random(n) < per_cat("wellbeing"), 1, 0)
    for need_code, asi in model.ASI_BY_NEED.items():
        ins = np.where(substance & (d["need"] == d["needs"].index(need_code)), _INSTRUMENTS.index(asi), ins)
    d["ins"], d["external"] = ins, rng.random(n) < per_cat("external")
    # dates (days after FIRST_START), drop-out and outcomes on the latent scale, as in simulate.py
    last = (model.EXPORT_DATE - model.FIRST_START).days
    start = rng.integers(0, last - 45, n)
    dur = (rng.uniform(*(np.array([c.months[i] for c in _CATS])[cat] for i in (0, 1))) * 30.4).astype(np.int64)
    ongoing = start + dur > last
    base, att = per_cat("baseline"), per_cat("attrition")
    z0 = rng.normal(base, 0.9)
    drop = ~ongoing & (rng.random(n) < 1 / (1 + np.exp(-(np.log(att / (1 - att)) + 0.7 * (z0 - base)))))
    end = np.where(drop, start + (dur * rng.uniform(0.2, 0.8, n)).astype(np.int64), start + dur)
    z1 = z0 - per_cat("effect") - 0.15 * (z0 - base) + rng.normal(0, 0.6, n)
    t0 = np.minimum(start + rng.integers(0, 15, n), np.where(ongoing, last, end))
    t2 = end + rng.integers(165, 200, n)
    has_t1 = ~ongoing & ~drop
    change = z0 - z1 + rng.normal(0, 0.3, n)
    goal = np.where(rng.random(n) < 0.06, 4, np.select([change > 1.0, change > 0.35, change > -0.35], [3, 2, 1], 0))
    reason = np.where(drop, _pick(rng, np.cumsum([0, 5, 1.5, 2, 0, 1]), n), _pick(rng, np.cumsum([22, 1, 0, 1, 0, 1]), n))
    d.update(start=start, end=end, ongoing=ongoing, has_t1=has_t1, t0=t0, t1=np.maximum(t0, end - rng.integers(0, 11, n)),
             t2=t2, has_t2=has_t1 & (t2 <= last) & (rng.random(n) < per_cat("follow_up")), goal=goal, reason=reason,
             z0=z0, z1=z1, z2=z1 + rng.normal(0.1, 0.5, n))
    return d


def _chunk(t: TextTables, codec: OutputCodec, n: int, first: int, rng: np.random.Generator, n_clients: int, bad_every: int,
           pseudonymised: bool):
    """One chunk's columns as text (contract field -> series), and its spoilt rows by kind."""
    g = np.arange(first, first + n)
    kind = np.where(g % bad_every == bad_every // 2, (g // bad_every) % len(KINDS), -1)
    bad = {k: kind == i for i, k in enumerate(KINDS)}
    client = rng.integers(0, n_clients, n)
    youth = mix64(client, 99) % 100 < 30  # 30% of clients are children or young people
    d = _draw(n, rng, client, youth)
    if pseudonymised:
        bad["invalid_person_id"][:] = False
    person = _person(t, client, youth, np.where(bad["invalid_person_id"], 1 + g % 9, 0), rng, pseudonymised)
    everyone = np.ones(n, bool)

    def day(off: np.ndarray, keep: np.ndarray) -> pl.Series:
        return where(t.date(np.where(keep, off, 0)), keep)

    ended = ~d["ongoing"] | bad["date_order"]
    reason = np.where(bad["date_order"] & d["ongoing"], 1, d["reason"])  # client_ended
    reasons = codec.hide([code_list("end_reasons").label(c) for c in code_list("end_reasons").codes])
    values = {tp: _values(t, rng, d["ins"], d[z]) for tp, z in (("T0", "z0"), ("T1", "z1"), ("T2", "z2"))}
    not_assessed = gather_text(["0", None], (g % 3 > 0).astype(np.int64))
    needs = codec.hide([code_list("need_areas").label(c) for c in d["needs"]])
    need = np.where(bad["unknown_need_area"], len(needs), np.where(bad["missing_value"], len(needs) + 1, d["need"]))
    key = np.where(bad["duplicate_key"], g - 1, g)
    # the municipality follows from the key, so a duplicated key repeats its municipality too
    share = (mix64(key, 5) >> np.uint64(11)).astype(np.float64) / 2.0**53
    cum = np.cumsum(list(model.SODERTORN_POPULATION.values()))
    muni = np.minimum(np.searchsorted(cum, share * cum[-1], side="right"), len(cum) - 1)
    cols = {
        "municipality": gather_text(_CODES, muni),
        # "K" + 9 digits: never 10 digits in a row, which an importer would take for a person id
        "record_key": "K" + pl.Series(key + 10**8).cast(pl.String),
        **person,
        "need_area": gather_text(needs + ["Fritid", None], need),
        "intervention_code": gather_text(d["codes"] + ["KBT"], np.where(bad["unknown_intervention_code"], len(d["codes"]), d["code"])),
        "legal_basis": gather_text(d["legals"], d["legal"]),
        "provider": gather_text(["Egen regi", "Extern"], d["external"].astype(np.int64)),
        "started_on": where(day(d["start"], everyone), ~bad["invalid_date"], const("20240230", n)),
        "ended_on": day(np.where(bad["date_order"], d["start"] - 30, d["end"]), ended),
        "end_reason": where(gather_text(reasons, reason), ended),
        "goal_attainment": where(where(gather_text(_GOAL_TEXT, d["goal"]), d["has_t1"], not_assessed), ended),
        "instrument": gather_text(_INSTRUMENTS, d["ins"]),
        "T0": where(values["T0"], ~bad["out_of_range"], const("-1", n)),
        "T0date": day(d["t0"], everyone),
        "T1": where(values["T1"], d["has_t1"]),
        "T1date": day(d["t1"], d["has_t1"]),
        "T2": where(values["T2"], d["has_t2"]),
        "T2date": day(d["t2"], d["has_t2"]),
    }
    return cols, {k: int(v.sum()) for k, v in bad.items()}


def _rejected(planted: dict[str, int]) -> dict[str, int]:
    """Rows an importer rejects, by its error type: both occurrences of a duplicate key."""
    fields = {"missing_value": "need_area"}
    out: dict[str, int] = {}
    for kind, n in planted.items():
        t = error_type(kind, fields.get(kind), "wide")
        out[t] = out.get(t, 0) + n * (2 if kind == "duplicate_key" else 1)
    return dict(sorted((k, v) for k, v in out.items() if v))


def _values(t: TextTables, rng, ins: np.ndarray, z: np.ndarray) -> pl.Series:
    """Instrument values as the file writes them (integers, or three decimals with a decimal comma)."""
    rows = {r["code"]: r for r in code_list("instruments").rows}
    p = np.array([[float(rows[i]["min"]), float(rows[i]["max"]), float(rows[i]["reference_sd"]),
                   -1.0 if rows[i]["higher_is_better"] == "true" else 1.0, model.INSTRUMENT_CENTRES[i]]
                  for i in _INSTRUMENTS])[ins]
    v = np.clip(p[:, 4] + p[:, 3] * p[:, 2] * (z + rng.normal(0, 0.25, len(z))), p[:, 0], p[:, 1])
    decimals = np.array([model.INSTRUMENT_DECIMALS[i] > 0 for i in _INSTRUMENTS])[ins]
    return gather_text(t.values, np.where(decimals, 11 + np.round(v * 1000), np.round(v)).astype(np.int64))


def write_benchmark_csv(
    path: str | Path,
    rows: int,
    *,
    seed: int = model.DEFAULT_SEED,
    encoding: str = "cp1252",
    bad_fraction: float = 0.001,
    pseudonymised: bool = False,
    chunk_rows: int = 100_000,
) -> BenchmarkFile:
    """Write a wide ``generic_sv`` semicolon CSV of ``rows`` rows (decimal comma, YYYYMMDD dates).

    Every ``round(1/bad_fraction)``-th row is spoilt in one way (fault kinds in turn); the result
    says which rows an importer must reject, by error type. ``pseudonymised`` writes pseudonym,
    birth year and sex instead of the person id (then no ``invalid_person_id`` faults).
    ``encoding`` is a Python codec (``cp1252``, ``utf-8``, ``utf-8-sig``). Rows are made and
    written ``chunk_rows`` at a time, so memory does not grow with ``rows``; the same arguments
    give the same bytes.
    """
    if not 0 < bad_fraction <= 0.25:
        raise ValueError("bad_fraction must be in (0, 0.25] so that spoilt rows never touch each other")
    profile = load_profile("generic_sv")
    g = profile.groups[0]
    fields = [f for f in profile.columns if f not in ("category",)]
    fields = [f for f in fields if f not in (("person_id",) if pseudonymised else ("client", "birth_year"))]
    names = {**profile.columns, "instrument": g.instrument_column,
             **{tp + k: c for tp, spec in g.timepoints.items() for k, c in (("", spec["value"]), ("date", spec["date"]))}}
    order = fields + ["instrument"] + [tp + k for tp in g.timepoints for k in ("", "date")]
    codec = OutputCodec(encoding, [code_list(n).label(c) for n in ("need_areas", "end_reasons") for c in code_list(n).codes])
    out, bad_every, totals = Path(path), max(3, round(1 / bad_fraction)), dict.fromkeys(KINDS, 0)
    n_clients, tables = max(1, int(rows * 0.7)), TextTables()
    with out.open("wb") as f:
        f.write(codec.header([names[k] for k in order], ";"))
        for i, first in enumerate(range(0, rows, chunk_rows)):
            rng = np.random.default_rng([seed, i])
            cols, bad = _chunk(tables, codec, min(chunk_rows, rows - first), first, rng, n_clients, bad_every,
                               pseudonymised)
            totals = {k: totals[k] + bad.get(k, 0) for k in totals}
            buf = io.BytesIO()
            pl.DataFrame({names[k]: cols[k] for k in order}).write_csv(
                buf, include_header=False, separator=";", line_terminator="\r\n", null_value="")
            f.write(codec.body(buf.getvalue()))
        size = f.tell()
    planted = {k: v for k, v in totals.items() if v}
    return BenchmarkFile(out, rows, planted, _rejected(planted), size)

