"""Compile the record contract to vectorised DuckDB SQL, and explain failing values with pydantic.

Two layers over the scan of an export. ``text_layer`` maps the profile's source columns to the
contract's names as cleaned text (trimmed, empty → NULL, source codes and labels → codes). The
``typed_layer`` casts each field, and beside it computes an error type (or NULL) from the field's
constraints as ``isu.contract`` reads them off the pydantic model, plus the models' cross-field
rules. A row's errors are gathered into one list column ``_errors`` of {column, type, value}.
"""

from __future__ import annotations

from dataclasses import dataclass

from isu.schemas import Profile, code_list
from isu.schemas.models import Intervention, Measurement
from isu.schemas.rules import NotBefore, WithinInstrumentRange

from . import pseudonym
from .contract import FieldSpec, measurement_fields, record_fields
from .read import CP1252_FIX

__all__ = ["Layer", "q", "lit", "text_layer", "typed_layer", "ID_PATTERN_SQL"]

#: A value that looks like a personnummer/samordningsnummer (for keys and masking).
ID_PATTERN_SQL = r"(\d{6}|\d{8})[-+]?\d{4}"


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL literal (strings, numbers, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Layer:
    """An ordered SELECT list: output name → expression."""

    cols: dict[str, str]

    def select(self) -> str:
        return ", ".join(f"{expr} AS {q(name)}" for name, expr in self.cols.items())


def _clean(src_col: str, cp1252: bool) -> str:
    x = q(src_col)
    if cp1252:
        x = f"translate({x}, {lit(''.join(CP1252_FIX))}, {lit(''.join(CP1252_FIX.values()))})"
    return f"nullif(trim({x}), '')"


def _aliases(field: str, spec: FieldSpec | None, profile: Profile) -> dict[str, str]:
    out: dict[str, str] = {}
    if spec is not None and spec.code_list:
        out.update(code_list(spec.code_list).aliases())
    out.update({k.strip().lower(): v for k, v in profile.values.get(field, {}).items()})
    return out


def _mapped(x: str, aliases: dict[str, str]) -> str:
    if not aliases:
        return x
    entries = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in sorted(aliases.items()))
    return f"coalesce(MAP {{{entries}}}[lower({x})], {x})"


def text_layer(profile: Profile, header: set[str], *, cp1252: bool, municipality: str | None) -> Layer:
    """Source columns → contract names as cleaned text (``_t_<field>``), the id's first layer, the row number."""
    fields = record_fields()
    cols: dict[str, str] = {"_row": "row_number() OVER ()"}
    for field, src in profile.columns.items():
        if src not in header or field in ("person_id",):
            continue
        cols[f"_t_{field}"] = _mapped(_clean(src, cp1252), _aliases(field, fields.get(field), profile))
    if municipality is not None:
        cols["_given_municipality"] = lit(municipality)
        cols.setdefault("_t_municipality", lit(municipality))
    pid_src = profile.columns.get("person_id")
    if pid_src in header:
        cleaned = _clean(pid_src, cp1252)
        cols.update(pseudonym.parse_sql(cleaned))
    mfields = measurement_fields()
    if profile.shape == "long":
        for field, src in profile.long.items():
            if src in header:
                cols[f"_t_{field}"] = _mapped(_clean(src, cp1252), _aliases(field, mfields.get(field), profile))
    for g, group in enumerate(profile.groups):
        if group.instrument_column:
            inst = _mapped(_clean(group.instrument_column, cp1252), _aliases("instrument", mfields["instrument"], profile))
        else:
            inst = lit(group.instrument)
        cols[f"_t_m{g}_instrument"] = inst
        for tp, spec in group.timepoints.items():
            cols[f"_t_m{g}_{tp}_value"] = _clean(spec["value"], cp1252) if spec.get("value") in header else "NULL"
            cols[f"_t_m{g}_{tp}_measured_on"] = _clean(spec["date"], cp1252) if spec.get("date") in header else "NULL"
    return Layer(cols)


def _typed(spec: FieldSpec, x: str, profile: Profile) -> str:
    if spec.kind == "date":
        fmts = "[" + ", ".join(lit(f) for f in (*profile.date_formats, "%Y-%m-%d %H:%M:%S")) + "]"
        return f"CAST(try_strptime({x}, {fmts}) AS DATE)"
    if spec.kind == "int":
        return f"TRY_CAST({x} AS INTEGER)"
    if spec.kind == "float":
        num = f"replace({x}, ',', '.')" if profile.decimal == "," else x
        return f"TRY_CAST({num} AS DOUBLE)"
    return x


def _error(spec: FieldSpec, x: str, typed: str, required: bool | None = None) -> str:
    """CASE yielding the catalogue type of the first failed constraint, else NULL."""
    required = spec.required if required is None else required
    whens = [f"WHEN {x} IS NULL THEN {lit('missing_value') if required else 'NULL'}"]
    bad = {"date": "bad_date", "int": "bad_integer", "float": "bad_number"}.get(spec.kind)
    if bad:
        whens.append(f"WHEN {typed} IS NULL THEN '{bad}'")
    if spec.kind == "float":
        whens.append(f"WHEN NOT isfinite({typed}) THEN 'bad_number'")
    if spec.code_list:
        codes = ", ".join(lit(c) for c in code_list(spec.code_list).codes)
        whens.append(f"WHEN {typed} NOT IN ({codes}) THEN 'not_in_code_list'")
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
            lo = "MAP {" + ", ".join(f"{lit(c)}: {float(inst.row(c)['min'])}" for c in inst.codes) + "}"
            hi = "MAP {" + ", ".join(f"{lit(c)}: {float(inst.row(c)['max'])}" for c in inst.codes) + "}"
            v, i = typed[prefix + rule.value], typed[prefix + rule.instrument]
            out[prefix + rule.value] = f"CASE WHEN {v} < {lo}[{i}] OR {v} > {hi}[{i}] THEN '{rule.type}' END"
        else:  # pragma: no cover - a new rule type must be compiled here
            raise NotImplementedError(type(rule).__name__)
    return out


