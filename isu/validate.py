"""Compile the record contract to vectorised DuckDB SQL, and explain failing values with pydantic.

Two layers over the scan of an export. ``text_layer`` maps the profile's source columns to the
contract's names as cleaned text (trimmed by the scan, empty → NULL, source codes and labels → codes). The
``typed_layer`` casts each field, and beside it computes an error type (or NULL) from the field's
constraints as ``isu.contract`` reads them off the pydantic model, plus the models' cross-field
rules. Each check is a scalar column ``_e<i>`` (error type or NULL) inside the query; out come ``_ok``
(all NULL) and ``_rejects``, the list of {column, type, value} built only for failing rows, so the
clean path stays fast and the stage stays small.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from isu.schemas import Profile, code_list
from isu.schemas.models import Intervention, Measurement
from isu.schemas.rules import NotBefore, WithinInstrumentRange

from . import pseudonym
from . import sql_text
from .errors import IsuError
from .contract import FieldSpec, measurement_fields, record_fields
from .trim import BLANK

__all__ = ["Layer", "ROW", "TextLayer", "q", "lit", "text_layer", "typed_layer", "ID_PATTERN_SQL"]

#: The row number column the scan adds (``isu.stage.open_scan``): the text layer reads it.
ROW = "__isu_row"
#: A value that may carry a personnummer/samordningsnummer (RE2), for checks on keys and codes:
#: the masker's pattern (``isu.pseudonym.ID_PATTERN``: same syntax in Python's ``re`` and RE2).
ID_PATTERN_SQL = pseudonym.ID_PATTERN


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL literal (strings, numbers, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return sql_text.string(str(value))


@dataclass
class Layer:
    """An ordered SELECT list: output name → expression."""

    cols: dict[str, str]

    def sql(self, source: str, *, hidden: tuple[str, ...] = ("_pid", "pid_", "_e", "_given_")) -> str:
        """Nested SELECTs over ``source``, each column computed once, after the columns it names.

        DuckDB substitutes a reference to an alias of the same SELECT list by its expression, so a
        check used three times would run three times; one level per dependency depth avoids that.
        Columns whose names start with ``hidden`` (the person id's steps, the per-check error
        columns) stay inside.
        """
        names = [n for n, e in self.cols.items() if e != n]
        pattern = {n: re.compile(r'(?<![\w."])"?' + re.escape(n) + r'"?(?![\w"])') for n in names}
        level: dict[str, int] = {}

        def depth(name: str) -> int:
            if name not in level:
                level[name] = 0
                deps = [d for d in names if d != name and pattern[d].search(self.cols[name])]
                level[name] = 1 + max((depth(d) for d in deps), default=-1)
            return level[name]

        sql = f"SELECT * FROM ({source})"
        for lvl in range(max((depth(n) for n in names), default=-1) + 1):
            exprs = ", ".join(f"{self.cols[n]} AS {q(n)}" for n in names if level[n] == lvl)
            sql = f"SELECT *, {exprs} FROM ({sql})"
        out = ", ".join(q(n) for n in self.cols if not n.startswith(hidden))
        return f"SELECT {out} FROM ({sql})"


def _clean(src_col: str) -> str:
    """'' is NULL. The scan has trimmed the cell (``isu.trim``): trimming every cell here took 0.3 s of
    a 1-million-row import, for spaces alone."""
    return f"nullif({q(src_col)}, '')"


def _aliases(field: str, spec: FieldSpec | None, profile: Profile) -> dict[str, str]:
    out: dict[str, str] = {}
    if spec is not None and spec.code_list:
        out.update(code_list(spec.code_list).aliases())
    out.update({k.strip().lower(): v for k, v in profile.values.get(field, {}).items()})
    return out


def _is_code(x: str, codes) -> str:
    whens = " ".join(f"WHEN {lit(c)} THEN true" for c in codes)
    return f"(CASE {x} {whens} ELSE false END)"


@dataclass
class TextLayer:
    """Cleaned text per contract field. Source codes and labels become codes through small alias
    tables joined by hash (several times faster in DuckDB than CASE, MAP or IN lists per row)."""

    inner: dict[str, str]  # over the scan: row number and cleaned source columns
    cols: dict[str, str]  # over inner + joins: the contract's text columns
    joins: list[str] = field(default_factory=list)
    aliases: dict[str, list[tuple[str, str, bool]]] = field(default_factory=dict)  # table → (key, code, known)
    header: tuple[str, ...] = ()  # every column of the export, read or not
    read: set[str] = field(default_factory=set)  # the header's columns ``clean`` reads

    def clean(self, name: str, src: str) -> None:
        """Source column ``src`` ('' is NULL; the scan trims its cells), as the inner column ``name``."""
        self.inner[name] = _clean(src)
        self.read.add(src)

    def sql(self, scan: str) -> str:
        """Rows whose every cell is empty are left out: a spreadsheet saves rows it has only formatted
        as such (``;;;`` in a CSV), and a person sees no row there (``isu.stage.Typing`` counts them).
        The test stops at a row's first cell with text (AND evaluates on the rows still in question)."""
        unread = [c for c in self.header if c not in self.read]  # passed through the inner SELECT, tested only when all else is empty
        inner = ", ".join([f"{e} AS {q(n)}" for n, e in self.inner.items()] + [f"{q(c)} AS {q('_u_' + c)}" for c in unread])
        outer = ", ".join(f"{e} AS {q(n)}" for n, e in self.cols.items())
        empty = [f"s.{q(n)} IS NULL" for n in self.inner if n != "_row"]  # cleaned: trimmed, '' is NULL
        empty += [f"(s.{q('_u_' + c)} IS NULL OR trim(s.{q('_u_' + c)}, {lit(BLANK)}) = '')" for c in unread]
        where = f" WHERE NOT ({' AND '.join(empty)})" if empty else ""
        return f"SELECT {outer} FROM (SELECT {inner} FROM {scan}) AS s " + " ".join(self.joins) + where

    def create_alias_tables(self, con) -> None:
        """One statement a table (``executemany`` took 0.13 s for the ~800 aliases of a profile)."""
        for name, rows in self.aliases.items():
            keys, codes, known = (list(c) for c in zip(*rows)) if rows else ([], [], [])
            con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest($1::VARCHAR[]) AS k, "
                        "unnest($2::VARCHAR[]) AS v, unnest($3::BOOLEAN[]) AS known", [keys, codes, known])


