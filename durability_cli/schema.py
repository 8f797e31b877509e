"""Column roles: which column is the specimen id, the time, the measured durability, the conditions.

``load_dataset`` reads a table, works out the roles (auto-detected or given), and validates it into
a ``Dataset``: sorted by (specimen, time), typed, and with every problem reported as one
``InputError`` line that names the file, the column, the row and the fix.

Row numbers in messages ("row N") count data rows of the table as it was given, from 1, before any
sorting: the header is not a row, so row N is on line N + 1 of a CSV file.

Validation is vectorised (one sort, then diffs and reductions over segments): no Python loop over
specimens, so ten million rows load in seconds.
"""

from __future__ import annotations

import difflib
import re
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa

from durability_cli.errors import InputError, MissingColumn
from durability_cli.io import (
    MixedOffsets,
    other_sheets_hint,
    read_table,
    sheet_rows,
    table_name,
    written_zone,
)

# in this order; matched ignoring case. A battery table's cell, a fatigue lab's sample, a fleet's
# device or serial number name the specimens as often as "specimen" does.
ID_NAMES = (
    "specimen_id",
    "specimen",
    "series_id",
    "unit",
    "unit_id",
    "id",
    "sample_id",
    "sample",
    "cell_id",
    "cell",
    "battery_id",
    "battery",
    "device_id",
    "device",
    "serial_number",
    "serial",
)
TIME_NAMES = ("time", "cycle", "step", "day", "t")
DEFAULT_TARGET = "durability"
SYNTHETIC_ID = "specimen_id"
_EPOCH = pd.Timestamp("1970-01-01")
# Larger numbers leave no room for the model's arithmetic: their spread or step overflows, or two
# neighbouring times differ by less than a float's precision. Measurements never need them.
MAX_MAGNITUDE = 1e15
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_INDEX_LIKE = re.compile(r"^(|unnamed: \d+|index|__index_level_\d+__)$")


