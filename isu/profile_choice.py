"""Which profile reads an export, and (for a workbook) from which sheet.

A profile fits a header that has every column it needs; of several, the one that reads most of the
header's columns. A column the profile expects but lacks, next to an unknown one spelt nearly like
it, is a typo: read without it, a whole field would be dropped without a word.
"""

from __future__ import annotations

import contextlib
import difflib

from isu.schemas import Profile, load_profile, profile_names
from isu.schemas.profiles import ProfileError, ProfileNotFound

from .errors import InputError, ProfileMismatch, UsageError
from .pseudonym import mask_ids
from .read import Source

__all__ = ["choose_profile", "choose_source"]


def _required_sources(profile: Profile, municipality: str | None) -> list[tuple[str, list[str]]]:
    """(what, acceptable source columns) that the header must contain."""
    need = [(f, [profile.columns[f]]) for f in ("record_key", "need_area", "intervention_code", "started_on") if f in profile.columns]
    if municipality is None:
        need.append(("municipality", [profile.columns.get("municipality", "municipality")]))
    ids = [profile.columns[f] for f in ("person_id", "client") if f in profile.columns]
    need.append(("person id or pseudonym", ids))
    if profile.shape == "long":
        need += [(f, [profile.long[f]]) for f in ("timepoint", "instrument", "value")]
    return need


def choose_source(src: Source, name: str | None, municipality: str | None) -> tuple[Profile, Source]:
    """The profile and, for a workbook, the sheet to read: the one the named profile names, else
    the first sheet Excel shows, else the only other sheet whose header fits (a workbook often opens
    on a sheet of notes, with the export on the next), a shown sheet before a hidden one. A sheet's header that cannot be read (a name
    repeated) stops the import only when it is the sheet read: a sheet of notes may repeat names."""
    if src.kind != "xlsx":
        return choose_profile(src, name, municipality), src
    wanted = _profiles(name)[0].sheet if name else None
    if wanted is not None:
        return _readable(*_on_sheet(src.on_sheet(wanted), name, municipality))
    try:
        return _readable(*_on_sheet(src, name, municipality))
    except ProfileMismatch as first:
        fits, near = [], None  # near: a later sheet whose header misspells a column (that says more)
        for sheet in src.other_sheets:
            try:
                fits.append(_on_sheet(src.on_sheet(sheet), name, municipality))
            except _Misspelt as e:
                near = near or e
            except ProfileMismatch:
                pass
        shown = [f for f in fits if not f[1].sheet_hidden]  # a hidden copy loses to the sheet a person sees
        if len(shown) == 1 or len(fits) == 1:
            return _readable(*(shown or fits)[0])
        others = ", ".join(repr(s) for s in src.other_sheets)
        if fits:
            raise ProfileMismatch(mask_ids(
                f"{src.path.name}: sheet {src.sheet!r} does not fit, and sheets {', '.join(repr(o.sheet) for _, o in fits)} all do; "
                "keep the export's sheet first, or name it in a profile (sheet = \"...\")")) from None
        if near is not None and not isinstance(first, _Misspelt):
            raise ProfileMismatch(str(near)) from None
        also = f"; no other sheet fits either: {others}" if others else ""
        if not src.header:
            raise ProfileMismatch(f"{src.path.name}: sheet {mask_ids(repr(src.sheet))} is empty{mask_ids(also)}") from None
        raise ProfileMismatch(f"{first} (on sheet {mask_ids(repr(src.sheet))}, whose first row with a value, row {src.header_row}, "
                              f"must be the header{mask_ids(also)})") from None


def _on_sheet(src: Source, name: str | None, municipality: str | None) -> tuple[Profile, Source]:
    """The profile that fits the sheet's header: on its first row with a value, else on one of the
    next such rows (a title or notes above the table); else the first row's ``ProfileMismatch``."""
    try:
        return choose_profile(src, name, municipality), src
    except ProfileMismatch:
        for row in src.header_rows():
            with contextlib.suppress(ProfileMismatch):
                lower = src.at_row(row)
                return choose_profile(lower, name, municipality), lower
        raise


def _readable(profile: Profile, src: Source) -> tuple[Profile, Source]:
    if src.header_problem is not None:
        raise InputError(f"{src.path}: sheet {mask_ids(repr(src.sheet))}: {src.header_problem}")
    return profile, src


def _profiles(name: str | None) -> list[Profile]:
    """The named profile, or every shipped one. A name that names none is a usage error (like an
    unknown --municipality); a profile file that cannot be used is an input error."""
    try:
        return [load_profile(name)] if name else [load_profile(n) for n in profile_names()]
    except ProfileNotFound as e:
        raise UsageError(str(e)) from None
    except ProfileError as e:
        raise InputError(str(e)) from None


def _missing(profile: Profile, header: tuple[str, ...], municipality: str | None) -> list[tuple[str, str]]:
    return [(what, cols[0]) for what, cols in _required_sources(profile, municipality) if not any(c in header for c in cols)]


def choose_profile(src: Source, name: str | None, municipality: str | None) -> Profile:
    """The named profile, checked against the header; or the shipped profile that fits it."""
    candidates = [p.spelt_as(src.header) for p in _profiles(name)]
    fitting = [p for p in candidates if not _missing(p, src.header, municipality)]
    if fitting:
        chosen = max(fitting, key=lambda p: sum(c in src.header for c in p.source_columns()))
        _check_misspelt(chosen, src)
        return chosen
    best = max(candidates, key=lambda p: sum(c in src.header for c in p.source_columns()))
    what, col = _missing(best, src.header, municipality)[0]
    near = difflib.get_close_matches(col, src.header, n=1, cutoff=0.5)
    # a headerless export's first line is data: header names are masked like any value
    hint = (f"; nearest in the file: {mask_ids(near[0])!r}" if near else f"; the file has: {mask_ids(', '.join(src.header[:12]))}"
            if src.header else "; it has no header: it is empty")
    extra = " (or pass --municipality CODE)" if what == "municipality" else ""
    broken = [h for h in src.header if "\n" in h or "\r" in h]  # a header cell typed with Alt+Enter
    if broken:
        hint += (f"; the header name {mask_ids(broken[0])!r} holds a line break: remove it in the export (or a text editor) "
                 "and import again")
    raise ProfileMismatch(f"{src.path.name}: column {col!r} ({what}) not found for profile {best.name!r}{extra}{hint}")


class _Misspelt(ProfileMismatch):
    """A header that would fit but for a column's name: a typo."""


def _check_misspelt(profile: Profile, src: Source) -> None:
    """A header column the profile does not know, close to one it expects but lacks, is a typo:
    ignoring it would silently drop that field (say, every end date), so it is an error."""
    expected = set(profile.source_columns())
    unknown = [h for h in src.header if h not in expected]
    for col in expected - set(src.header):
        near = difflib.get_close_matches(col, unknown, n=1, cutoff=0.8)
        if near:
            sheet = f" (on sheet {mask_ids(repr(src.sheet))})" if src.sheet is not None else ""
            raise _Misspelt(
                f"{src.path.name}: column {col!r} of profile {profile.name!r} not found, but the file has {mask_ids(near[0])!r}{sheet}; "
                "rename the column or use a profile that names it")