def text_layer(profile: Profile, header: tuple[str, ...] | set[str], *, municipality: str | None) -> TextLayer:
    """Source columns → contract names as cleaned text (``_t_<field>``), the id's first layer, the row number."""
    layer = TextLayer({"_row": ROW}, {"_row": "s._row"}, header=tuple(header))

    def add(field: str, src: str, spec: FieldSpec | None, out: str | None = None) -> None:
        out = out or field
        c = f"_c_{out}"
        layer.clean(c, src)
        aliases = _aliases(field, spec, profile)
        if not aliases:
            layer.cols[f"_t_{out}"] = f"s.{q(c)}"
            return
        table = f"_alias_{field}"
        if table not in layer.aliases:
            codes = set(code_list(spec.code_list).codes) if spec is not None and spec.code_list else set()
            layer.aliases[table] = [(k, v, v in codes) for k, v in sorted(aliases.items())]
        a = f"a_{out}"
        layer.joins.append(f"LEFT JOIN {table} AS {a} ON {a}.k = lower(s.{q(c)})")
        layer.cols[f"_t_{out}"] = f"coalesce({a}.v, s.{q(c)})"
        layer.cols[f"_k_{out}"] = f"coalesce({a}.known, false)"

    fields, mfields = record_fields(), measurement_fields()
    for f, src in profile.columns.items():
        if src in header and f != "person_id":
            add(f, src, fields.get(f))
    if municipality is not None:
        layer.cols["_given_municipality"] = lit(municipality)
        if "_t_municipality" not in layer.cols:
            layer.cols["_t_municipality"] = lit(municipality)
            layer.cols["_k_municipality"] = "true" if municipality in code_list("municipalities") else "false"
    pid_src = profile.columns.get("person_id")
    if pid_src in header:
        layer.clean("_c_person_id", pid_src)
        layer.cols["_t_person_id"] = "s._c_person_id"
    if profile.shape == "long":
        for f, src in profile.long.items():
            if src in header:
                add(f, src, mfields.get(f))
    for g, group in enumerate(profile.groups):
        if group.instrument_column in header:
            add("instrument", group.instrument_column, mfields["instrument"], out=f"m{g}_instrument")
        elif group.instrument_column:
            layer.cols[f"_t_m{g}_instrument"] = "NULL"  # values without it are rejected as missing_value
        else:
            layer.cols[f"_t_m{g}_instrument"] = lit(group.instrument)
        for tp, spec in group.timepoints.items():
            for key, name in (("value", "value"), ("date", "measured_on")):
                out = f"m{g}_{tp}_{name}"
                if spec.get(key) in header:
                    layer.clean(f"_c_{out}", spec[key])
                    layer.cols[f"_t_{out}"] = f"s.{q('_c_' + out)}"
                else:
                    layer.cols[f"_t_{out}"] = "NULL"
    return layer