@dataclass(frozen=True)
class Schema:
    """Which column plays which role. Saved in the model file, so a model reads the same columns."""

    id_col: str  # always set; "specimen_id" (all "0") when the table had none, see id_synthetic
    time_col: str
    target: str
    covariates: tuple[str, ...]
    static: tuple[str, ...] = ()
    id_synthetic: bool = False  # the table had no id column: it is one specimen
    time_is_datetime: bool = False  # model time is then days since 1970-01-01

    def to_dict(self) -> dict:
        return {
            "id_col": self.id_col,
            "time_col": self.time_col,
            "target": self.target,
            "covariates": list(self.covariates),
            "static": list(self.static),
            "id_synthetic": self.id_synthetic,
            "time_is_datetime": self.time_is_datetime,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Schema:
        """From a model file's metadata: each field of its own type, or ValueError."""

        def names(key: str) -> tuple[str, ...]:
            value = d.get(key, [])
            if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                raise ValueError(f"schema {key} is not a list of column names")
            return tuple(value)

        for key in ("id_col", "time_col", "target"):
            if not isinstance(d[key], str):
                raise ValueError(f"schema {key} is {d[key]!r}, not a column name")
        for key in ("id_synthetic", "time_is_datetime"):
            if not isinstance(d.get(key, False), bool):
                raise ValueError(f"schema {key} is {d[key]!r}, not true or false")
        return cls(
            id_col=d["id_col"],
            time_col=d["time_col"],
            target=d["target"],
            covariates=names("covariates"),
            static=names("static"),
            id_synthetic=d.get("id_synthetic", False),
            time_is_datetime=d.get("time_is_datetime", False),
        )


def check_roles(s: Schema) -> None:
    """Each column plays one role: raise ValueError naming the first that plays two."""
    roles = [("id", s.id_col), ("time", s.time_col), ("target", s.target)]
    roles += [("condition", c) for c in s.covariates] + [("static", c) for c in s.static]
    seen: dict[str, str] = {}
    for role, col in roles:
        if col in seen:
            raise ValueError(f"column '{col}' is both the {seen[col]} and a {role} column")
        seen[col] = role


@dataclass
class Dataset:
    """A validated table: sorted by (specimen, time), index 0..n-1, only the role columns.

    The id column is a categorical over the sorted id texts (codes follow the row order, one small
    integer per row; ``id_codes`` reads them), conditions and target are float64 (target NaN = not
    measured at that step), a date time column stays datetime64 (UTC, no time zone). Each column
    is its own block (no consolidated copy); treat the frame as read-only.
    """

    frame: pd.DataFrame
    schema: Schema
    source: str  # the file name as given, or "stdin"
    t: np.ndarray  # [rows] float64 model time: the number itself, or days since 1970-01-01
    notes: list[str] = field(default_factory=list)  # what was auto-detected, irregular spacing, ...
    # the table's ids were integers (a DataFrame's int64 column, a Parquet file's): the Python API
    # gives them back as integers, which join the caller's table (the frame holds them as text)
    id_integer: bool = False
    # the time zone of dates that had one (the tzinfo: Europe/Berlin, a fixed +01:00; dates with
    # different offsets are read as UTC): the frame holds them in UTC without a zone, and the
    # Python API gives the results' dates back in this zone
    time_zone: object = None
    # a shard's (parallel.take_shard): the unit (io.TIME_UNITS) the whole table's dates need, so
    # that a shard's CSV writes its dates as the whole run writes them (None: this table's own)
    date_unit: int | None = None

    def __repr__(self) -> str:
        s = self.schema
        specimens = self.frame[s.id_col].nunique() if s.id_col in self.frame.columns else 1
        roles = f"id '{s.id_col}', time '{s.time_col}', target '{s.target}'"
        roles += f", conditions {', '.join(s.covariates) or 'none'}"
        roles += f", static {', '.join(s.static)}" if s.static else ""
        return f"Dataset({self.source}: {specimens:,} specimen(s), {len(self.frame):,} rows; {roles})"


# -- entry point -----------------------------------------------------------------------------------
def load_dataset(
    path: str,
    *,
    fmt: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    target: str | None = None,
    covariates: list[str] | None = None,
    static: list[str] | None = None,
    require_target: bool = True,
    schema: Schema | None = None,
    min_rows: int = 2,
) -> Dataset:
    """Read ``path`` (``-`` = stdin) and validate it into a Dataset.

    With ``schema`` (from a trained model) the column roles are exactly the model's, matched to the
    table's names case-insensitively, and the other column options are ignored. With
    ``require_target=False`` a missing target column is created empty (a plan of future steps);
    ``min_rows`` is the fewest rows a specimen may have (1 for a --future plan, whose rows follow
    a history).
    """
    source = table_name(path, fmt)
    names = dict(id_col=id_col, time_col=time_col, target=target, covariates=covariates, static=static)
    select = _role_columns(schema, require_target=require_target, **names)
    df = read_table(path, fmt=fmt, select=select, text=_id_as_text(schema, id_col))
    try:
        return frame_dataset(
            df, source, schema=schema, require_target=require_target, names=names, min_rows=min_rows
        )
    except MissingColumn as exc:
        hint = other_sheets_hint(df)  # a workbook's first sheet: the table may be on another
        if not hint:
            raise
        raise exc.reworded(f"{exc.template}{hint}") from None
    except InputError as exc:  # a workbook's rows as the sheet numbers them
        said = sheet_rows(exc.template, df)
        if said == exc.template:
            raise
        raise exc.reworded(said) from None


def _id_as_text(schema: Schema | None, id_col: str | None):
    """read_table's ``text``: the specimen id column of a CSV kept as typed. Read as numbers, ids
    "0001" came back as 1, and "01" and "1" became one specimen."""

    def pick(names: list[str]) -> list[str]:
        wanted = [schema.id_col] if schema is not None else [id_col] if id_col else list(ID_NAMES)
        for name in wanted:  # as _id_column looks for it: the first name found, exact spelling first
            found = [n for n in names if n == name] or [n for n in names if n.lower() == name.lower()]
            if found:
                return found[:1]
        return []

    return pick


def frame_dataset(
    df: pd.DataFrame,
    source: str,
    *,
    schema: Schema | None,
    require_target: bool = True,
    names: dict | None = None,
    min_rows: int = 2,
) -> Dataset:
    """A table already in memory validated into a Dataset: the roles of ``names`` (id_col,
    time_col, target, covariates, static; None = auto-detected), or exactly a model's ``schema``;
    ``min_rows`` as :func:`load_dataset`'s."""
    if schema is None:
        schema, notes = resolve_schema(df, source=source, require_target=require_target, **(names or {}))
    else:
        df, schema, notes = apply_schema(df, schema, source=source, require_target=require_target)
    ds = validate(df, schema, source=source, require_target=require_target, min_rows=min_rows)
    ds.notes[:0] = notes
    return ds


def _role_columns(schema: Schema | None, *, id_col, time_col, target, covariates, static, require_target):
    """A column selector for ``read_table``: the columns that can play a role, or None (read all)
    when the roles depend on the other columns (conditions and date columns auto-detected).

    Names match in any case, as role names do. With a model's schema that is its columns; for
    training with ``--covariates`` given, the given names plus every column whose name could be
    auto-detected as the id or the time. Columns never read cannot slow down or bloat a load.
    """
    if schema is not None:
        required = [schema.time_col, *schema.covariates, *schema.static]
        required += [] if schema.id_synthetic else [schema.id_col]
        required += [schema.target] if require_target else []
        optional = ([] if require_target else [schema.target]) + (
            [schema.id_col] if schema.id_synthetic else []
        )
        needs_time = False
    elif covariates is not None:
        required = [*covariates, *(static or []), *(c for c in (id_col, time_col) if c)]
        tname = target or DEFAULT_TARGET
        required += [tname] if require_target else []
        optional = [] if require_target else [tname]
        optional += [] if id_col else list(ID_NAMES)
        optional += [] if time_col else list(TIME_NAMES)
        needs_time = not time_col  # no time-like name: a date column is looked for among all
    else:
        return None
    wanted = {w.lower() for w in required + optional}

    def select(names: list[str]) -> list[str] | None:
        have = {n.lower() for n in names}
        if any(r.lower() not in have for r in required):
            return None  # read everything, so that the error can list the columns and suggest one
        if needs_time and not have & set(TIME_NAMES):
            return None
        return [n for n in names if n.lower() in wanted]

    return select


# -- roles -----------------------------------------------------------------------------------------
def resolve_schema(
    df: pd.DataFrame,
    *,
    source: str,
    id_col: str | None = None,
    time_col: str | None = None,
    target: str | None = None,
    covariates: list[str] | None = None,
    static: list[str] | None = None,
    require_target: bool = True,
) -> tuple[Schema, list[str]]:
    """Work out the column roles of ``df``: the names given, else auto-detected (any case); and
    notes that say what was auto-detected or left out."""
    cols = [str(c) for c in df.columns]
    notes: list[str] = []
    # Names the user gave are checked first: a typo is reported before anything we guessed.
    given = [("`id_col`", id_col), ("`time_col`", time_col)]
    given += [("`target`", target)] if require_target else []
    given += [("`static`", c) for c in static or []]
    given += [("`covariates`", c) for c in covariates or []]
    for flag, name in given:
        if name:
            _require(cols, name, source, flag)

    idc, synthetic = _id_column(cols, id_col, source, notes)

    # Target.
    tname = target or DEFAULT_TARGET
    tgt = _find(cols, tname, source)
    if tgt is None:
        if require_target:
            close = _suggest(tname, cols)
            hint = f"{_meant(tname, close[0])} " if close else ""
            if f"{tname}_mean" in _forecast_outputs(cols):
                hint = f"it looks like a `durability forecast` table: '{tname}_mean' is its mean; "
            elif not close and not target:  # the default name: say which columns could be it
                named = {c.lower() for c in (*ID_NAMES, *TIME_NAMES)}
                numeric = [
                    c for c in cols if c.lower() not in named and _kind(df[c]) in ("numeric", "numeric-text")
                ]
                hint = f"numeric columns: {_list(numeric, 6)}; " if numeric else ""
            raise MissingColumn(
                f"{source}: no target column '{tname}' (columns: {_list(cols)}); "
                + (
                    _delimiter_hint(cols)
                    or f"{hint}pass `target` NAME to name the measured durability column"
                ),
                column=tname,
                role="target",
            )
        tgt = tname  # created empty by validate: a plan of future steps has no measurements

    # Time.
    if time_col:
        tc = _require(cols, time_col, source, "`time_col`")
    else:
        taken = {idc, tgt}
        tc = next((c for c in (_find(cols, n, source) for n in TIME_NAMES) if c and c not in taken), None)
        if tc is None:
            others = [c for c in cols if c not in taken]
            tc = next((c for c in others if _kind(df[c]) == "datetime"), None)
            tc = tc or next((c for c in others if _kind(df[c]) == "datetime-text"), None)
        if tc is None:
            raise MissingColumn(
                f"{source}: no time column (looked for {', '.join(TIME_NAMES)} or a date column; "
                f"columns: {_list(cols)}); pass `time_col` NAME",
                role="time",
            )
        notes.append(f"time: '{tc}' (auto-detected; `time_col` to change)")
    time_kind = _kind(df[tc])
    is_datetime = time_kind in ("datetime", "datetime-text", "text")
    if time_kind in ("datetime", "datetime-text"):
        notes.append(f"time '{tc}' holds dates: model time is days since 1970-01-01")

    _clash(source, [("specimen id", None if synthetic else idc), ("time", tc), ("target", tgt)])

    # Static columns.
    stat = _unique([_require(cols, c, source, "`static`") for c in (static or [])])
    for c in stat:
        if c in (idc, tc, tgt):
            raise InputError(
                f"{source}: column '{c}' is the {_role_of(c, idc, tc, tgt)}; it can't also be `static`"
            )

    # Conditions.
    if covariates is not None:
        covs = _unique([_require(cols, c, source, "`covariates`") for c in covariates])
        for c in covs:
            if c in (idc, tc, tgt):
                raise InputError(
                    f"{source}: column '{c}' is the {_role_of(c, idc, tc, tgt)}; "
                    "it can't also be a condition "
                    "(`covariates`)"
                )
            if c in stat:
                raise InputError(f"{source}: column '{c}' is in both `covariates` and `static`; pick one")
    else:
        covs = _auto_conditions(df, cols, {idc, tc, tgt, *stat}, notes)
    schema = Schema(
        id_col=idc,
        time_col=tc,
        target=tgt,
        covariates=tuple(covs),
        static=tuple(stat),
        id_synthetic=synthetic,
        time_is_datetime=is_datetime,
    )
    return schema, notes


def _id_column(cols: list[str], id_col: str | None, source: str, notes: list[str]) -> tuple[str, bool]:
    """(the specimen id column, whether there is none and the table is one specimen)."""
    synthetic = False
    if id_col:
        idc = _require(cols, id_col, source, "`id_col`")
    else:
        idc = next((c for c in (_find(cols, n, source) for n in ID_NAMES) if c), None)
        if idc:
            notes.append(f"specimen id: '{idc}' (auto-detected; `id_col` to change)")
        else:
            idc, synthetic = SYNTHETIC_ID, True
            notes.append(
                f"no specimen id column (looked for {', '.join(ID_NAMES)}): "
                "the table is one specimen; "
                "pass `id_col` NAME if it holds several"
            )
    return idc, synthetic


def _forecast_outputs(cols: list[str]) -> set[str]:
    """The columns `durability forecast` writes beside a plan's own: `extrapolated` and, for each
    `<name>_mean`, its `<name>_p<level>` quantiles and `<name>_population`. Only a table that has
    both `extrapolated` and a `_mean` column counts as a forecast, so that a measured condition
    such as `temperature_mean` is never taken for one."""
    if "extrapolated" not in cols:
        return set()
    found = set()
    for base in (c[: -len("_mean")] for c in cols if c.endswith("_mean") and len(c) > len("_mean")):
        pattern = re.compile(rf"^{re.escape(base)}_(mean|population|p\d+(_\d+)?)$")
        found |= {c for c in cols if pattern.match(c)}
    return found | {"extrapolated"} if found else set()


def _auto_conditions(df, cols: list[str], taken: set[str], notes: list[str]) -> list[str]:
    """The conditions when none are named: every other numeric column, except one that looks like
    a saved row index or a forecast's output (read back from `durability forecast`); what was left
    out is said in ``notes``."""
    covs, ignored, index_like, empty = [], [], [], []
    outputs = sorted(_forecast_outputs(cols) - taken, key=cols.index)
    for c in cols:
        if c in taken or c in outputs:
            continue
        kind = _kind(df[c])
        if kind == "empty":
            empty.append(c)
        elif kind in ("numeric", "numeric-text"):
            (index_like if _INDEX_LIKE.match(c.strip().lower()) else covs).append(c)
        else:
            ignored.append(c)
    if covs:
        notes.append(f"conditions: {_list(covs)} (every other numeric column; `covariates` to choose)")
    else:
        notes.append("no condition columns: the model sees only the time steps and its own durability")
    if index_like:
        notes.append(f"ignored {_list(index_like, quote=True)}: looks like a saved row index")
    if outputs:
        notes.append(
            f"ignored {_list(outputs, quote=True)}: a `durability forecast` table's output, not a condition"
        )
    if empty:
        notes.append(f"ignored empty column(s) {_list(empty, quote=True)}")
    if ignored:
        notes.append(
            f"ignored non-numeric column(s) {_list(ignored, quote=True)}; "
            "pass `static` NAME for per-specimen labels such as material or batch"
        )
    return covs


def apply_schema(df, schema: Schema, *, source: str, require_target: bool):
    """Match a model's column names to this table (case-insensitive) and rename to the model's."""
    cols = [str(c) for c in df.columns]
    needed = [("time", schema.time_col), ("target", schema.target)]
    needed += [("condition", c) for c in schema.covariates] + [("static", c) for c in schema.static]
    notes: list[str] = []
    mapping: dict[str, str] = {}
    id_found = _find(cols, schema.id_col, source)
    if id_found:
        mapping[id_found] = schema.id_col
        if schema.id_synthetic:
            schema = replace(schema, id_synthetic=False)
            notes.append(f"specimen id: '{id_found}' (the model was trained on one specimen without an id)")
    elif not schema.id_synthetic:
        raise MissingColumn(
            f"{source}: the model needs specimen id column '{schema.id_col}', "
            "which this table lacks "
            f"(columns: {_list(cols)}); "
            + (_delimiter_hint(cols) or "add it (one value for a single specimen)"),
            column=schema.id_col,
            role="specimen id",
            model=True,
        )
    for role, name in needed:
        found = _find(cols, name, source)
        if found is None:
            if role == "target" and not require_target:
                continue
            close = _suggest(name, cols)
            hint = f"; {_meant(name, close[0])}" if close else ""
            if role == "static" and not require_target and not close:  # a plan of future rows
                hint = f"; a table of future rows repeats each specimen's {name}, as its history gives it"
            raise MissingColumn(
                f"{source}: the model needs {role} column '{name}', which this table lacks "
                f"(columns: {_list(cols)})"
                + (f"; {_delimiter_hint(cols)}" if _delimiter_hint(cols) else hint),
                column=name,
                role=role,
                model=True,
            )
        mapping[found] = name
    renamed = {k: v for k, v in mapping.items() if k != v}
    if renamed:
        df = df.rename(columns=renamed)
    return df, schema, notes


def _find(cols: list[str], name: str, source: str) -> str | None:
    """The column called ``name``: exact spelling first, else the one that matches ignoring case."""
    if name in cols:
        return name
    matches = [c for c in cols if c.lower() == name.lower()]
    if len(matches) > 1:
        raise InputError(
            f"{source}: '{name}' matches several columns ({', '.join(matches)}); give the exact spelling"
        )
    return matches[0] if matches else None


def _meant(name: str, close: str) -> str:
    """The hint for a column ``name`` not found where ``close`` is: spaces around a header's name
    (' humidity ') are said as such, not suggested back."""
    if close != name and close.strip().lower() == name.strip().lower():
        return f"is it {close!r} (the header has spaces around the name: remove them)?"
    return f"did you mean '{close}'?"


def _require(cols: list[str], name: str, source: str, flag: str) -> str:
    found = _find(cols, name, source)
    if found is None:
        close = _suggest(name, cols)
        hint = f"{_meant(name, close[0])} " if close else ""
        raise MissingColumn(
            f"{source}: no column '{name}' ({flag}); {hint}the columns are: {_list(cols)}",
            column=name,
            role=flag.strip("`"),
        )
    return found


def _delimiter_hint(cols: list[str]) -> str:
    """A table read as one column whose name holds another separator: the file is not comma-separated."""
    if len(cols) == 1:
        for sep, label in (("|", "'|'"), (";", "';'"), ("\t", "tabs"), (":", "':'")):
            if sep in cols[0]:
                return (
                    f"the file seems to be separated by {label}, not commas: save it as comma-separated CSV"
                )
    return ""


def _suggest(name: str, cols: list[str]) -> list[str]:
    lower = {c.lower(): c for c in cols}
    return [lower[c] for c in difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.6)]


