"""Tables bigger than memory: read a Parquet table a group of whole specimens at a time, and write
output tables a piece at a time.

Reading (:func:`specimen_groups`). A first pass reads only the id column, row group by row group,
to list the specimens, in the order ``schema.validate`` sorts them. Then each group of N specimens
is read with only the model's columns and validated on its own. Two ways to read a group:

- one pass in file order, when every specimen's rows are one run and the runs come in sorted id
  order (a table written from a frame sorted by specimen, the usual case);
- otherwise, for each group, the row groups that hold any of its specimens (known from the first
  pass), batch by batch, keeping that group's rows. Scattered specimens make this read the same
  row groups once per group: slower, never wrong.

Rows keep their file and row number, so a validation error names the file and the row in it.

Writing (:class:`TableWriter`): CSV (header once), Parquet (one row group per piece) or JSON Lines,
to a temporary file renamed over the destination when every piece is written, or straight to
stdout. The bytes of CSV and JSON Lines are those ``io.write_table`` writes for the whole frame.
"""

from __future__ import annotations

import contextlib
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from durability_cli import io as tables
from durability_cli.errors import DurabilityError, InputError
from durability_cli.schema import (
    Dataset,
    Schema,
    apply_schema,
    factorize_ids,
    id_codes,
    measured_only,
    run_lengths,
    specimen_starts,
    validate,
)

BATCH_ROWS = 65_536  # rows per Parquet read: bounds the memory of one read whatever the row groups
_PARQUET_SUFFIXES = (".parquet", ".pq")
MAX_CHUNK = 10**9  # specimens a group at most (train's config holds chunk_specimens to the same)


def check_chunk(size: int) -> None:
    """``chunk_specimens`` between 1 and MAX_CHUNK (more is the whole table at once anyway)."""
    if not 1 <= size <= MAX_CHUNK:
        raise InputError(f"`chunk_specimens` must be between 1 and {MAX_CHUNK:,}, got {size}")


# -- reading ---------------------------------------------------------------------------------------
def is_parquet(path: str, fmt: str | None = None) -> bool:
    """Whether ``path`` is a Parquet file or folder that can be read a group at a time."""
    if path == "-":
        return False
    p = Path(path)
    if fmt is not None:
        return fmt.lower().lstrip(".") in ("parquet", "pq")
    if p.is_dir():
        return True
    if p.name.lower().endswith(_PARQUET_SUFFIXES):
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(4) == b"PAR1"
    except OSError:
        return False  # the whole-table reader says what is wrong with it


@dataclass
class _RowGroup:
    """One row group of one file, and which specimens (codes in sorted id order) it holds."""

    file: int  # index into the file list
    fragment: object  # pyarrow ParquetFileFragment of that one row group
    offset: int  # its first row's number in the file (0-based)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted, unique