def _typed(spec: FieldSpec, x: str, profile: Profile) -> str:
    if spec.kind == "date":
        return _date_sql(x, (*profile.date_formats, *_DATE_TIMES))
    if spec.kind == "int":
        return f"TRY_CAST({x} AS INTEGER)"
    if spec.kind == "float":
        num = f"replace({x}, ',', '.')" if profile.decimal == "," else x
        return f"TRY_CAST({num} AS DOUBLE)"
    return x


def _literals(fmt: str) -> set[str]:
    """Characters a strptime format requires verbatim (not directives, not whitespace)."""
    out, i = set(), 0
    while i < len(fmt):
        if fmt[i] == "%":
            i += 3 if fmt[i + 1 : i + 2] in ("-", "#") else 2
            continue
        if not fmt[i].isspace():
            out.add(fmt[i])
        i += 1
    return out


#: A date with a time, as a workbook's date-time cell reads (with fractions of a second when it has
#: them, though the cell may show the date alone): the date is what counts.
_DATE_TIMES = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f")


def _date_sql(x: str, formats: tuple[str, ...]) -> str:
    """The first format that parses ``x`` wins (as ``try_strptime`` with a list). A format is only
    tried when ``x`` holds its literal characters: a failed parse costs ten times a successful one
    in DuckDB, and a list tries every format before the right one on every row."""
    tries = []
    for fmt in dict.fromkeys(formats):
        need = " AND ".join(f"contains({x}, {lit(c)})" for c in sorted(_literals(fmt)))
        parse = f"try_strptime({x}, {lit(fmt)})"
        tries.append(f"CASE WHEN {need} THEN {parse} END" if need else parse)
    return f"CAST(coalesce({', '.join(tries)}) AS DATE)"