def _clash(source: str, roles: list[tuple[str, str | None]]) -> None:
    seen: dict[str, str] = {}
    for role, col in roles:
        if col is None:
            continue
        if col in seen:
            raise InputError(
                f"{source}: column '{col}' can't be both the {seen[col]} and the {role}; pick another"
            )
        seen[col] = role


def _role_of(c: str, idc: str, tc: str, tgt: str) -> str:
    return {idc: "specimen id", tc: "time column", tgt: "target"}[c]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _list(cols, limit: int = 12, quote: bool = False) -> str:
    shown = [f"'{c}'" if quote else str(c) for c in list(cols)[:limit]]
    more = len(cols) - limit
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def _kind(col: pd.Series) -> str:
    """numeric | datetime | numeric-text | datetime-text | text | empty: by dtype, or a sample."""
    dtype = col.dtype
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return "numeric" if col.notna().any() else "empty"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    sample = col.iloc[:5000].dropna()
    if sample.empty:
        sample = col.dropna()
    if sample.empty:
        return "empty"
    text = sample.iloc[:200].astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return "empty"
    as_number = pd.to_numeric(text.str.replace(r"(?<=\d),(?=\d)", "", regex=True), errors="coerce")
    if as_number.notna().mean() >= 0.5:
        return "numeric-text"
    has_digit = text.str.contains(r"\d", regex=True)
    # Half is enough: validation then names the first cell that is not a date.
    if has_digit.mean() >= 0.5 and _parse_dates(text.where(has_digit)).notna().mean() >= 0.5:
        return "datetime-text"
    return "text"


