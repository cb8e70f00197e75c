"""Index of one suppression problem: dimensions, the published cells of linked tables, positive leaf cells.

Why a separate model: the engine (:mod:`isu.suppress`) and its box search work on integer indices and
dense per-table arrays, never on strings. Cells shared by several tables (a margin published in two
tables) get one *canonical* id, so suppression is consistent across all tables of a call.

Codes of a dimension are numbered leaves first (sorted), then groups (largest first); a leaf maps to
itself. A table's cells form a dense array over the codes of its broken-down dimensions (the other
dimensions sit at the total code, whose group holds every leaf).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from isu.errors import IsuError

__all__ = ["MAX_TABLE_CELLS", "DimIndex", "Dimension", "Model", "TableIndex", "build_model"]

#: A table is held as a dense array over its codes; beyond this, split the call (or coarsen codes).
MAX_TABLE_CELLS = 40_000_000


@dataclass(frozen=True)
class Dimension:
    """A classification: every published code → the frozenset of leaf codes it sums.

    Leaves map to themselves; a total (conventionally ``all``) maps to every leaf; other groups
    (county, pool, year, ``paired``) may overlap and need not nest.
    """

    name: str
    groups: Mapping[str, frozenset[str]]

    @classmethod
    def flat(cls, name: str, leaves: list[str], total: str | None = "all") -> Dimension:
        groups = {leaf: frozenset({leaf}) for leaf in leaves}
        if total is not None:
            groups[total] = frozenset(leaves)
        return cls(name, groups)


@dataclass
class DimIndex:
    name: str
    codes: list[str]
    index: dict[str, int]
    n_leaves: int
    mem: np.ndarray          # bool (codes × leaves): leaf ∈ group(code)
    total: int               # code index of the total (group of every leaf), -1 if none
    anc: np.ndarray          # int (leaves × A): codes containing the leaf, padded with -1

    @property
    def n(self) -> int:
        return len(self.codes)


def _dim_index(d: Dimension) -> DimIndex:
    groups = {str(c): frozenset(str(x) for x in g) for c, g in d.groups.items()}
    members = set().union(*groups.values()) if groups else set()
    leaves = sorted(c for c, g in groups.items() if g == {c})
    missing = sorted(members - set(leaves))
    if not leaves or missing or any(not g for g in groups.values()):
        raise IsuError(f"dimension {d.name!r}: every group must be non-empty and made of leaf codes that map to "
                       f"themselves (not leaves: {missing[:5]}); fix the hierarchy passed to suppression")
    others = sorted((c for c in groups if c not in set(leaves)), key=lambda c: (-len(groups[c]), c))
    codes = leaves + others
    lidx = {leaf: i for i, leaf in enumerate(leaves)}
    mem = np.zeros((len(codes), len(leaves)), dtype=bool)
    for ci, c in enumerate(codes):
        mem[ci, [lidx[x] for x in groups[c]]] = True
    full = np.flatnonzero(mem.all(axis=1))
    total = int(full[0]) if len(full) and len(leaves) > 1 else (int(full[-1]) if len(full) else -1)
    counts = mem.sum(axis=0)
    anc = np.full((len(leaves), int(counts.max())), -1, dtype=np.int64)
    for leaf in range(len(leaves)):
        a = np.flatnonzero(mem[:, leaf])
        anc[leaf, : len(a)] = a
    return DimIndex(d.name, codes, {c: i for i, c in enumerate(codes)}, len(leaves), mem, total, anc)


@dataclass
class TableIndex:
    name: str
    bdims: tuple[int, ...]            # positions of broken-down dimensions
    shape: tuple[int, ...]            # codes per broken-down dimension
    canon: np.ndarray                 # canonical cell id per dense position (C order)
    leaf_value: np.ndarray            # dense counts over the leaf codes of bdims


@dataclass
class Model:
    dims: list[DimIndex]
    tables: list[TableIndex]
    cell_codes: np.ndarray            # (cells × dims) code index per canonical cell
    cell_value: np.ndarray            # int64 per canonical cell
    leaf_coords: np.ndarray           # (leaves × dims) leaf index per positive inner cell
    leaf_value: np.ndarray            # int64 (> 0)
    leaf_contrib: np.ndarray          # int64 contributor id, -1 when no contributor column
    contributors: list[str]
    inc_ptr: np.ndarray               # CSR leaf → canonical cells containing it
    inc_cells: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return len(self.cell_value)


def _leaf_frame(inner: pl.DataFrame, dims: list[DimIndex], value: str, contributor: str | None) -> pl.DataFrame:
    names = [d.name for d in dims]
    need = [*names, value] + ([contributor] if contributor else [])
    lacking = [c for c in need if c not in inner.columns]
    if lacking:
        raise IsuError(f"suppression input lacks column(s) {lacking}; it has {inner.columns}")
    if inner.height and not inner[value].dtype.is_integer():
        raise IsuError(f"suppression count column {value!r} must be integer, not {inner[value].dtype}")
    df = inner.select(*(pl.col(n).cast(pl.String) for n in names), pl.col(value).cast(pl.Int64).alias("_n"),
                      *([pl.col(contributor).cast(pl.String).alias("_c")] if contributor else []))
    if df.filter(pl.col("_n") < 0).height:
        raise IsuError(f"suppression count column {value!r} has negative values; counts must be ≥ 0")
    for d in dims:
        bad = df.filter(~pl.col(d.name).is_in(d.codes[: d.n_leaves]))[d.name].unique().to_list()
        if bad:
            raise IsuError(f"inner cells have {d.name}={bad[:5]} which are not leaf codes of that dimension")
    agg = [pl.col("_n").sum()]
    if contributor:
        agg.append(pl.col("_c").first())
        many = df.filter(pl.col("_n") > 0).group_by(names).agg(pl.col("_c").n_unique().alias("k")).filter(pl.col("k") > 1)
        if many.height:
            raise IsuError(f"inner cells list several contributors for one leaf cell ({many.height} cells); "
                           "give one row per leaf cell and contributor's sum")
    return df.group_by(names).agg(*agg).filter(pl.col("_n") > 0).sort(names)


def _table(name: str, bd: tuple[int, ...], dims: list[DimIndex], coords: np.ndarray, x: np.ndarray) -> tuple:
    shape = tuple(dims[j].n for j in bd)
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size > MAX_TABLE_CELLS:
        raise IsuError(f"table {name!r} has {size:,} cells (> {MAX_TABLE_CELLS:,}); split it into smaller tables")
    lshape = tuple(dims[j].n_leaves for j in bd)
    leaf_vals = np.zeros(lshape, dtype=np.int64)
    if len(x):
        np.add.at(leaf_vals, tuple(coords[:, j] for j in bd), x)
    full = leaf_vals
    for axis, j in enumerate(bd):
        full = np.moveaxis(np.tensordot(dims[j].mem.astype(np.int64), full, axes=([1], [axis])), 0, axis)
    return shape, leaf_vals, full


def build_model(inner: pl.DataFrame, dimensions: list[Dimension], tables: list[tuple[str, list[str]]],
                value: str, contributor: str | None) -> Model:
    """Validate the inputs and index them (raises ``IsuError`` with one clear message on bad input)."""
    dims = [_dim_index(d) for d in dimensions]
    pos = {d.name: i for i, d in enumerate(dims)}
    if len(pos) != len(dims) or not tables:
        raise IsuError("suppression needs distinct dimension names and at least one table")
    lf = _leaf_frame(inner, dims, value, contributor)
    coords = np.column_stack([lf[d.name].replace_strict({c: i for i, c in enumerate(d.codes[: d.n_leaves])},
                                                        return_dtype=pl.Int64).to_numpy() for d in dims]) \
        if lf.height else np.zeros((0, len(dims)), dtype=np.int64)
    x = lf["_n"].to_numpy().astype(np.int64)
    contribs = sorted(lf["_c"].unique().to_list()) if contributor else []
    cid = (lf["_c"].replace_strict({c: i for i, c in enumerate(contribs)}, return_dtype=pl.Int64).to_numpy()
           if contributor else np.full(len(x), -1, dtype=np.int64))
    radix = np.array([d.n for d in dims], dtype=np.float64)
    if np.prod(radix) >= 2.0**62:
        raise IsuError("too many codes across dimensions to index cells; reduce the dimensions of one call")
    strides = np.array([int(np.prod([d.n for d in dims[j + 1:]], dtype=np.int64)) for j in range(len(dims))],
                       dtype=np.int64)
    keys, parts = [], []
    for name, tdims in tables:
        unknown = [t for t in tdims if t not in pos]
        if unknown:
            raise IsuError(f"table {name!r} breaks down unknown dimension(s) {unknown}; known: {list(pos)}")
        bd = tuple(sorted(pos[t] for t in set(tdims)))
        lacking = [dims[j].name for j in range(len(dims)) if j not in bd and dims[j].total < 0]
        if lacking:
            raise IsuError(f"table {name!r} does not break down {lacking}, which have no total code; add them")
        shape, leaf_vals, full = _table(name, bd, dims, coords, x)
        key = np.zeros(shape, dtype=np.int64)
        for axis, j in enumerate(bd):
            key = key + (np.arange(dims[j].n, dtype=np.int64) * strides[j]).reshape(
                [-1 if a == axis else 1 for a in range(len(bd))])
        key = key + sum(int(dims[j].total * strides[j]) for j in range(len(dims)) if j not in bd)
        keys.append(key.ravel())
        parts.append((name, bd, shape, leaf_vals, full.ravel()))
    ukeys = np.sort(np.concatenate(keys))
    ukeys = ukeys[np.r_[True, ukeys[1:] != ukeys[:-1]]]
    values = np.zeros(len(ukeys), dtype=np.int64)
    tabs = []
    for key, (name, bd, shape, leaf_vals, full) in zip(keys, parts):
        canon = np.searchsorted(ukeys, key)
        values[canon] = full
        tabs.append(TableIndex(name, bd, shape, canon.reshape(shape), leaf_vals))
    cell_codes = np.column_stack([(ukeys // strides[j]) % dims[j].n for j in range(len(dims))])
    ptr, cells = _incidence(dims, tabs, coords)
    return Model(dims, tabs, cell_codes, values, coords, x, cid, contribs, ptr, cells)


def _incidence(dims: list[DimIndex], tabs: list[TableIndex], coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR leaf → every canonical cell that sums it (over all tables, without repeats)."""
    n = len(coords)
    pairs = []
    for t in tabs:
        strides = np.cumprod((1,) + t.shape[::-1])[::-1][1:] if t.shape else np.zeros(0, dtype=np.int64)
        flat_canon = t.canon.ravel()
        slots = [range(dims[j].anc.shape[1]) for j in t.bdims]
        for combo in itertools.product(*slots):
            flat = np.zeros(n, dtype=np.int64)
            ok = np.ones(n, dtype=bool)
            for axis, (j, s) in enumerate(zip(t.bdims, combo)):
                code = dims[j].anc[coords[:, j], s]
                ok &= code >= 0
                flat += np.where(code >= 0, code, 0) * strides[axis]
            leaf = np.flatnonzero(ok)
            pairs.append((leaf, flat_canon[flat[ok]]))
    leaf = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    cell = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    ncell = int(cell.max()) + 1 if len(cell) else 1
    packed = np.sort(leaf.astype(np.int64) * ncell + cell)
    packed = packed[np.r_[True, packed[1:] != packed[:-1]]] if len(packed) else packed
    leaf, cell = packed // ncell, packed % ncell
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, leaf + 1, 1)
    return np.cumsum(ptr), cell