def _err_struct(column: str, err: str, value: str) -> str:
    return f"{{'column': {lit(column)}, 'type': CAST({err} AS VARCHAR), 'value': CAST({value} AS VARCHAR)}}"


def typed_layer(profile: Profile, text: Layer) -> Layer:
    """Typed contract columns plus ``_errors`` (list of {column, type, value}), from the text layer."""
    fields = record_fields()
    have = {n[3:] for n in text.cols if n.startswith("_t_")}
    cols: dict[str, str] = {"_row": "_row"}
    errs: list[str] = []
    typed: dict[str, str] = {}
    src_name = lambda f: profile.columns.get(f, f)  # noqa: E731 - the column a person sees
    has_pid = "pid_twelve" in text.cols
    derived = ("sex", "birth_year") if has_pid else ()  # from the person id when it is valid
    for name, spec in fields.items():
        if name in ("client", "category"):
            continue
        x = q(f"_t_{name}") if name in have else "NULL"
        out = f"_given_{name}" if name in derived else name
        typed[name] = _typed(spec, x, profile)
        cols[out] = typed[name]
        errs.append(_err_struct(src_name(name), _error(spec, x, q(out)), x))
    for col, err in _rule_errors(Intervention.rules, {k: q(k) for k in typed}).items():
        errs.append(_err_struct(src_name(col), err, q(f"_t_{col}")))
    # identity: a person id (checked, pseudonymised, sex and birth year derived) or a given pseudonym
    pid_cols = pseudonym.derive_sql(q("pid_twelve")) if has_pid else {}
    client_spec = fields["client"]
    given = q("_t_client") if "client" in have else "NULL"
    if has_pid:
        cols["client"] = f"CASE WHEN {pid_cols['pid_valid']} THEN {pid_cols['pid_client']} ELSE {given} END"
        cols["sex"] = f"CASE WHEN {pid_cols['pid_valid']} THEN {pid_cols['pid_sex']} ELSE {q('_given_sex')} END"
        cols["birth_year"] = f"CASE WHEN {pid_cols['pid_valid']} THEN {pid_cols['pid_birth_year']} ELSE {q('_given_birth_year')} END"
        errs.append(_err_struct(src_name("person_id"), f"CASE WHEN pid_masked IS NOT NULL AND NOT {pid_cols['pid_valid']} THEN 'invalid_person_id' END", "pid_masked"))
        no_id = f"pid_masked IS NULL AND {given} IS NULL"
    else:
        cols["client"] = given
        no_id = f"{given} IS NULL"
    errs.append(_err_struct("", f"CASE WHEN {no_id} THEN 'missing_identity' END", "NULL"))
    errs.append(_err_struct(src_name("client"), f"CASE WHEN {given} IS NOT NULL AND NOT regexp_full_match({given}, {lit(client_spec.pattern)}) THEN 'bad_format' END", given))
    # a key that carries a person id would put the id on disk
    errs.append(_err_struct(src_name("record_key"), f"CASE WHEN regexp_matches(q_key, {lit(ID_PATTERN_SQL)}) THEN 'id_in_key' END".replace("q_key", q("record_key")), f"regexp_replace({q('record_key')}, '[0-9]', '*', 'g')"))
    # intervention category from the profile's or the shared mapping, or given directly
    mapping = {r["code"]: r["category"] for r in code_list("intervention_mapping").rows}
    mapping.update(profile.categories)
    code = q("intervention_code")
    entries = ", ".join(f"{lit(k)}: {lit(v)}" for k, v in sorted(mapping.items()))
    given_cat = _mapped(q("_t_category"), _aliases("category", fields["category"], profile)) if "category" in have else "NULL"
    cols["category"] = f"coalesce({given_cat}, MAP {{{entries}}}[{code}], MAP {{{entries}}}[upper({code})])"
    errs.append(_err_struct(src_name("intervention_code"), f"CASE WHEN {code} IS NOT NULL AND category IS NULL THEN 'unknown_intervention_code' END", code))
    if "_given_municipality" in text.cols:
        errs.append(_err_struct(src_name("municipality"), "CASE WHEN municipality <> _given_municipality THEN 'municipality_mismatch' END", q("municipality")))
    # measurements: long rows carry one; wide rows one per group × time point
    mfields = measurement_fields()
    groups = [("", None)] if profile.shape == "long" else [(f"m{g}_", g) for g in range(len(profile.groups))]
    for prefix, g in groups:
        tps = [None] if g is None else list(profile.groups[g].timepoints)
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
                cols[out] = mt[out]
                display = _display_column(profile, g, tp, name)
                errs.append(_err_struct(display, f"CASE WHEN {present} THEN {_error(spec, x, q(out))} END", x))
            for col, err in _rule_errors(Measurement.rules, {k: q(k) for k in mt}, prefix=p if tp else "").items():
                errs.append(_err_struct(_display_column(profile, g, tp, "value"), f"CASE WHEN {present} THEN {err} END", raw[col]))
            if tp:
                cols[f"{p}present"] = present
    cols["_errors"] = "list_filter([" + ", ".join(errs) + "], lambda e: e.type IS NOT NULL)"
    cols.update({k: k for k in ("pid_masked",) if k in text.cols})
    return Layer(cols)


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