# -- validation ------------------------------------------------------------------------------------
def validate(
    df: pd.DataFrame, schema: Schema, *, source: str, require_target: bool = True, min_rows: int = 2
) -> Dataset:
    """Check and type ``df`` by ``schema``; sort by (specimen, time). Raises InputError.

    Row numbers in messages are 1-based positions in ``df`` as given (the file's data rows).
    ``require_target=False`` creates a missing target column as all-NaN and allows no measurements.
    ``min_rows``: the fewest rows a specimen may have (a model needs 2; a plan's future rows
    are checked again once appended to their history).
    """
    s = schema
    n = len(df)
    if n == 0:
        raise InputError(f"{source}: the table has no rows")
    notes: list[str] = []

    def column(name: str, role: str) -> pd.Series:
        if name not in df.columns:
            raise MissingColumn(
                f"{source}: no {role} column '{name}' (columns: {_list([str(c) for c in df.columns])})",
                column=name,
                role=role,
            )
        return df[name]

    # Specimen id: integer codes in sorted id order, and the ids as text.
    if s.id_col in df.columns:
        codes, id_text = factorize_ids(df[s.id_col], source, s.id_col)
    elif s.id_synthetic:
        codes, id_text = np.zeros(n, dtype=np.int64), np.array(["0"], dtype=object)
    else:
        column(s.id_col, "specimen id")

    t, time_values, zone = _time(column(s.time_col, "time"), s, source)

    # Target: missing = not measured at that step; infinite is a broken cell.
    if s.target in df.columns:
        y = _to_numeric(df[s.target], source, s.target, "target")
    elif not require_target:
        y = np.full(n, np.nan)
    else:
        column(s.target, "target")
    _first(
        np.isinf(y),
        lambda r: InputError(
            f"{source}: column '{s.target}', row {r}: {y[r - 1]} is not a measurement; "
            "leave the cell empty for an unmeasured step"
        ),
    )

    # Conditions: numeric, and known at every step.
    cond = {c: _to_numeric(column(c, "condition"), source, c, "condition") for c in s.covariates}
    for name, values in [(s.time_col, t), (s.target, y), *cond.items()]:
        _check_magnitude(values, name, source)
    for c, values in cond.items():
        _first(
            ~np.isfinite(values),
            lambda r, c=c, values=values: InputError(
                f"{source}: condition '{c}' is "
                f"{'empty' if np.isnan(values[r - 1]) else 'infinite'} for specimen "
                f"{id_text[codes[r - 1]]} at time {show_time(time_values, r - 1, zone)} (row {r}); "
                "conditions must be known at every step, including future ones: fill it in, "
                "or, when training, leave the column out of `covariates`"
            ),
        )
    static = {c: column(c, "static") for c in s.static}

    # One sort by (specimen, time), skipped when the file is already in order.
    order = _sort_order(codes, t)
    in_order = order is None
    if in_order:
        order, codes_s, t_s = np.arange(n), codes, t
    else:
        codes_s, t_s = codes[order], t[order]
    starts, lengths = _check_rows(
        codes_s, t_s, order, time_values, id_text, source, min_rows, zone, synthetic=s.id_synthetic
    )

    for c, raw in static.items():
        _check_static(raw, c, order, starts, lengths, id_text, codes_s, source, synthetic=s.id_synthetic)

    if require_target and not np.isfinite(y).any():
        raise InputError(
            f"{source}: no measured durability values (column '{s.target}' is empty in every row); "
            "the model needs measurements to learn from or to warm up on"
        )

    frame, t_sorted = _sorted_frame(s, order, in_order, codes_s, id_text, time_values, t, y, cond, static)
    notes.extend(_spacing_notes(_spacing(t_sorted, starts, lengths)))
    if zone is not None:
        notes.append(
            f"time '{s.time_col}' dates carry a time zone ({zone_name(zone)}): outputs give dates in it"
        )
    integer = s.id_col in df.columns and pd.api.types.is_integer_dtype(df[s.id_col].dtype)
    return Dataset(
        frame=frame,
        schema=s,
        source=source,
        t=t_sorted,
        notes=notes,
        id_integer=bool(integer),
        time_zone=zone,
    )