def _error(spec: FieldSpec, x: str, typed: str, required: bool | None = None, known: str | None = None) -> str:
    """CASE yielding the catalogue type of the first failed constraint, else NULL."""
    required = spec.required if required is None else required
    whens = [f"WHEN {x} IS NULL THEN {lit('missing_value') if required else 'NULL'}"]
    bad = {"date": "bad_date", "int": "bad_integer", "float": "bad_number"}.get(spec.kind)
    if bad:
        whens.append(f"WHEN {typed} IS NULL THEN '{bad}'")
    if spec.kind == "float":
        whens.append(f"WHEN NOT isfinite({typed}) THEN 'bad_number'")
    if spec.code_list:
        is_code = q(known) if known else _is_code(typed, code_list(spec.code_list).codes)
        whens.append(f"WHEN NOT {is_code} THEN 'not_in_code_list'")
    if spec.ge is not None:
        whens.append(f"WHEN {typed} < {lit(str(spec.ge)) if spec.kind == 'date' else lit(spec.ge)} THEN 'out_of_range'")
    if spec.le is not None:
        whens.append(f"WHEN {typed} > {lit(str(spec.le)) if spec.kind == 'date' else lit(spec.le)} THEN 'out_of_range'")
    if spec.min_length is not None:
        whens.append(f"WHEN length({typed}) < {spec.min_length} THEN 'bad_format'")
    if spec.max_length is not None:
        whens.append(f"WHEN length({typed}) > {spec.max_length} THEN 'bad_format'")
    if spec.pattern:
        whens.append(f"WHEN NOT regexp_full_match({typed}, {lit(spec.pattern)}) THEN 'bad_format'")
    return "CASE " + " ".join(whens) + " END"


def _rule_errors(rules, typed: dict[str, str], prefix: str = "") -> dict[str, str]:
    """Cross-field rules of a model → {column: error CASE}."""
    out: dict[str, str] = {}
    for rule in rules:
        if isinstance(rule, NotBefore):
            a, b = typed[prefix + rule.later], typed[prefix + rule.earlier]
            out[prefix + rule.later] = f"CASE WHEN {a} < {b} THEN '{rule.type}' END"
        elif isinstance(rule, WithinInstrumentRange):
            inst = code_list("instruments")
            v, i = typed[prefix + rule.value], typed[prefix + rule.instrument]
            lo = f"CASE {i} " + " ".join(f"WHEN {lit(c)} THEN {rule.bounds(c)[0]}" for c in inst.codes) + " END"
            hi = f"CASE {i} " + " ".join(f"WHEN {lit(c)} THEN {rule.bounds(c)[1]}" for c in inst.codes) + " END"
            # a value too large to be finite is already a bad_number: one error for it, not two
            out[prefix + rule.value] = f"CASE WHEN isfinite({v}) AND ({v} < {lo} OR {v} > {hi}) THEN '{rule.type}' END"
        else:  # pragma: no cover - a new rule type must be compiled here
            raise NotImplementedError(type(rule).__name__)
    return out


def _err_struct(column: str, err: str, value: str) -> tuple[str, str, str]:
    """(source column a person sees, SQL error type or NULL, SQL of the value to report)."""
    return column, err, value


