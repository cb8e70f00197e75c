"""Which part of the publication a dashboard is about, and what it is compared with.

Default: the whole publication. ``--municipality`` focuses on one municipality and compares it with
its county, the pools it belongs to and the whole publication. ``--region`` takes a county code or
a pool code (``schemas/codes/pools.csv``) and compares its municipalities in the funnel plot.
"""

from __future__ import annotations

from dataclasses import dataclass

from isu.schemas import code_list

from isu.errors import IsuError

from .labels import Labels

__all__ = ["Geo", "Scope", "UnknownArea", "resolve_scope"]

ALL = ("all", "all")


class UnknownArea(IsuError):
    """--municipality / --region names an area the publication holds no cells for."""

    exit_code = 2


@dataclass(frozen=True)
class Geo:
    level: str
    code: str
    label: str

    @property
    def key(self) -> str:
        return f"{self.level}:{self.code}"


@dataclass(frozen=True)
class Scope:
    focus: Geo
    comparisons: tuple[Geo, ...]  # shown beside the focus (trend, table)
    members: tuple[Geo, ...]  # municipalities in the funnel plot
    reference: Geo  # the funnel's centre line (overall share)

    @property
    def geos(self) -> tuple[Geo, ...]:
        """Focus and comparisons: the areas whose every published measure the page needs."""
        return (self.focus, *self.comparisons)


def _pool_members(pool: str) -> set[str]:
    pools = code_list("pools")
    return set(pools.row(pool).get("municipalities", "").split()) if pool in pools else set()


def resolve_scope(
    available: set[tuple[str, str]], labels: Labels, municipality: str | None = None, region: str | None = None
) -> Scope:
    """The scope for the options given, checked against the (level, code) pairs the publication holds."""
    if municipality and region:
        raise UnknownArea("give either --municipality or --region, not both")
    geo = lambda level, code: Geo(level, code, labels.geo(level, code))
    munis = sorted(code for level, code in available if level == "municipality")
    members = [geo("municipality", code) for code in munis]

    if municipality:
        if ("municipality", municipality) not in available:
            raise UnknownArea(
                f"municipality {municipality} has no published cells in this workspace; "
                f"published municipalities: {', '.join(munis) or 'none'}"
            )
        comparisons = [("county", municipality[:2])]
        comparisons += [("pool", p) for p in code_list("pools").codes if municipality in _pool_members(p)]
        comparisons += [ALL]
        comps = tuple(geo(*c) for c in comparisons if c in available)
        reference = geo(*ALL) if ALL in available else (comps[-1] if comps else geo("municipality", municipality))
        return Scope(geo("municipality", municipality), comps, tuple(members), reference)

    if region:
        if ("county", region) in available:
            focus = geo("county", region)
            inside = [m for m in members if m.code[:2] == region]
        elif ("pool", region) in available:
            focus = geo("pool", region)
            inside = [m for m in members if m.code in _pool_members(region)]
        else:
            regions = sorted(code for level, code in available if level in ("county", "pool"))
            raise UnknownArea(
                f"region {region} (a county code such as 01 or a pool code from pools.csv) has no published "
                f"cells in this workspace; published regions: {', '.join(regions) or 'none'}"
            )
        comps = (geo(*ALL),) if ALL in available else ()
        return Scope(focus, comps, tuple(inside), focus)

    for level in ("all", "pool", "county", "municipality"):
        codes = sorted(code for lvl, code in available if lvl == level)
        if codes:
            focus = geo(level, codes[0])
            return Scope(focus, (), tuple(members), focus)
    raise UnknownArea("the publication holds no cells for any area")