def zone_name(zone) -> str:
    """A time zone as a person names it: Europe/Berlin, UTC+05:30, UTC."""
    name = getattr(zone, "key", None) or getattr(zone, "zone", None) or str(zone)
    if name.startswith("tzfile("):  # dateutil's: tzfile('/usr/share/zoneinfo/Europe/Berlin')
        name = name.split("zoneinfo/")[-1].strip("')")
    return name


def dates_from_days(days) -> np.ndarray:
    """Model time (days since 1970-01-01, float64) back to dates [datetime64[us]], to the
    microsecond: a float holds today's dates to about 0.4 µs, and that rounding would otherwise
    show in the written times (2024-01-21 20:00:00.000000106). In microseconds, as pandas reads
    dates: nanoseconds end in 2262."""
    return np.datetime64("1970-01-01", "us") + days_as_spans(days)


def days_as_spans(days) -> np.ndarray:
    """A length of model time in days (float) as durations [timedelta64[us]] (NaN: NaT)."""
    us = np.asarray(days, dtype=np.float64) * 86_400e6
    out = np.full(us.shape, np.timedelta64("NaT"), dtype="timedelta64[us]")
    ok = np.isfinite(us)
    out[ok] = np.round(us[ok]).astype(np.int64).astype("timedelta64[us]")
    return out


def _time(raw_time: pd.Series, s: Schema, source: str) -> tuple[np.ndarray, pd.Series, object]:
    """[rows] model time (float64: the number, or days since 1970-01-01), the times as shown, and
    the time zone of dates that had one (None: dates without a zone, or numbers)."""
    if s.time_is_datetime:
        time_values, zone = _to_datetime(raw_time, source, s.time_col)
        return ((time_values - _EPOCH) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64), time_values, zone
    t = _to_numeric(raw_time, source, s.time_col, "time")
    _first(
        ~np.isfinite(t),
        lambda r: InputError(
            f"{source}: column '{s.time_col}', row {r}: the time is "
            f"{'empty' if np.isnan(t[r - 1]) else 'infinite'}; every row needs a finite time"
        ),
    )
    integer = pd.api.types.is_integer_dtype(raw_time.dtype)
    return t, raw_time if integer else pd.Series(t, index=raw_time.index), None


_ONE_SPECIMEN = "no specimen id column was found, so the table is read as one specimen"


def _check_rows(
    codes_s, t_s, order, time_values, id_text, source: str, min_rows: int = 2, zone=None, synthetic=False
) -> tuple[np.ndarray, np.ndarray]:
    """(first row, length) of each specimen in sorted rows; one row per (specimen, time), and
    at least ``min_rows`` (1 or 2) rows per specimen (times shown in ``zone``, :func:`show_time`).
    ``synthetic``: the table had no id column (a repeated time then most likely means it holds
    several specimens)."""
    n = len(codes_s)
    same_specimen = codes_s[1:] == codes_s[:-1]
    dup = same_specimen & (t_s[1:] == t_s[:-1])

    def repeated(i: int) -> InputError:
        at = (
            f"time {show_time(time_values, order[i - 1], zone)} (rows {min(order[i - 1], order[i]) + 1} "
            f"and {max(order[i - 1], order[i]) + 1})"
        )
        if synthetic:
            return InputError(
                f"{source}: {_ONE_SPECIMEN}, and it has two rows at {at}; pass `id_col` NAME, the "
                f"column that names each specimen (looked for {', '.join(ID_NAMES)})"
            )
        return InputError(
            f"{source}: specimen {id_text[codes_s[i - 1]]} has two rows at {at}; "
            "each (specimen, time) must appear once: remove or merge one"
        )

    _first(dup, repeated)
    starts = np.flatnonzero(np.r_[True, ~same_specimen])  # [N] first row of each specimen
    lengths = run_lengths(starts, n)  # [N]
    short = lengths < min_rows
    if short.any():
        k = int(np.argmax(short))
        more = int(short.sum()) - 1
        raise InputError(
            f"{source}: specimen {id_text[codes_s[starts[k]]]} has only 1 row "
            f"(row {order[starts[k]] + 1})"
            + (f", and so do {more} more specimen(s)" if more else "")
            + "; each specimen needs at least 2 time steps: drop it or check the id column"
        )
    return starts, lengths


def _sorted_frame(s: Schema, order, in_order: bool, codes_s, id_text, time_values, t, y, cond, static):
    """The validated frame (role columns only, sorted, index 0..n-1) and its sorted model time."""
    take = (lambda a: a) if in_order else (lambda a: a[order])
    # The ids as a categorical over their sorted texts: one small integer per row, no string per row.
    ids_sorted = pd.Categorical.from_codes(
        codes_s.astype(_code_dtype(len(id_text))), categories=pd.Index(id_text, dtype="str")
    )
    data = {s.id_col: ids_sorted}
    tv = time_values.to_numpy() if isinstance(time_values, pd.Series) else np.asarray(time_values)
    data[s.time_col] = take(tv)
    data[s.target] = take(y)
    for c in s.covariates:
        data[c] = take(cond[c])
    for c, raw in static.items():
        data[c] = raw.array if in_order else raw.array.take(order)  # keeps str / category dtype
    frame = pd.DataFrame(data, copy=False)  # no consolidation copy: each column is its own block
    t_sorted = np.ascontiguousarray(take(t))
    return frame, t_sorted