def typed_layer(profile: Profile, text: TextLayer) -> Layer:
    """Typed contract columns plus ``_ok`` and ``_rejects`` (list of {column, type, value}), from the text layer."""
    fields = record_fields()
    have = {n[3:] for n in text.cols if n.startswith("_t_")}
    cols: dict[str, str] = {"_row": "_row"}
    errs: list[tuple[str, str, str]] = []
    typed: dict[str, str] = {}
    src_name = lambda f: profile.columns.get(f, f)  # noqa: E731 - the column a person sees
    has_pid = "_t_person_id" in text.cols
    derived = ("sex", "birth_year") if has_pid else ()  # from the person id when it is valid
    for name, spec in fields.items():
        if name in ("client", "category"):
            continue
        x = q(f"_t_{name}") if name in have else "NULL"
        out = f"_given_{name}" if name in derived else name
        typed[name] = _typed(spec, x, profile)
        cols[out] = typed[name]
        known = f"_k_{name}" if f"_k_{name}" in text.cols else None
        errs.append(_err_struct(src_name(name), _error(spec, x, q(out), known=known), x))
    for col, err in _rule_errors(Intervention.rules, {k: q(k) for k in typed}).items():
        errs.append(_err_struct(src_name(col), err, q(f"_t_{col}") if col in have else "NULL"))
    # identity: a person id (checked, pseudonymised, sex and birth year derived) or a given pseudonym
    if has_pid:  # the id's steps: canonical form, validity, pseudonym, sex, birth year (never stored)
        cols.update({k: v for k, v in pseudonym.parse_sql("_t_person_id").items() if k != "pid_masked"})
        cols.update(pseudonym.derive_sql("pid_twelve"))
    client_spec = fields["client"]
    given = q("_t_client") if "client" in have else "NULL"
    masked_id = pseudonym.mask_sql("_t_person_id")  # look-alike digits too
    if has_pid:
        cols["client"] = f"coalesce(pid_client, {given})"
        cols["sex"] = f"CASE WHEN pid_valid THEN pid_sex ELSE {q('_given_sex')} END"
        cols["birth_year"] = f"CASE WHEN pid_valid THEN pid_birth_year ELSE {q('_given_birth_year')} END"
        errs.append(_err_struct(src_name("person_id"), "CASE WHEN _t_person_id IS NOT NULL AND NOT pid_valid THEN 'invalid_person_id' END", masked_id))
        by = fields["birth_year"]  # a derived birth year obeys the contract like a given one
        errs.append(_err_struct(src_name("person_id"), f"CASE WHEN pid_valid AND NOT (pid_birth_year BETWEEN {by.ge} AND {by.le}) "
                                "THEN 'out_of_range' END", masked_id))
        no_id = f"_t_person_id IS NULL AND {given} IS NULL"
    else:
        cols["client"] = given
        no_id = f"{given} IS NULL"
    id_column = src_name("person_id") if has_pid else src_name("client")  # where a person would fill it in
    errs.append(_err_struct(id_column, f"CASE WHEN {no_id} THEN 'missing_identity' END", "NULL"))
    errs.append(_err_struct(src_name("client"), f"CASE WHEN {given} IS NOT NULL AND NOT regexp_full_match({given}, {lit(client_spec.pattern)}) THEN 'bad_format' END", given))
    # a key that carries a person id would put the id on disk
    errs.append(_err_struct(src_name("record_key"), f"CASE WHEN regexp_matches(q_key, {lit(ID_PATTERN_SQL)}) THEN 'id_in_key' END".replace("q_key", q("record_key")), pseudonym.mask_sql(q("record_key"))))
    # intervention category from the profile's or the shared mapping, or given directly
    mapping = _category_mapping(profile)
    code = q("intervention_code")
    whens = " ".join(f"WHEN {lit(k.upper())} THEN {lit(v)}" for k, v in sorted(mapping.items()))
    # a category the export gives (its labels already made codes by the text layer) wins over the mapping
    given_cat = q("_t_category") if "category" in have else "NULL"
    if "category" in have:
        known = "_k_category" if "_k_category" in text.cols else None
        errs.append(_err_struct(src_name("category"), _error(fields["category"], given_cat, given_cat, required=False, known=known), given_cat))
    cols["category"] = f"coalesce({given_cat}, CASE upper({code}) {whens} END)"
    errs.append(_err_struct(src_name("intervention_code"), f"CASE WHEN {code} IS NOT NULL AND category IS NULL THEN 'unknown_intervention_code' END", code))
    if "_given_municipality" in text.cols:
        errs.append(_err_struct(src_name("municipality"), "CASE WHEN municipality <> _given_municipality THEN 'municipality_mismatch' END", q("municipality")))
    # measurements: long rows carry one; wide rows one per group × time point
    mfields = measurement_fields()
    groups = [("", None)] if profile.shape == "long" else [(f"m{g}_", g) for g in range(len(profile.groups))]
    for prefix, g in groups:
        tps = [None] if g is None else list(profile.groups[g].timepoints)
        # a wide group's instrument is one cell for all its time points: checked once, when any is present
        instrument_check, presents = None, []
        for tp in tps:
            p = prefix if tp is None else f"{prefix}{tp}_"
            names = {"timepoint": None, "instrument": prefix + "instrument", "measured_on": p + "measured_on", "value": p + "value"}
            present = f"({q('_t_' + p + 'value')} IS NOT NULL OR {q('_t_' + p + 'measured_on')} IS NOT NULL)" if tp else "TRUE"
            mt: dict[str, str] = {}
            raw: dict[str, str] = {}
            for name, spec in mfields.items():
                tname = names[name] if tp else name
                if name == "timepoint" and tp:
                    x = lit(tp)
                else:
                    x = q(f"_t_{tname}") if f"_t_{tname}" in text.cols else "NULL"
                out = f"{p}{name}" if tp else name
                mt[out] = _typed(spec, x, profile)
                raw[out] = x
                constant = tp and name == "timepoint"  # a wide slot's time point, from the profile: no column
                if not constant:
                    cols[out] = mt[out]
                display = _display_column(profile, g, tp, name)
                kname = "_k_" + str(names[name] if tp else name)
                known = kname if kname in text.cols else None
                typed = mt[out] if constant else q(out)
                if tp and name == "instrument":
                    instrument_check = instrument_check or (display, _error(spec, x, typed, known=known), x)
                    presents.append(present)
                    continue
                errs.append(_err_struct(display, f"CASE WHEN {present} THEN {_error(spec, x, typed, known=known)} END", x))
            for col, err in _rule_errors(Measurement.rules, {k: q(k) if k in cols else v for k, v in mt.items()}, prefix=p if tp else "").items():
                errs.append(_err_struct(_display_column(profile, g, tp, "value"), f"CASE WHEN {present} THEN {err} END", raw[col]))
            if tp:
                cols[f"{p}present"] = present
        if instrument_check is not None:
            display, err, x = instrument_check
            errs.append(_err_struct(display, f"CASE WHEN {' OR '.join(presents)} THEN {err} END", x))
    # one error column per check (mostly NULL: cheap) stays inside the query; what is stored is
    # ``_ok`` and, for failing rows only, the list of {column, type, value} (CASE runs it for those)
    for i, (_, err, _) in enumerate(errs):
        cols[f"_e{i}"] = f"CAST({err} AS VARCHAR)"
    cols["_ok"] = " AND ".join(f"_e{i} IS NULL" for i in range(len(errs)))
    structs = ", ".join(
        f"{{'column': {lit(column)}, 'type': _e{i}, 'value': CASE WHEN _e{i} IS NOT NULL THEN CAST({value} AS VARCHAR) END}}"
        for i, (column, _, value) in enumerate(errs))
    cols["_rejects"] = f"CASE WHEN NOT _ok THEN list_filter([{structs}], lambda x: x.type IS NOT NULL) END"
    return Layer(cols)


def _category_mapping(profile: Profile) -> dict[str, str]:
    """Local intervention code → category (the shared list, then the profile's ``[categories]``);
    a category that is not in ``intervention_categories`` is a configuration error, not a row's:
    every row with that code would be stored under a category no table knows."""
    mapping = {r["code"]: r["category"] for r in code_list("intervention_mapping").rows}
    known = code_list("intervention_categories")
    for where, pairs in (("intervention_mapping.csv", mapping), (f"profile {profile.name!r} [categories]", profile.categories)):
        for local, category in pairs.items():
            if category not in known:
                raise IsuError(f"{where}: code {local!r} maps to {category!r}, which is not in intervention_categories.csv "
                               f"(known: {', '.join(known.codes)})")
    return {**mapping, **profile.categories}


def _display_column(profile: Profile, g: int | None, tp: str | None, name: str) -> str:
    if g is None:
        return profile.long.get(name, name)
    group = profile.groups[g]
    if name == "instrument":
        return group.instrument_column or "instrument"
    if name == "timepoint":
        return tp or ""
    spec = group.timepoints[tp]
    return spec.get("date" if name == "measured_on" else "value", name)