class SpecimenGroups:
    """The specimens of a Parquet file or folder, read ``size`` at a time as validated Datasets.

    ``schema`` is the model's: its columns are matched to the table's case-insensitively (as
    ``load_dataset`` does) and only they are read. ``shard`` = (index, count) keeps that shard's
    specimens (``parallel.shard_of``). Iterating yields Datasets in sorted id order.
    """

    def __init__(
        self,
        path: str,
        schema: Schema,
        *,
        size: int,
        require_target: bool = True,
        shard: tuple[int, int] | None = None,
        measured_only: bool = False,
    ):
        """``measured_only``: each group without its specimens' rows after their last measured
        one (schema.measured_only: a training table)."""
        check_chunk(size)
        self.source = str(path)
        self._measured_only = measured_only
        self.size = size
        self.files, self._dataset = _open_dataset(path)
        names = list(self._dataset.schema.names)
        tables.check_unique(names, self.source)
        # The model's columns in this table: the same matching (and errors) as load_dataset.
        probe = pd.DataFrame(columns=names)
        renamed, self.schema, self.notes = apply_schema(
            probe, schema, source=self.source, require_target=require_target
        )
        s = self.schema
        roles = {s.id_col, s.time_col, s.target, *s.covariates, *s.static}
        self._rename = {old: new for old, new in zip(names, renamed.columns, strict=True) if new in roles}
        self._columns = list(self._rename)
        self._id = next((old for old, new in self._rename.items() if new == s.id_col), None)
        # a column of dates (an Arrow timestamp; with a time zone, its UTC instants, as the loader
        # keeps them) is read in the first pass too, for the unit the kept specimens' dates need
        # (time_units); dates stored as text are parsed a group at a time, so they get none
        time = next((old for old, new in self._rename.items() if new == s.time_col), None)
        kind = None if time is None else self._dataset.schema.field(time).type
        self._time = time if kind is not None and pa.types.is_timestamp(kind) else None
        self.time_units: dict[str, int] = {}
        self._list_specimens(shard)

    # -- the first pass: the id column (and a column of dates) ------------------------------------
    def _list_specimens(self, shard) -> None:
        s = self.schema
        self._groups: list[_RowGroup] = []
        self.rows = 0  # rows in the table (before --shard)
        if self._id is None:  # a model without ids on a table without ids: one specimen
            self.rows = sum(rg.num_rows for f in self._fragments() for rg in f.row_groups)
            self.ids = np.array(["0"], dtype=object)
            self.lengths = np.array([self.rows])
            self._sequential = True
            self._rank = None
            return
        uniques, runs, contiguous = [], [], True
        last_run = None
        counts: dict = {}  # rows per raw id value
        # the unit (io.TIME_UNITS) the whole file's dates need, a shard's too (its CSV then
        # concatenates with the other shards' to the whole run's)
        finest = 0
        for file_index, fragment in enumerate(self._fragments()):
            offset = 0
            for rg in fragment.row_groups:
                piece = fragment.subset(row_group_ids=[rg.id])
                unit = _RowGroup(file_index, piece, offset)
                values = []
                for batch in self._batches(piece, [self._id] + ([self._time] if self._time else [])):
                    ids = _plain(batch.column(0))
                    if ids.null_count:
                        row = offset + sum(len(v) for v in values) + _first_null(ids) + 1
                        raise InputError(
                            f"{self._file_name(file_index)}: column '{self._id}', row {row}: "
                            "the specimen id is empty; every row needs one"
                        )
                    values.append(ids)
                    for pair in pc.value_counts(ids).to_pylist():
                        counts[pair["values"]] = counts.get(pair["values"], 0) + pair["counts"]
                    if self._time:
                        finest = max(finest, int(tables.row_time_units(batch.column(1)).max(initial=0)))
                    if contiguous and len(ids):
                        starts = np.flatnonzero(
                            np.r_[True, pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)]
                        )
                        run_values = ids.take(pa.array(starts))
                        if len(run_values) != len(pc.unique(run_values)):
                            contiguous = False  # an id comes back within one batch
                        else:
                            if last_run is not None and run_values[0].as_py() == last_run:
                                run_values = run_values[1:]
                            runs.append(run_values)
                            last_run = ids[-1].as_py()
                rows = sum(len(v) for v in values)
                if rows:
                    unit.codes = _plain(pc.unique(pa.chunked_array(values)))
                    uniques.append(unit.codes)
                    self._groups.append(unit)
                offset += rows
                self.rows += rows
        if not uniques:
            raise InputError(f"{self.source}: the table has no rows")
        every = _plain(pc.unique(pa.chunked_array(uniques)))
        # The order validate() sorts specimens in, from its own helper.
        codes, id_text = factorize_ids(pd.Series(every.to_pandas()), self.source, s.id_col)
        order = np.argsort(codes, kind="stable")
        self._values = every.take(pa.array(order))  # [N] raw id values in sorted order
        self.ids = np.asarray(id_text, dtype=object)  # [N] their text
        self.lengths = np.array([counts[v] for v in self._values.to_pylist()], dtype=np.int64)  # [N] rows
        for unit in self._groups:
            unit.codes = np.sort(pc.index_in(unit.codes, value_set=self._values).to_numpy())
        run_codes = (
            pc.index_in(pa.chunked_array(runs, type=self._values.type), value_set=self._values).to_numpy()
            if contiguous and runs
            else None
        )
        self._sequential = run_codes is not None and bool((np.diff(run_codes) > 0).all())
        keep = np.ones(len(self.ids), dtype=bool)
        if shard is not None and shard[1] > 1:
            from durability_cli.parallel import shard_of

            keep = shard_of(self.ids, shard[1]) == shard[0]
        self._rank = np.where(keep, np.cumsum(keep) - 1, -1)  # [N] position among kept specimens
        self.kept = int(keep.sum())
        if self._time and keep.any():  # as date_units gives them for the table read whole
            self.time_units = _date_columns(s, finest)

    def _fragments(self):
        try:
            fragments = list(self._dataset.get_fragments())
            for f in fragments:
                f.ensure_complete_metadata()
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{self.source}: {_short(exc)}; a file may be damaged, re-create it") from None
        # get_fragments follows the file list, which is sorted; keep that order explicitly
        position = {f: i for i, f in enumerate(self.files)}
        return sorted(fragments, key=lambda f: position.get(f.path, 0))

    def _batches(self, piece, columns) -> Iterator[pa.RecordBatch]:
        try:
            yield from piece.to_batches(
                schema=self._dataset.schema,
                columns=columns,
                batch_size=BATCH_ROWS,
                batch_readahead=1,
                fragment_readahead=1,
                use_threads=False,
            )
        except (pa.ArrowException, OSError) as exc:
            raise InputError(
                f"{self._file_name(None)}: {_short(exc)}; check that no file is damaged and that all "
                "have the same columns and types"
            ) from None

    def _file_name(self, index: int | None) -> str:
        return self.source if index is None else self.files[index]

    # -- the groups ------------------------------------------------------------------------------
    @property
    def n_groups(self) -> int:
        """How many groups iterating yields."""
        return 1 if self._id is None else -(-self.kept // self.size)

    def __iter__(self) -> Iterator[Dataset]:
        if self._id is None:
            yield self.group(0)
            return
        if self._sequential:
            yield from self._one_pass()
            return
        for g in range(self.n_groups):
            yield self.group(g)

    def group(self, g: int) -> Dataset:
        """Group ``g`` alone (specimens g*size .. (g+1)*size-1 of the kept ones, in sorted order):
        only the row groups that hold them are read. Training reads the groups in a new order
        every epoch through this."""
        if not 0 <= g < self.n_groups:
            raise IndexError(f"group {g} of {self.n_groups}")
        if self._id is None:
            return self._validate(self._read(self._groups or self._all_row_groups(), None))
        group_of = np.where(self._rank >= 0, self._rank // self.size, -1)  # [N] by sorted code
        members = group_of == g
        units = [u for u in self._groups if members[u.codes].any()]
        return self._validate(self._read(units, lambda codes: group_of[codes] == g))

    def _all_row_groups(self) -> list[_RowGroup]:
        units = []
        for file_index, fragment in enumerate(self._fragments()):
            offset = 0
            for rg in fragment.row_groups:
                units.append(_RowGroup(file_index, fragment.subset(row_group_ids=[rg.id]), offset))
                offset += rg.num_rows
        return units

    def _codes(self, batch: pa.RecordBatch) -> np.ndarray:
        ids = _plain(batch.column(self._columns.index(self._id)))
        return pc.index_in(ids, value_set=self._values).to_numpy(zero_copy_only=False)

    def _one_pass(self) -> Iterator[Dataset]:
        """Specimens come in sorted order, each in one run: cut the stream at group boundaries."""
        pending: list[tuple[int, np.ndarray, pa.RecordBatch]] = []
        current = 0
        for unit in self._groups:
            start = unit.offset
            for batch in self._batches(unit.fragment, self._columns):
                rank = self._rank[self._codes(batch)]
                group = np.where(rank >= 0, rank // self.size, -1)
                rows = np.arange(start, start + len(batch))
                start += len(batch)
                for g in np.unique(group[group >= 0]):
                    if g != current and pending:
                        yield self._validate(pending)
                        pending = []
                    current = int(g)
                    take = np.flatnonzero(group == g)
                    pending.append((unit.file, rows[take], batch.take(pa.array(take))))
        if pending:
            yield self._validate(pending)

    def _read(self, units: list[_RowGroup], wanted) -> list[tuple[int, np.ndarray, pa.RecordBatch]]:
        """The rows of ``units`` whose specimen codes ``wanted(codes)`` keeps (None: every row)."""
        pieces = []
        for unit in units:
            start = unit.offset
            for batch in self._batches(unit.fragment, self._columns):
                rows = np.arange(start, start + len(batch))
                start += len(batch)
                if wanted is not None:
                    take = np.flatnonzero(wanted(self._codes(batch)))
                    if not take.size:
                        continue
                    rows, batch = rows[take], batch.take(pa.array(take))
                pieces.append((unit.file, rows, batch))
        return pieces

    def _validate(self, pieces: list[tuple[int, np.ndarray, pa.RecordBatch]]) -> Dataset:
        """One group's rows as a validated Dataset; errors name the file and its row."""
        file_of = np.concatenate([np.full(len(rows), f, dtype=np.int32) for f, rows, _ in pieces])
        row_of = np.concatenate([rows for _, rows, _ in pieces])
        table = pa.Table.from_batches([b for _, _, b in pieces])
        del pieces
        df = tables.arrow_to_frame(table, self.source).rename(columns=self._rename)
        del table
        try:
            ds = validate(df, self.schema, source=self.source, require_target=False)
        except InputError as exc:
            raise InputError(self._locate(exc.template, file_of, row_of)) from None
        ds.notes[:0] = self.notes
        return measured_only(ds) if self._measured_only else ds

    def _locate(self, message: str, file_of: np.ndarray, row_of: np.ndarray) -> str:
        """Turn a group's row numbers in ``message`` into the file's own row numbers (where the
        messages name rows: never inside a quoted cell, io.relabel_rows)."""
        single = len(self.files) == 1

        def where(r: int) -> str | None:
            if not 1 <= r <= len(row_of):
                return None
            text = f"row {row_of[r - 1] + 1}"
            return text if single else f"{text} of {self.files[file_of[r - 1]]}"

        def pair(a: int, b: int) -> str | None:
            first, second = where(a), where(b)
            if first is None or second is None:
                return None
            return f"rows {first[4:]} and {second[4:]}" if single else f"{first} and {second}"

        return tables.relabel_rows(message, where, pair)


@dataclass
class Grouped:
    """The specimens to work through and the groups they come in."""

    total: int  # specimens in the table (before --shard)
    ids: np.ndarray  # [N] the ids kept, as text, in the order the groups come
    groups: Iterator[Dataset]
    # written time columns -> the unit (io.TIME_UNITS) the input's own dates need, for a CSV
    # written a group at a time; empty when the times are numbers, or dates stored as text in a
    # Parquet table read in groups (parsed a group at a time)
    time_units: dict[str, int] = field(default_factory=dict)
    # the time zone the input's dates had (a tzinfo; None: none, or numbers), in which the outputs
    # are written; of a Parquet table read in groups, its first group's, set when that is read
    time_zone: object = None


def specimen_groups(
    path: str,
    schema: Schema,
    *,
    size: int,
    fmt: str | None = None,
    require_target: bool = True,
    shard: tuple[int, int] | None = None,
) -> Grouped:
    """The specimens of ``path`` as Datasets of at most ``size`` whole specimens each.

    A Parquet file or folder is read a group at a time (:class:`SpecimenGroups`); any other input
    (CSV, JSON Lines, stdin) is read whole, validated once and then cut into groups, so that the
    work and the outputs still go a group at a time.
    """
    check_chunk(size)
    if is_parquet(path, fmt):
        reader = SpecimenGroups(path, schema, size=size, require_target=require_target, shard=shard)
        kept = reader.ids if reader._rank is None else reader.ids[reader._rank >= 0]
        grouped = Grouped(len(reader.ids), kept, iter(()), reader.time_units)
        grouped.groups = _noting_zone(grouped, iter(reader))
        return grouped
    from durability_cli.parallel import take_shard
    from durability_cli.schema import load_dataset

    ds = load_dataset(path, fmt=fmt, schema=schema, require_target=require_target)
    total = len(specimen_starts(ds.frame, ds.schema.id_col))
    if shard is not None:
        ds = take_shard(ds, *shard)
        if ds is None:
            return Grouped(total, np.zeros(0, dtype=object), iter(()))
    codes, text = id_codes(ds.frame, ds.schema.id_col)
    ids = np.asarray(text, dtype=object)[codes[specimen_starts(ds.frame, ds.schema.id_col)]]
    return Grouped(total, ids, split_dataset(ds, size), date_units(ds), ds.time_zone)


def _noting_zone(grouped: Grouped, groups: Iterator[Dataset]) -> Iterator[Dataset]:
    """``groups``, with the first one's time zone noted in ``grouped``. Dates stored as text are
    parsed a group at a time, and a later group's dates (UTC instants in the run) are written in
    that zone too: the same instants, one zone in a file."""
    for k, ds in enumerate(groups):
        if k == 0:
            grouped.time_zone = ds.time_zone
        yield ds


def date_units(ds: Dataset) -> dict[str, int]:
    """The unit the whole input's dates need, for every written column that holds the rows' own
    dates (the forecast's and the backtest's times, the end-of-life table's last measured time and
    horizon end), so that each group's CSV writes them as the whole table's would."""
    s = ds.schema
    if not s.time_is_datetime or not len(ds.frame):
        return {}
    unit = ds.date_unit if ds.date_unit is not None else dates_unit(ds)
    return {} if unit is None else _date_columns(s, unit)


def dates_unit(ds: Dataset) -> int | None:
    """The unit (io.TIME_UNITS) the dates of ``ds``'s rows need; None where its times are numbers."""
    s = ds.schema
    if not s.time_is_datetime or not len(ds.frame):
        return None
    dates = pa.table({"t": pa.array(pd.to_datetime(ds.frame[s.time_col]).to_numpy())})
    return tables.time_units(dates).get("t")


def _date_columns(s: Schema, unit: int) -> dict[str, int]:
    """The written columns that hold the rows' own dates, each at ``unit`` (io.TIME_UNITS)."""
    return dict.fromkeys((s.time_col, "time", "last_measured_time", "horizon_end"), unit)


class FrameGroups:
    """A Dataset already in memory, as groups of ``size`` specimens with the interface of
    :class:`SpecimenGroups` (``ids``, ``n_groups``, ``group(g)``, iteration): training on a CSV
    or stdin table with --chunk-specimens then holds one group's tensors at a time."""

    def __init__(self, ds: Dataset, size: int):
        check_chunk(size)
        self.source, self.schema, self.notes, self.size = ds.source, ds.schema, list(ds.notes), size
        self.dataset = ds
        self.rows = len(ds.frame)
        starts = specimen_starts(ds.frame, ds.schema.id_col)
        codes, text = id_codes(ds.frame, ds.schema.id_col)
        self.ids = np.asarray(text, dtype=object)[codes[starts]]
        self.lengths = run_lengths(starts, len(ds.frame))  # [N] rows per specimen
        self._bounds = np.r_[starts[::size], len(ds.frame)]

    @property
    def n_groups(self) -> int:
        return len(self._bounds) - 1

    def group(self, g: int) -> Dataset:
        if not 0 <= g < self.n_groups:
            raise IndexError(f"group {g} of {self.n_groups}")
        lo, hi = int(self._bounds[g]), int(self._bounds[g + 1])
        frame = self.dataset.frame.iloc[lo:hi].reset_index(drop=True)
        return replace(self.dataset, frame=frame, t=self.dataset.t[lo:hi], notes=list(self.notes))

    def __iter__(self) -> Iterator[Dataset]:
        for g in range(self.n_groups):
            yield self.group(g)


def _open_dataset(path: str):
    """(the Parquet files, a ``pyarrow.dataset`` over them) for a file or a folder (hive partitions
    become columns); one clear error for what cannot be opened."""
    import pyarrow.dataset as pads

    folder = Path(path)
    files = tables.parquet_files(folder, str(path)) if folder.is_dir() else [str(path)]
    try:
        if folder.is_dir():
            tables.check_partition_keys(folder, files, str(path))
            dataset = pads.dataset(
                files,
                format="parquet",
                partitioning=pads.HivePartitioning.discover(),
                partition_base_dir=str(folder),
            )
        else:
            dataset = pads.dataset(files, format="parquet")
        dataset.schema  # noqa: B018 (reading the footer is what fails on a damaged file)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{path}: {_short(exc)}; check that it is a readable Parquet table") from None
    return files, dataset


def probe_frame(path: str, rows: int = BATCH_ROWS) -> pd.DataFrame:
    """The first ``rows`` rows of a Parquet file or folder, every column (hive partitions as
    columns): enough for ``schema.resolve_schema`` to work out the column roles without reading
    the table."""
    _, dataset = _open_dataset(path)
    try:
        table = dataset.head(rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{path}: {_short(exc)}; check that it is a readable Parquet table") from None
    return tables.arrow_to_frame(table, str(path))


def split_dataset(ds: Dataset, size: int) -> Iterator[Dataset]:
    """A validated Dataset as consecutive Datasets of at most ``size`` specimens (views, no copy
    of the whole table)."""
    return iter(FrameGroups(ds, size))


def _plain(values) -> pa.Array:
    """An id column as one plain array (dictionary-encoded ids decoded)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return values


def _first_null(values: pa.Array) -> int:
    return int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


# -- writing ---------------------------------------------------------------------------------------
class TableWriter:
    """Write a table piece by piece: ``with TableWriter(path) as w: w.write(df) ...``.

    ``path`` ``-`` is stdout (each piece is written as it comes). A file is written to a temporary
    name next to it and renamed when the ``with`` block ends without an error; on an error the
    temporary file is removed and an existing file is left as it was. ``fmt`` and the extension
    choose the format as in ``io.write_table``. ``quote``: True when a text cell of a later piece
    may need CSV quotes (commas, quotes, line breaks, edge spaces), so that the first piece quotes
    text the way the whole table would; the writer switches to quoting by itself when it sees one.
    ``attrs``: the DataFrame attributes to record in the Parquet metadata.
    """

    def __init__(
        self,
        path: str,
        *,
        fmt: str | None = None,
        quote: bool = False,
        attrs: dict | None = None,
        time_units: dict[str, int] | None = None,
    ):
        fmt = tables.check_format(fmt)
        self.path = str(path)
        self.stdout = self.path == "-"
        fmt = tables.format_for("-" if self.stdout else self.path, fmt)
        if fmt is None:
            raise InputError(
                f"{path}: cannot tell the output format from the name; "
                "use .csv, .csv.gz, .parquet or .jsonl, or pass the format"
            )
        if self.stdout and fmt == "parquet" and sys.stdout.isatty():
            raise InputError("stdout: refusing to write binary Parquet to a terminal; use -o NAME.parquet")
        self.fmt = fmt
        self.quote = quote
        self.attrs = dict(attrs or {})
        self.rows = 0
        self._stack = contextlib.ExitStack()
        self._sink = None  # the binary file written to
        self._parquet = None  # pyarrow ParquetWriter
        self._style: str | None = None  # CSV quoting, decided on the first piece
        # CSV: each time column's unit (io.TIME_UNITS), the finest any piece so far needed and at
        # least the caller's (the input's own times): a file never mixes 2024-05-30 with
        # 2024-05-30 12:00:00 in one column, which readers that infer one format refuse
        self._units: dict[str, int] = dict(time_units or {})
        self._columns: list[str] | None = None

    def __enter__(self) -> TableWriter:
        try:
            if self.stdout:
                sink = getattr(sys.stdout, "buffer", None)
                if sink is None:
                    raise InputError("stdout: cannot write a table to a text stream; write to a file with -o")
                sys.stdout.flush()
                self._sink = sink
            else:
                tmp = self._stack.enter_context(tables.atomic_path(self.path))
                raw = self._stack.enter_context(open(tmp, "wb"))
                gz = self.path.lower().endswith(".gz") and self.fmt != "parquet"
                self._sink = self._stack.enter_context(_Gzip(raw)) if gz else raw
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of ``df`` (the same columns every time)."""
        if self._columns is None:
            self._columns = [str(c) for c in df.columns]
        elif [str(c) for c in df.columns] != self._columns:
            raise DurabilityError(f"{self.path}: a piece has other columns than the first ({self._columns})")
        if self.fmt == "parquet":
            self._write_parquet(df)
        elif self.fmt == "csv":
            self._emit(self._csv(df))
        elif len(df):
            self._emit(tables.jsonl_bytes(df))
        self.rows += len(df)

    def _csv(self, df: pd.DataFrame) -> bytes:
        table = tables.csv_table(df, plain=False)
        for name, k in tables.time_units(table).items():
            self._units[name] = max(k, self._units.get(name, 0))
        table = tables.cast_times(table, self._units)
        needed = tables.csv_style(table) == "needed"
        first = self._style is None
        if first:
            self._style = "needed" if (self.quote or needed) else "none"
        elif needed:
            self._style = "needed"  # still valid CSV; the earlier pieces had no text that needed it
        return tables.csv_table_bytes(table, self._style, header=first)

    def _write_parquet(self, df: pd.DataFrame) -> None:
        import pyarrow.parquet as pq

        df.attrs = self.attrs
        table = tables.frame_to_arrow(df)
        if self._parquet is None:
            # dictionary (categorical) columns get 32-bit indices: a later piece may hold more
            # categories than the first (the whole file reads back as int32 dictionaries anyway)
            schema = pa.schema(
                [
                    f.with_type(pa.dictionary(pa.int32(), f.type.value_type, f.type.ordered))
                    if pa.types.is_dictionary(f.type)
                    else f
                    for f in table.schema
                ],
                metadata=table.schema.metadata,
            )
            sink = self._sink if not self.stdout else pa.PythonFile(self._sink, mode="w")
            self._parquet = pq.ParquetWriter(sink, schema)
        schema = self._parquet.schema
        if not table.schema.equals(schema, check_metadata=False):
            table = table.cast(pa.schema(list(schema), metadata=schema.metadata))
        self._guard(lambda: self._parquet.write_table(table))

    def _emit(self, blob: bytes) -> None:
        if blob:
            self._guard(lambda: self._sink.write(blob))

    def _guard(self, write) -> None:
        try:
            write()
        except BrokenPipeError:
            raise
        except OSError as exc:
            if self.stdout:
                tables.drop_stdout()
                raise DurabilityError(f"stdout: could not write the output ({exc.strerror or exc})") from None
            raise  # atomic_path turns it into one line and removes the temporary file

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            try:
                if self._parquet is not None:
                    self._guard(self._parquet.close)
                if self.stdout:
                    self._guard(self._sink.flush)
            except BaseException:
                if not self._stack.__exit__(*sys.exc_info()):
                    raise
                return False
        elif self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
        return self._stack.__exit__(kind, exc, tb)


class _Gzip:
    """A gzip stream with the bytes ``gzip.compress(data, mtime=0)`` gives for the whole data
    (zlib's own gzip header: no name, time 0)."""

    def __init__(self, raw):
        self.raw = raw
        self.zip = zlib.compressobj(9, zlib.DEFLATED, 31)

    def write(self, blob: bytes) -> None:
        self.raw.write(self.zip.compress(blob))

    def flush(self) -> None:
        self.raw.flush()

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.raw.write(self.zip.flush())


def quote_hint(ids) -> bool:
    """Whether any of these texts (specimen ids) would need quotes in a CSV file."""
    return any(tables.needs_quotes(str(i)) for i in ids)


# -- forecast a group at a time ----------------------------------------------------------------------
def with_future(groups, future: Dataset, ids, *, size: int, source: str, shard=None) -> Iterator[Dataset]:
    """``groups`` (of ``size`` specimens, ``ids`` in the order they come) with each group's rows of
    the ``future`` table appended (``forecasting.append_future``, as the whole-table path does).
    Every specimen of ``future`` (of this shard) must be among ``ids``: its rows need a history to
    warm up on; checked before the first group."""
    from durability_cli.forecasting import append_future, no_history

    codes, text = id_codes(future.frame, future.schema.id_col)
    row_ids = np.asarray(text, dtype=object)[codes]  # [rows] each row's id text
    position = pd.Index(np.asarray(ids, dtype=object).astype(str)).get_indexer(row_ids)  # -1: not kept
    present = pd.unique(row_ids[position < 0])
    if shard is not None and shard[1] > 1 and len(present):
        from durability_cli.parallel import shard_of

        present = present[shard_of(present, shard[1]) == shard[0]]  # other shards' rows: ignored
    if len(present):
        raise no_history(future.source, present, source, ids)
    group_of = np.where(position >= 0, position // size, -1)  # [rows]
    order = np.argsort(group_of, kind="stable")
    bounds = np.searchsorted(group_of[order], np.arange(-1, -(-len(ids) // size) + 1))

    def pieces():
        for g, ds in enumerate(groups):
            rows = np.sort(order[bounds[g + 1] : bounds[g + 2]])  # group g's rows, in file order
            if len(rows):
                part = replace(future, frame=future.frame.iloc[rows].reset_index(drop=True), t=future.t[rows])
                ds = append_future(ds, part)
            yield ds

    return pieces()