def _sort_order(codes: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """[rows] the order that sorts by (specimen, time); None when the table is already sorted."""
    a, b = codes[:-1], codes[1:]
    if (a <= b).all() and ((a != b) | (t[:-1] <= t[1:])).all():
        return None
    key = codes.astype(np.int32) if codes.max() < 2**31 else codes  # int32 sorts faster
    order = np.argsort(key, kind="stable")
    c, ts = codes[order], t[order]
    if (np.diff(ts)[c[1:] == c[:-1]] >= 0).all():
        return order  # time already rises within each specimen: one stable sort by id is enough
    by_time = np.argsort(t, kind="stable")
    return by_time[np.argsort(key[by_time], kind="stable")]


def _check_magnitude(values: np.ndarray, name: str, source: str) -> None:
    with np.errstate(invalid="ignore"):
        big = np.abs(values) > MAX_MAGNITUDE  # NaN and inf are reported by their own checks
    _first(
        big & np.isfinite(values),
        lambda r: InputError(
            f"{source}: column '{name}', row {r}: {values[r - 1]:g} is larger than the model can "
            f"compute with (at most {MAX_MAGNITUDE:g} in size); rescale the column, e.g. to other units"
        ),
    )


def _first(mask: np.ndarray, make_error) -> None:
    """Raise make_error(1-based index) for the first True in ``mask``."""
    if mask.any():
        raise make_error(int(np.argmax(mask)) + 1)


def factorize_ids(col: pd.Series, source: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """[rows] integer codes in sorted id order, and [N] the ids as text."""
    _first(
        col.isna().to_numpy(),
        lambda r: InputError(
            f"{source}: column '{name}', row {r}: the specimen id is empty; every row needs one"
        ),
    )
    if col.dtype == object or isinstance(col.dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(col):
        col = col.astype(str)  # mixed numbers and text would not sort
    codes, uniques = pd.factorize(col, sort=True)
    digits = len(uniques) and pd.api.types.is_string_dtype(uniques.dtype)
    if digits and pd.Series(uniques, dtype=object).astype(str).str.fullmatch(r"\d{1,15}").all():
        # ids of digits (a CSV's, read as text to keep "0007"): in the order of their numbers, as
        # integer ids sort ("9" before "10"), the text breaking ties ("01" before "1")
        text = np.asarray(uniques, dtype=object)
        order = np.lexsort((text.astype(str), text.astype(np.int64)))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        codes, uniques = rank[codes], pd.Index(text[order])
    if pd.api.types.is_float_dtype(uniques.dtype) and np.all(
        (np.mod(uniques, 1) == 0) & (np.abs(uniques) < 2**53)
    ):
        uniques = uniques.astype(np.int64)  # 3.0 -> "3": ids read from a column that had gaps
    return codes.astype(_code_dtype(len(uniques))), np.asarray(uniques.astype(str), dtype=object)


def _to_numeric(col: pd.Series, source: str, name: str, role: str) -> np.ndarray:
    """[rows] float64; names the first cell that is not a number."""
    dtype = col.dtype
    _refuse_durations(col, source, name)
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    ):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        raise InputError(
            f"{source}: column '{name}' holds dates, but the {role} must be numbers; "
            + ("the model was trained on numeric time" if role == "time" else "pick another column")
        )
    values = col.astype(object) if isinstance(dtype, pd.CategoricalDtype) else col
    try:
        number = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):
        number = pd.to_numeric(values.astype(str), errors="coerce").where(values.notna())
    out = np.array(number, dtype=np.float64)
    # a JSON true among numbers: pandas reads it as 1.0; a column of true/false (and empty
    # cells) is a switch, 0/1, as a column of them alone is
    flags = values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    if flags.any() and (col.notna().to_numpy() & ~flags).any():
        out[flags] = np.nan
    for i in np.flatnonzero(np.isnan(out) & col.notna().to_numpy()):
        value = values.iloc[i]
        if isinstance(value, str) and not value.strip():
            continue  # a blank cell is a missing value
        raise InputError(
            f"{source}: column '{name}', row {i + 1}: "
            f"{_show(value)} is not a number{_hint(value)}; " + _fix(role, name)
        )
    return out


def _hint(value) -> str:
    text = str(value).strip()
    if _THOUSANDS.match(text):
        return f" (remove the thousands separator: {text.replace(',', '')})"
    if _DECIMAL_COMMA.match(text):
        return f" (use a dot as the decimal mark: {text.replace(',', '.')})"
    return ""


def _fix(role: str, name: str) -> str:
    return {
        "time": "fix the cell",
        "target": "fix the cell, or leave it empty for an unmeasured step",
        "condition": "fix the cell, or, when training, leave the column out of `covariates`",
    }.get(role, "fix the cell")


def _refuse_durations(col: pd.Series, source: str, name: str) -> None:
    """A duration column (Arrow/pandas timedelta) is neither a date nor a plain number: refused the
    same way by every command, with the fix."""
    if pd.api.types.is_timedelta64_dtype(col.dtype):
        raise InputError(
            f"{source}: column '{name}' holds durations (e.g. {_show(col.iloc[0])}), not numbers or dates; "
            "store it as a number of time units (e.g. hours) or as dates"
        )


def _to_datetime(col: pd.Series, source: str, name: str) -> tuple[pd.Series, object]:
    """Naive UTC datetime64, and the time zone the dates had (None: none); names the first cell
    that is not a date in the column's format."""
    dtype = col.dtype
    _refuse_durations(col, source, name)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = col
    elif pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        raise InputError(
            f"{source}: column '{name}' holds numbers, but dates were expected "
            "(the model was trained on dates); "
            "use the same kind of time column as in training"
        )
    else:
        text = col.astype(object)
        values = _parse_dates(text)
        bad = values.isna().to_numpy() & col.notna().to_numpy()
        if bad.any():
            r = int(np.argmax(bad))
            good = np.flatnonzero(~values.isna().to_numpy())
            value = _show(text.iloc[r])
            if good.size and good[0] < r:
                raise InputError(
                    f"{source}: column '{name}', row {r + 1}: {value} is not a date "
                    "in the format of the rows "
                    f"before it (e.g. {_show(text.iloc[good[0]])}); use one date format throughout "
                    "(ISO 2024-01-31 is safest)"
                )
            raise InputError(
                f"{source}: column '{name}', row {r + 1}: {value} is not a date or a number; "
                "fix the cell, or pass `time_col` NAME"
            )
    zone = None
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        zone = values.dt.tz  # the object itself: its name may be no zone's key ("Lab time", a tzfile)
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        if not pd.api.types.is_datetime64_any_dtype(dtype):  # text: pandas reads a date without an
            written = text.astype(str).to_numpy()  # offset beside ones with one as UTC
            try:
                if written_zone(pa.array(written, pa.string())) is None:
                    zone = None  # Z among dates without one: read as UTC, as they were; no zone claimed
            except MixedOffsets as exc:
                raise InputError(exc.message(source, name, written)) from None
    _first(
        values.isna().to_numpy(),
        lambda r: InputError(
            f"{source}: column '{name}', row {r}: the time is empty; every row needs a time"
        ),
    )
    return values, zone


def _parse_dates(text: pd.Series) -> pd.Series:
    """Parse as ISO 8601 (any mix of its variants), else in the format of the first cell; the
    attempt that parses more cells wins. Unparsed cells are NaT; mixed time zones become UTC."""
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it falls back to per-cell parsing
        for kw in ({"format": "ISO8601"}, {}):
            for utc in (False, True):
                try:
                    values = pd.to_datetime(text, errors="coerce", utc=utc, **kw)
                    break
                except (ValueError, TypeError, OverflowError):
                    values = None
            if values is not None and (best is None or values.notna().sum() > best.notna().sum()):
                best = values
            if best is not None and best.notna().sum() == text.notna().sum():
                break
    return best if best is not None else pd.Series(pd.NaT, index=text.index)


def _check_static(raw, name, order, starts, lengths, id_text, codes_s, source, synthetic=False) -> None:
    """A static column holds one value per specimen, and is never empty; a numeric one is finite
    and within MAX_MAGNITUDE (its scaling would overflow otherwise)."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        _first(
            np.isinf(values),
            lambda r: InputError(
                f"{source}: static column '{name}', row {r}: {values[r - 1]} is not a value; fill in a finite number"
            ),
        )
        _check_magnitude(values, name, source)
    codes, _ = pd.factorize(raw)  # NaN -> -1
    codes = codes[order]
    _first(
        codes == -1,
        lambda i: InputError(
            f"{source}: static column '{name}' is empty for specimen {id_text[codes_s[i - 1]]} "
            f"(row {order[i - 1] + 1}); fill it in"
        ),
    )
    differs = codes != np.repeat(codes[starts], lengths)
    if differs.any():
        i = int(np.argmax(differs))
        k = np.searchsorted(starts, i, side="right") - 1
        a, b = order[starts[k]], order[i]
        values = f"({_show(raw.iloc[a])} at row {a + 1}, {_show(raw.iloc[b])} at row {b + 1})"
        if synthetic:
            raise InputError(
                f"{source}: {_ONE_SPECIMEN}, and static column '{name}' has two values in it "
                f"{values}; if '{name}' names the specimens, pass it as `id_col` instead"
            )
        raise InputError(
            f"{source}: static column '{name}' has two values in specimen {id_text[codes_s[i]]} "
            f"{values}; static columns must be constant per specimen: "
            "fix them, or pass the column as a condition"
        )


def _show(value) -> str:
    text = str(value).lower() if isinstance(value, bool | np.bool_) else str(value)  # as JSON writes it
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text)


def show_time(values, i: int, zone=None) -> str:
    """The ``i``-th time of ``values`` as a message shows it: a date in ``zone`` (the zone the
    table's dates had; a run holds them as UTC instants), a number as written."""
    v = values.iloc[i] if isinstance(values, pd.Series) else values[i]
    if isinstance(v, pd.Timestamp):
        if zone is not None and v.tzinfo is None:
            v = v.tz_localize("UTC").tz_convert(zone)
        return v.isoformat()
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return str(int(f)) if f.is_integer() else repr(f)


# -- spacing and description -----------------------------------------------------------------------
def _spacing(t: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> dict:
    """Step lengths within specimens: overall min/median/max, and how many are irregular."""
    keep = lengths >= 2
    if not keep.any():
        return {
            "regular": True,
            "min_dt": None,
            "median_dt": None,
            "max_dt": None,
            "n_irregular_specimens": 0,
        }
    d = np.diff(t)  # [rows-1]
    # The step from one specimen's last row to the next one's first is no step: NaN, which the
    # NaN-ignoring reductions skip and the median's partition puts last (no masked copy of ten
    # million steps).
    d[starts[1:] - 1] = np.nan
    seg = starts[keep]
    lo = np.fmin.reduceat(d, seg)
    hi = np.fmax.reduceat(d, seg)
    irregular = (hi - lo) > 1e-6 * np.maximum(np.abs(hi), 1e-12)
    min_dt, max_dt = float(np.nanmin(lo)), float(np.nanmax(hi))
    steps = len(d) - (len(starts) - 1)  # the real steps; the NaNs partition after them
    return {
        "regular": not bool(irregular.any()),
        "min_dt": min_dt,
        "median_dt": _median_inplace(d, steps),
        "max_dt": max_dt,
        "n_irregular_specimens": int(irregular.sum()),
        "n_specimens": int(keep.sum()),
    }


def _median_inplace(values: np.ndarray, count: int | None = None) -> float:
    """np.median of the first ``count`` values in sorted order of a 1-D array this function may
    reorder (no copy of ten million steps); NaNs sort last, so ``count`` = the non-NaN values."""
    n = len(values) if count is None else count
    k = n // 2
    if n % 2:
        values.partition(k)
        return float(values[k])
    values.partition([k - 1, k])
    return float((values[k - 1] + values[k]) / 2)


def _spacing_notes(sp: dict) -> list[str]:
    if sp["n_irregular_specimens"]:
        return [
            f"time spacing is irregular in {sp['n_irregular_specimens']} of "
            f"{sp['n_specimens']} specimens "
            "(the step length is fed to the model)"
        ]
    if sp["min_dt"] is not None and sp["max_dt"] - sp["min_dt"] > 1e-6 * abs(sp["max_dt"]):
        return [
            f"each specimen is evenly spaced, but the step differs between specimens "
            f"({_num(sp['min_dt'])} to {_num(sp['max_dt'])})"
        ]
    return []


def _num(x: float) -> str:
    return f"{x:.6g}"


def _code_dtype(n_ids: int):
    return np.int16 if n_ids < 2**15 else np.int32 if n_ids < 2**31 else np.int64


def id_codes(frame: pd.DataFrame, id_col: str) -> tuple[np.ndarray, np.ndarray]:
    """[rows] integer code of each row's specimen and [N] the ids as text, code k <-> text k.

    Cheap for a validated frame (its id column is a categorical); any other id column is
    factorised. Codes follow the sorted ids, so in a validated frame they never decrease.
    """
    col = frame[id_col]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy(), np.asarray(col.cat.categories.astype(str), dtype=object)
    codes, uniques = pd.factorize(col.astype(str), sort=True)
    return codes, np.asarray(uniques, dtype=object)


def specimen_starts(frame: pd.DataFrame, id_col: str) -> np.ndarray:
    """[N] the first row of each specimen of a frame sorted by specimen."""
    codes, _ = id_codes(frame, id_col)
    if not len(codes):
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])


def measured_only(ds: Dataset) -> Dataset:
    """``ds`` without each specimen's rows after its last measured one (training's table): they
    hold no durability to learn from or validate on, yet they counted in the rows of the automatic
    validation warm-up (20 % of 240 rows is past a specimen measured on 10), in the conditions'
    envelope and in the steps training saw. A specimen measured nowhere keeps its rows (training
    refuses it by name). ``ds`` itself when there is nothing to drop; a note says how many rows
    went."""
    from dataclasses import replace

    n = len(ds.frame)
    if not n:
        return ds
    starts = specimen_starts(ds.frame, ds.schema.id_col)
    lengths = run_lengths(starts, n)
    measured = measured_lengths(ds.frame, ds.schema, starts)
    end = starts + np.where(measured > 0, measured, lengths)  # [N] one past the last row kept
    keep = np.arange(n) < np.repeat(end, lengths)
    if keep.all():
        return ds
    dropped = int(n - keep.sum())
    frame = ds.frame[keep].reset_index(drop=True)
    note = (
        f"{dropped:,} row(s) after their specimen's last measured {ds.schema.target} are not trained "
        "on: there is nothing there to learn from"
    )
    return replace(ds, frame=frame, t=np.ascontiguousarray(ds.t[keep]), notes=[*ds.notes, note])


def measured_lengths(frame: pd.DataFrame, schema: Schema, starts: np.ndarray | None = None) -> np.ndarray:
    """[N] each specimen's rows up to and including its last measured one (0: never measured), of
    a frame sorted by specimen; ``starts``: its specimen_starts, if known."""
    if starts is None:
        starts = specimen_starts(frame, schema.id_col)
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    y = frame[schema.target].to_numpy(dtype=np.float64)
    rows = np.arange(len(y))
    last = np.maximum.reduceat(np.where(np.isfinite(y), rows, -1), starts)  # [N] -1: never measured
    return np.where(last >= 0, last + 1 - starts, 0).astype(np.int64)


def run_lengths(starts: np.ndarray, n: int) -> np.ndarray:
    """[N] rows per specimen (or any run) from the first row of each, ``starts``, of ``n`` rows."""
    return np.diff(np.r_[starts, n]).astype(np.int64)


def _starts(ds: Dataset) -> np.ndarray:
    return specimen_starts(ds.frame, ds.schema.id_col)


def _json_float(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _ending_note(ending: np.ndarray, frame: pd.DataFrame, s: Schema) -> list[str]:
    """A note naming the specimens whose last rows have no measured target: ``forecast`` reads
    them as future rows to forecast (and ``--hold-conditions`` refuses them)."""
    if not len(ending):
        return []
    who = frame[s.id_col].to_numpy()[ending]
    more = f" and {len(who) - 3} more" if len(who) > 3 else ""
    return [
        f"{len(who)} specimen(s) end in rows without a measured {s.target} ({', '.join(map(str, who[:3]))}{more}): "
        "forecast reads those rows as future steps to forecast"
    ]


def describe(ds: Dataset) -> dict:
    """A JSON-serialisable summary: roles, sizes, lengths, spacing, missing values and ranges."""
    s, f = ds.schema, ds.frame
    n = len(f)
    starts = _starts(ds)
    lengths = run_lengths(starts, n)
    spacing = _spacing(ds.t, starts, lengths)
    spacing.pop("n_specimens", None)
    spacing["unit"] = "days" if s.time_is_datetime else "time units"
    role_cols = [s.id_col, s.time_col, s.target, *s.covariates, *s.static]
    numeric = [
        c
        for c in (s.target, *s.covariates, *s.static)
        if pd.api.types.is_numeric_dtype(f[c].dtype) and not isinstance(f[c].dtype, pd.CategoricalDtype)
    ]
    ranges = {}
    if not s.time_is_datetime:
        ranges[s.time_col] = {"min": _json_float(ds.t.min()), "max": _json_float(ds.t.max())}
    for c in numeric:
        v = f[c].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = v[np.isfinite(v)]
        ranges[c] = (
            {"min": _json_float(ok.min()), "max": _json_float(ok.max())}
            if ok.size
            else {"min": None, "max": None}
        )
    y = f[s.target].to_numpy(dtype=np.float64, na_value=np.nan)
    ending = starts[~np.isfinite(y[starts + lengths - 1])] if n else starts[:0]  # first rows of those
    if s.time_is_datetime:
        tv = f[s.time_col]
        if ds.time_zone is not None:  # the frame holds UTC instants: as the table had them
            tv = tv.dt.tz_localize("UTC").dt.tz_convert(ds.time_zone)
        time_range = {"min": tv.min().isoformat(), "max": tv.max().isoformat()}
    else:
        time_range = ranges[s.time_col]
    return {
        "source": ds.source,
        "roles": {
            "id": s.id_col,
            "id_synthetic": s.id_synthetic,
            "time": s.time_col,
            "time_is_datetime": s.time_is_datetime,
            "target": s.target,
            "covariates": list(s.covariates),
            "static": list(s.static),
        },
        "n_rows": int(n),
        "n_specimens": int(len(starts)),
        "lengths": {
            "min": int(lengths.min()) if n else 0,
            "median": float(np.median(lengths)) if n else 0.0,
            "max": int(lengths.max()) if n else 0,
        },
        "spacing": spacing,
        "time_range": time_range,
        "time_zone": None if ds.time_zone is None else zone_name(ds.time_zone),
        "missing": {c: int(f[c].isna().sum()) for c in role_cols},
        "ranges": ranges,
        "n_observed_target": int(np.isfinite(y).sum()),
        "n_ending_unmeasured": int(len(ending)),
        "notes": list(ds.notes) + _ending_note(ending, ds.frame, s),
    }
