"""Read and write tables: CSV (maybe gzipped), Parquet (a file or a folder), JSON Lines, stdio.

Every reader error is an ``InputError`` whose one-line message starts with the file name (or
"stdin"). Every file write goes through ``atomic_path``, so a failed command never leaves a half
written file and never replaces a good one.

Readers keep values as they are in the file: a numeric-looking column with one bad cell comes back
as text, so that ``schema.py`` can name the first offending row instead of silently dropping it.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import csv
import errno
import gzip
import io
import json
import os
import re
import stat
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from durability_cli import limits
from durability_cli.errors import DurabilityError, InputError

# Arrow sets its own Ctrl-C handler for the length of a long read; a Ctrl-C that lands in a read
# which ends without checking for it is then lost (seen once in CI: a --chunk-specimens training,
# which reads a group every epoch, ran to the end through Ctrl-C). Python's own handler turns it
# into KeyboardInterrupt as soon as the read returns, which every command handles.
pa.enable_signal_handlers(False)

FORMATS = ("csv", "parquet", "jsonl")
INPUT_FORMATS = (*FORMATS, "xlsx")  # Excel workbooks are read (with openpyxl), never written
_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"  # an .xlsx workbook is a zip archive
_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_BLOCK = 1 << 30  # largest CSV block pyarrow is asked for: bounds the memory a single row can take
_CONVERSION = re.compile(r"In CSV column #(\d+): .*CSV conversion error")  # older pyarrow only


# -- reading ---------------------------------------------------------------------------------------
Select = Callable[[list[str]], "list[str] | None"]


def read_table(
    path: str, *, fmt: str | None = None, select: Select | None = None, text: Select | None = None
) -> pd.DataFrame:
    """Read a table from ``path`` (``-`` = stdin) into a DataFrame with the file's own column names.

    Formats: ``.csv``, ``.csv.gz``, ``.parquet``/``.pq``, ``.jsonl``/``.ndjson``, ``.xlsx`` (the
    first sheet, with the optional openpyxl), a folder of Parquet files (hive partitions such as
    ``material=steel/`` become columns), or stdin, whose format is sniffed from its first bytes.
    ``fmt`` (csv, parquet, jsonl, xlsx; ``xlsx:SHEET`` or ``:SHEET`` names a sheet, see
    :func:`sheet_format`) overrides the guess.

    ``select(names)`` -> the column names to read, or None for all: Parquet files and folders and
    CSV files then read only those columns (the others are never decoded); other inputs read
    everything and drop the rest. ``text(names)`` -> the columns of a CSV to keep as text (names,
    such as a scenario's "1.50" or "007", that would otherwise be read as numbers).
    """
    fmt, _, sheet = (check_format(fmt, reading=True) or "").partition(":")
    fmt, sheet = fmt or None, sheet or None
    if path == "-":
        return _project(_read_stdin(fmt, sheet, text), select)
    name = str(path)
    p = Path(path)
    if p.is_dir():
        if fmt not in (None, "parquet"):
            raise InputError(f"{name}: is a folder; only folders of Parquet files can be read, not {fmt}")
        return _read_parquet_dir(p, name, select)
    try:
        with open(p, "rb") as fh:
            head = fh.read(64 * 1024)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file; check the path") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot read the file ({exc.strerror or exc}); check the path") from None
    if not head:
        raise InputError(f"{name}: the file is empty (it has no rows)")
    if (known := known_binary(head)) is not None:
        raise InputError(f"{name}: {known}")
    fmt = fmt or format_from_name(name, reading=True) or _sniff(head)
    if fmt == "csv" and _JSON_ARRAY.match(head):  # rows.txt holding [{...}]: "the file is empty"
        fmt = "jsonl"  # whose reader names the array, with the conversion
    _check_sheet(name, fmt, sheet)
    gz = head.startswith(_GZIP_MAGIC)
    if fmt == "jsonl" and not gz and b"\x00" in head:
        raise InputError(
            f"{name}: looks like a binary file, not JSON Lines text (it contains NUL bytes); "
            f"{_binary_hint(head)}, or save the table as UTF-8 JSON Lines"
        )
    if fmt != "parquet" and p.is_file() and p.stat().st_size > text_cap():
        raise _too_much_text(name, text_cap())
    if fmt == "xlsx":
        return _project(read_excel(p, name, sheet, select), select)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(p).names
            check_unique(names, name)
            return arrow_to_frame(pq.read_table(p, columns=_keep(names, select)), name)
        if fmt == "csv" and not gz:
            # pyarrow reads the file itself (faster than from memory); errors re-read it as bytes.
            return _read_csv(
                lambda: pa.input_stream(str(p)), head, lambda: _read_bytes(p, name, gz), name, select, text
            )
        data = _read_bytes(p, name, gz)
        return _project(_read_text_format(data, fmt, name, text), select)
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise InputError(f"{name}: {_explain(exc, fmt)}") from None


def _keep(names: list[str], select: Select | None) -> list[str] | None:
    """The columns to read: ``select``'s choice, or None (all) when a name appears twice (the
    full read then reports it) or when it chose none."""
    if select is None or len(set(names)) < len(names):
        return None
    chosen = set(select(list(names)) or ())
    keep = [n for n in names if n in chosen]
    return keep or None


def _project(df: pd.DataFrame, select: Select | None) -> pd.DataFrame:
    keep = _keep([str(c) for c in df.columns], select)
    return df if keep is None else df[keep]


def check_format(fmt: str | None, *, reading: bool = False) -> str | None:
    """The format's canonical name; ``reading`` also accepts xlsx (and ``xlsx:SHEET``)."""
    if fmt is None:
        return None
    base, colon, sheet = fmt.partition(":")
    f = base.lower().strip().lstrip(".")
    aliases = {"pq": "parquet", "ndjson": "jsonl", "json": "jsonl", "excel": "xlsx"}
    f = aliases.get(f, "csv" if f == "csv.gz" and reading else f)  # stdout is never gzipped
    known = INPUT_FORMATS if reading else FORMATS
    if reading and colon and f in ("", "xlsx"):  # a sheet, with the format or to be told from the name
        return f"{f}:{sheet}"
    if f not in known or colon:
        flag = "--format" if reading else "--output-format"
        raise InputError(f"{flag} {fmt}: unknown format; use one of {', '.join(known)}")
    return f


def sheet_format(fmt: str | None, sheet: str | None, flag: str = "--sheet") -> str | None:
    """``fmt`` with the sheet of an Excel workbook to read (``--sheet NAME``, or the option
    ``flag``): ``xlsx:NAME``, or ``:NAME`` when the format is told from the file name (a file that
    is not a workbook is then an error that names it)."""
    if sheet is None:
        return fmt
    f = check_format(fmt, reading=True) or ""
    if f not in ("", "xlsx"):
        raise InputError(f"{flag} is for Excel workbooks (.xlsx), not {f}; leave {flag} out")
    if not sheet.strip():
        raise InputError(f"{flag} needs a sheet name; leave it out to read the first sheet")
    return f"{f}:{sheet}"


def table_name(path, fmt: str | None = None) -> str:
    """What messages and a run's record call the table read from ``path`` with ``fmt``: the path
    ("stdin" for ``-``), with the sheet the format names, as the rows read are that sheet's
    ("book.xlsx sheet 'plan'")."""
    return in_sheet("stdin" if str(path) == "-" else str(path), (fmt or "").partition(":")[2] or None)


def in_sheet(name: str, sheet: str | None) -> str:
    return f"{name} sheet {sheet!r}" if sheet else name


def _check_sheet(name: str, fmt: str, sheet: str | None) -> None:
    if sheet is not None and fmt != "xlsx":
        raise InputError(
            f"{name}: a sheet is named, but this is a {fmt} file, not an Excel workbook (.xlsx); leave the "
            "sheet out"
        )


def read_excel(source, name: str, sheet: str | None = None, select: Select | None = None) -> pd.DataFrame:
    """One sheet of an Excel workbook (``sheet``, else the first) as a DataFrame: the first row
    names the columns; formulas give the values Excel last saved with them (one without a value,
    in a column ``select`` keeps, is refused)."""
    try:
        import openpyxl
    except ImportError:
        raise InputError(
            f"{name}: reading Excel workbooks needs openpyxl; install it with "
            "pip install 'durability[excel]' (or pip install openpyxl), or save the sheet as CSV"
        ) from None
    if isinstance(source, str | Path):  # by its content: openpyxl refuses a workbook named .csv by its name
        with open(source, "rb") as fh:
            return read_excel(io.BytesIO(fh.read()), name, sheet, select)
    try:
        book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl's own errors: all mean "not a workbook"
        text = " ".join(str(exc).split())[:160]
        raise InputError(
            f"{name}: not a readable Excel workbook ({type(exc).__name__}: {text}); "
            "save it as .xlsx from Excel, or as CSV"
        ) from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(
                f"{name}: has no sheet {sheet!r} (sheets: {', '.join(book.sheetnames)}); name one of them"
            )
        sheets = list(book.sheetnames)
        rows = (
            book[sheet].iter_rows(values_only=True)
            if sheet
            else book.worksheets[0].iter_rows(values_only=True)
        )
        header = next(rows, None)
        body, cells, cap = [], 0, text_cap() // 64  # a cell in a row tuple takes ~64 bytes or more
        gaps = []  # (sheet row number, 1-based; its empty cells' columns) of the rows read with any
        numbers = []  # the sheet row number of each row read
        width = 0 if header is None else len(header)
        kept = None if header is None else _keep(["" if v is None else str(v) for v in header], select)
        checked = [j for j in range(width) if kept is None or str(header[j]) in kept]  # the columns used
        for number, row in enumerate(rows, start=2):
            cells += len(row)
            if cells > cap:
                raise InputError(
                    f"{name}: the sheet holds more than {cap:,} cells, more than the memory budget allows; "
                    "save it as Parquet or CSV, or raise --max-memory"
                )
            if any(v is not None for v in row):
                body.append(row)
                numbers.append(number)
                empty = [j for j in checked if j >= len(row) or row[j] is None]
                if empty:
                    gaps.append((number, empty))
    finally:
        book.close()
    where = in_sheet(name, sheet)
    if gaps:  # an empty cell may be a formula no program has calculated: said, not read as empty
        _check_formulas(source, where, sheet, gaps, width)
    if header is None or all(v is None for v in header):
        raise InputError(f"{where}: the first row is empty; it must hold the column names")
    names = ["" if v is None else str(v) for v in header]
    check_unique(names, where)
    width = len(names)
    df = pd.DataFrame([list(row[:width]) + [None] * (width - len(row)) for row in body], columns=names)
    if not len(df):
        raise InputError(f"{where}: the sheet has no rows below its header")
    df = df.fillna(np.nan).infer_objects()
    if sheet is None and len(sheets) > 1:  # the first sheet taken: a missing column can be elsewhere
        df.attrs[OTHER_SHEETS] = sheets[1:]
    df.attrs[SHEET_ROWS] = np.asarray(numbers, dtype=np.int64)
    return df


def _check_formulas(source, where: str, sheet: str | None, gaps: list, width: int) -> None:
    """Refuse an empty cell of ``gaps`` ((sheet row number, the columns of its empty cells)) that
    holds a formula: a workbook written by a program (openpyxl, pandas) and never opened in a
    spreadsheet has no values saved for its formulas, and the cell would be read as empty."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    source.seek(0)
    book = openpyxl.load_workbook(source, read_only=True, data_only=False)
    try:
        ws = book[sheet] if sheet else book.worksheets[0]
        wanted = iter(gaps)
        target, empty = next(wanted)
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            if number < target:
                continue
            for j in empty:
                value = row[j] if j < len(row) else None
                if isinstance(value, str) and value.startswith("="):
                    raise InputError(
                        f"{where}: cell {get_column_letter(j + 1)}{number} holds a formula ({value[:40]}) with no "
                        "value saved with it: the workbook was written by a program and never calculated; open "
                        "and save it in Excel or LibreOffice, or save the sheet as CSV"
                    )
            target, empty = next(wanted, (None, None))
            if target is None:
                return
    finally:
        book.close()


OTHER_SHEETS = "durability_other_sheets"  # DataFrame.attrs: a workbook's sheets after the one read
SHEET_ROWS = "durability_sheet_rows"  # DataFrame.attrs: the sheet row number of each row read


def sheet_rows(message: str, df: pd.DataFrame) -> str:
    """``message`` (about the rows of ``df``, numbered from 1) with each row as the workbook shows
    it: "row 3" -> "sheet row 5" (the header is row 1, and blank rows, which are not read, still
    count); the message as it is where ``df`` is not a sheet."""
    numbers = df.attrs.get(SHEET_ROWS)
    if numbers is None:
        return message
    ok = range(1, len(numbers) + 1)
    return relabel_rows(
        message,
        lambda k: f"sheet row {numbers[k - 1]}" if k in ok else None,
        lambda a, b: f"sheet rows {numbers[a - 1]} and {numbers[b - 1]}" if a in ok and b in ok else None,
    )


# Where the messages of schema.frame_dataset name a row: "column 'x', row 3:", "(row 3)", "at row
# 3,", "(rows 6 and 9)"; never a cell's value, which they quote ('row 2' is not a number).
_ROW = re.compile(r"(?:(?<=, )|(?<=\()|(?<=\bat ))row (\d+)(?=[:),;])")
_ROWS = re.compile(r"(?<=\()rows (\d+) and (\d+)(?=[),;])")


def relabel_rows(message: str, one, two) -> str:
    """``message`` with each row it names (numbered from 1) as ``one(k)`` says it, and each pair
    as ``two(a, b)`` does (None: as it was)."""
    message = _ROWS.sub(lambda m: two(int(m[1]), int(m[2])) or m[0], message)
    return _ROW.sub(lambda m: one(int(m[1])) or m[0], message)


def other_sheets_hint(df: pd.DataFrame) -> str:
    """'; this is the first of the workbook's sheets (the others: plan): ...' where ``df`` was
    read from a workbook's first sheet by default and others exist, else ''."""
    others = df.attrs.get(OTHER_SHEETS)
    if not others:
        return ""
    return (
        f"; this is the workbook's first sheet (the others: {', '.join(map(str, others))}): "
        "name the sheet that holds the table"
    )


def format_from_name(name: str, *, reading: bool = False) -> str | None:
    """The format an extension says; ``reading`` also knows Excel workbooks (never written)."""
    low = name.lower()
    if low.endswith(".gz"):
        low = low[:-3]
    if low.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if low.endswith((".csv", ".txt")) or (reading and low.endswith(".tsv")):  # never written tab-separated
        return "csv"
    if reading and low.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    return None


def output_format(path: str | Path) -> str | None:
    """The format a file written to ``path`` gets from its name; a device or FIFO without one
    (``/dev/null``, a named pipe) is written CSV, as stdout is."""
    return format_from_name(str(path)) or ("csv" if special_file(path) else None)


def format_for(path: str, fmt: str | None) -> str | None:
    """The format of a table written to ``path`` (``-``: stdout) when ``--output-format`` says
    ``fmt``: a name's own extension (.csv, .parquet, .jsonl, gzipped or not) decides; stdout, a
    device, a pipe or a name without one (.txt) takes ``fmt``; else CSV for stdout and devices.
    None: nothing tells (refused by :func:`check_outputs` before any work)."""
    if path == "-":
        return fmt or "csv"
    low = str(path).lower().removesuffix(".gz")
    if low.endswith((".csv", ".jsonl", ".ndjson", ".json", *_PARQUET_SUFFIXES)):
        return format_from_name(str(path))
    return fmt or output_format(path)


_PACKED = {  # compressions a table comes in that are not read (gzip is): their first bytes
    b"\xfd7zXZ\x00": ("xz", "xz -dc"),
    b"BZh": ("bzip2", "bzip2 -dc"),  # with a block size digit and a block's or the end's magic
    b"\x28\xb5\x2f\xfd": ("zstd", "zstd -dc"),
    b"7z\xbc\xaf\x27\x1c": ("7-Zip", "7z x -so"),
}


_BZIP2 = re.compile(rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)")  # a CSV may begin "BZh_id,..."


def known_binary(head: bytes) -> str | None:
    """What a file that is no table is, from its first bytes, with the fix: a durability model
    or checkpoint (safetensors), or a compression other than gzip; None when it is none of them."""
    if len(head) > 9 and head[8:9] == b"{" and 2 <= struct.unpack("<Q", head[:8])[0] < 100_000_000:
        if b'"__metadata__"' in head[8:4096] or b'"dtype"' in head[8:4096]:
            return (
                "is a model or checkpoint file (safetensors), not a table; a model goes after -m/--model, "
                "a checkpoint after --resume"
            )
    for magic, (kind, command) in _PACKED.items():
        if head.startswith(magic) and (magic != b"BZh" or _BZIP2.match(head)):
            return (
                f"is {kind}-compressed, which is not read (gzip is); decompress it first, or pipe it in: "
                f"{command} FILE | durability ... -"
            )
    return None


def _binary_hint(head: bytes) -> str:
    """What a binary file read as text may be, from its first bytes (a workbook is a zip file)."""
    if head.startswith(_ZIP_MAGIC):
        return "it is a zip file: pass --format xlsx if it is an Excel workbook"
    if head.startswith(_PARQUET_MAGIC):
        return "it starts as Parquet does: pass --format parquet"
    return "pass --format parquet if it is Parquet (--format xlsx for an Excel workbook)"


def _sniff(head: bytes) -> str:
    """Tell the format from the first bytes: Parquet magic, a JSON object, else CSV."""
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_ZIP_MAGIC):
        return "xlsx"
    if head.startswith(_GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 4096)
        except zlib.error:
            return "csv"  # corrupt gzip: the CSV path reports it
    return (
        "jsonl" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") or _JSON_ARRAY.match(head) else "csv"
    )


_JSON_ARRAY = re.compile(rb"(?:\xef\xbb\xbf)?\s*\[\s*[{\]]")  # [{...}, ...]: jq -s, pandas' orient="records"


def _read_bytes(p: Path, name: str, gz: bool) -> bytes:
    try:
        with gzip.open(p, "rb") if gz else open(p, "rb") as fh:
            return read_limited(fh.read, name)
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise InputError(f"{name}: the gzip data is corrupt or truncated; re-create the file") from None


def text_cap() -> int:
    """The most bytes of table text (after decompression) read into memory: half the budget,
    since the table made from it takes about as much again."""
    return limits.budget() // 2


def read_limited(read: Callable[[int], bytes], name: str) -> bytes:
    """All of ``read``'s bytes, or an InputError once they pass :func:`text_cap` (a gzip bomb, a
    device that never ends): the memory taken stays within the budget."""
    cap = text_cap()
    return read_at_most(read, cap, lambda: _too_much_text(name, cap))


def read_at_most(read: Callable[[int], bytes], cap: int, too_big: Callable[[], Exception]) -> bytes:
    """All of ``read``'s bytes, read 16 MB at a time (``read(n)`` may set aside n bytes at once);
    raises ``too_big()`` as soon as they pass ``cap``."""
    chunks, total = [], 0
    while block := read(min(1 << 24, cap + 1 - total)):
        chunks.append(block)
        total += len(block)
        if total > cap:
            raise too_big()
    return b"".join(chunks)


def _too_much_text(name: str, cap: int) -> InputError:
    return InputError(
        f"{name}: the table text is more than {limits.size_text(cap)} (after decompression), over half "
        f"the memory budget of {limits.size_text(limits.budget())}; convert it to Parquet and read it "
        "with --chunk-specimens, or raise durability --max-memory"
    )


MAX_JSON_DEPTH = 64  # a table's cells are plain values: deeper nesting is a bomb, not data
_JSON_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')


def check_json_depth(data: bytes, name: str) -> None:
    """Refuse JSON Lines nested deeper than MAX_JSON_DEPTH before a parser sees it: pyarrow's
    reader crashes the process (a segfault) on deep nesting, pandas' recurses past Python's limit.
    Strings are blanked out (they may hold brackets), then the brackets counted, 64 MB at a time."""
    lo, line = 0, 1
    while lo < len(data):
        hi = data.find(b"\n", lo + (1 << 26))
        hi = len(data) if hi < 0 else hi + 1
        chunk = np.frombuffer(_JSON_STRING.sub(b'""', data[lo:hi]), dtype=np.uint8)
        opens = (chunk == ord("{")) | (chunk == ord("["))
        pos = np.flatnonzero(opens | (chunk == ord("}")) | (chunk == ord("]")))
        depth = np.where(opens[pos], 1, -1).cumsum()
        if len(depth) and depth.max() > MAX_JSON_DEPTH:
            at = pos[int(np.argmax(depth > MAX_JSON_DEPTH))]
            row = line + int(np.count_nonzero(chunk[:at] == ord("\n")))
            raise InputError(
                f"{name}: line {row}: a value is nested more than {MAX_JSON_DEPTH} levels deep; "
                "a table needs one JSON object of plain values (numbers, text) per line"
            )
        line += int(np.count_nonzero(chunk == ord("\n")))
        lo = hi


def _read_stdin(fmt: str | None, sheet: str | None = None, text: Select | None = None) -> pd.DataFrame:
    name = "stdin"
    if sys.stdin is None:  # started with stdin closed (`<&-`)
        raise InputError(
            "stdin: is closed; pipe a table in (cat data.csv | durability ...) or pass a file name"
        )
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is not None:
            data = read_limited(stream.read, name)
        else:
            data = sys.stdin.read().encode("utf-8", "surrogateescape")
    except (OSError, ValueError) as exc:  # a closed or unreadable descriptor
        raise InputError(f"stdin: cannot be read ({exc}); pipe a table in or pass a file name") from None
    if not data:
        raise InputError(
            "stdin: no input; pipe a table in (cat data.csv | durability ...) or pass a file name"
        )
    if data.startswith(_GZIP_MAGIC):
        try:
            data = read_limited(gzip.GzipFile(fileobj=io.BytesIO(data)).read, name)
        except (gzip.BadGzipFile, EOFError, zlib.error):
            raise InputError("stdin: the gzip data is corrupt or truncated") from None
        if not data:
            raise InputError("stdin: the input is empty (it has no rows)")
    if (known := known_binary(data[:4096])) is not None:
        raise InputError(f"{name}: {known}")
    fmt = fmt or _sniff(data[:4096])
    _check_sheet(name, fmt, sheet)
    if fmt == "xlsx":
        return read_excel(io.BytesIO(data), name, sheet)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return arrow_to_frame(pq.read_table(pa.BufferReader(data)), name)
        return _read_text_format(data, fmt, name, text)
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
        raise InputError(f"{name}: {_explain(exc, fmt)}") from None


def _explain(exc: Exception, fmt: str) -> str:
    """One line for a reader's own error."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 160 else text[:157] + "..."

    if fmt == "parquet":
        return f"not a readable Parquet file ({text}); it may be corrupt or truncated, re-create it"
    if fmt == "jsonl":
        return f"not valid JSON Lines ({text}); each line must be one JSON object"
    return f"cannot be read as CSV ({text}); check that it is a comma-separated text file"


def _read_text_format(data: bytes, fmt: str, name: str, text: Select | None = None) -> pd.DataFrame:
    if fmt == "jsonl":
        return _read_jsonl(data, name)
    return _read_csv(lambda: pa.BufferReader(data), data[: 64 * 1024], lambda: data, name, text=text)


def _read_csv(
    open_input, head: bytes, read_all, name: str, select: Select | None = None, text: Select | None = None
) -> pd.DataFrame:
    """``open_input()``: a fresh pyarrow input per call; ``read_all()``: the bytes, for errors."""
    import pyarrow.csv as pacsv

    if b"\x00" in head:
        raise InputError(
            f"{name}: looks like a binary file, not CSV text (it contains NUL bytes); "
            f"{_binary_hint(head)}, or save the table as UTF-8 CSV"
        )
    header = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if not header.strip(b"\r \t"):
        raise InputError(f"{name}: the first line is empty; the first line must be the column names")
    try:
        # The header may be cut mid-character when it is longer than ``head``.
        codecs.getincrementaldecoder("utf-8")().decode(header, final=b"\n" in head)
    except UnicodeDecodeError:
        raise InputError(f"{name}: the header is not UTF-8 text; save the file as UTF-8 CSV") from None
    # A header with no comma but semicolons or tabs: a European or tab-separated export.
    delimiter = ","
    if b"," not in header:
        delimiter = ";" if b";" in header else "\t" if b"\t" in header else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    forced: dict[str, pa.DataType] = {}
    block = 1 << 20  # pyarrow's default; a value longer than a block needs a bigger one
    include: list[str] = []
    if select is not None:
        try:
            names = pacsv.open_csv(
                open_input(), read_options=pacsv.ReadOptions(block_size=block), parse_options=parse
            ).schema.names
            include = _keep(names, select) or []
        except pa.ArrowInvalid:
            include = []  # the full read below reports what is wrong with the file
    texts: list[str] = []
    if text is not None:
        try:
            names = pacsv.open_csv(
                open_input(), read_options=pacsv.ReadOptions(block_size=block), parse_options=parse
            ).schema.names
            texts = [n for n in text(names) or () if n in names]
            forced |= {n: pa.string() for n in texts}
        except pa.ArrowInvalid:
            pass  # the full read below reports what is wrong with the file
    for _ in range(1000):  # each retry fixes one column's type or the block size; never loops for long
        try:
            convert = pacsv.ConvertOptions(
                column_types=forced, strings_can_be_null=True, include_columns=include
            )
            read = pacsv.ReadOptions(block_size=block)
            table = pacsv.read_csv(
                open_input(), read_options=read, parse_options=parse, convert_options=convert
            )
            break
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            if "straddl" in msg:  # one value (or row) is longer than the block
                if block >= _MAX_BLOCK:
                    raise InputError(
                        f"{name}: a single row is longer than {_MAX_BLOCK >> 20} MB; "
                        "check the quoting (an unclosed quote swallows the rest of the file)"
                    ) from None
                block = min(block * 8, _MAX_BLOCK)
                continue
            m = _CONVERSION.search(msg)
            if m and "UTF8" in msg:  # a column kept as text (``text``) holds bytes that are not:
                names = pacsv.open_csv(open_input(), read_options=read, parse_options=parse).schema.names
                if forced.get(names[int(m.group(1))]) == pa.string():  # read as bytes, named below
                    forced[names[int(m.group(1))]] = pa.binary()
                    continue
            if m and "UTF8" not in msg:
                # Older pyarrow guessed a type from the first block that a later row breaks: keep
                # the column as text so the schema check can name that row.
                names = pacsv.open_csv(open_input(), read_options=read, parse_options=parse).schema.names
                forced[names[int(m.group(1))]] = pa.string()
                continue
            if "Expected" in msg and "columns" in msg:
                raise InputError(f"{name}: {_ragged_row(read_all(), delimiter)}") from None
            if "Empty CSV" in msg:
                raise InputError(f"{name}: the file is empty (it has no rows)") from None
            raise
    table = _text_as_written(table, open_input, read, parse, texts, name)
    table = _offset_as_written(table, open_input, read, parse)
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            row = _first_non_utf8(table.column(i))
            raise InputError(
                f"{name}: column '{field.name}', row {row} is not UTF-8 text; "
                "save the file as UTF-8 (in Excel: 'CSV UTF-8')"
            )
    return arrow_to_frame(table, name)


def _text_as_written(table: pa.Table, open_input, read, parse, texts: list[str], name: str) -> pa.Table:
    """The columns kept as text (``texts``: ids, scenario names) as written: a cell "NA", "null"
    or "N/A" is that name, where pyarrow took it for a missing value (the numbers' columns keep
    that reading, a number column read as text included). Only a text column with missing cells
    is read again, alone, so the usual table costs nothing."""
    import pyarrow.csv as pacsv

    check_unique(table.column_names, name)  # (a name twice: one column by that name is ambiguous)
    again = [
        n
        for n in texts
        if n in table.column_names and pa.types.is_string(table.column(n).type) and table.column(n).null_count
    ]
    if not again:
        return table
    convert = pacsv.ConvertOptions(
        column_types={n: pa.string() for n in again},
        include_columns=again,
        null_values=[""],
        strings_can_be_null=True,
    )
    written = pacsv.read_csv(open_input(), read_options=read, parse_options=parse, convert_options=convert)
    for n in again:
        table = table.set_column(table.column_names.index(n), n, written.column(n))
    return table


def _offset_as_written(table: pa.Table, open_input, read, parse) -> pa.Table:
    """Dates written with an offset (2024-01-31T00:00+05:30), which pyarrow's CSV reader reads as
    UTC instants (it does so only where every cell has one), in the zone :func:`written_zone`
    finds in the text. Only such a column is read again, alone, as text."""
    import pyarrow.csv as pacsv

    zoned = [f.name for f in table.schema if pa.types.is_timestamp(f.type) and f.type.tz == "UTC"]
    if not zoned:
        return table
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(zoned, pa.string()), include_columns=zoned, strings_can_be_null=True
    )
    written = pacsv.read_csv(open_input(), read_options=read, parse_options=parse, convert_options=convert)
    return _in_written_zones(table, written, every_cell=True)


def _in_written_zones(
    table: pa.Table, written: pa.Table, *, every_cell: bool = False, where: str = "table"
) -> pa.Table:
    """``table`` with each timestamp column of ``written`` (its cells as text) in the zone the text
    gives (:func:`written_zone`), without one where no cell has an offset; the values are UTC
    instants either way. A column where some dates have an offset and some none is refused
    (``where``: the table's name)."""
    for n in written.column_names:
        try:
            zone = written_zone(written.column(n), every_cell=every_cell)
        except MixedOffsets as exc:
            raise InputError(exc.message(where, n, written.column(n).to_pylist())) from None
        i = table.column_names.index(n)
        kind = table.schema.field(i).type
        if zone != kind.tz:
            table = table.set_column(i, n, table.column(i).cast(pa.timestamp(kind.unit, zone)))
    return table


class MixedOffsets(ValueError):
    """Some dates of a column carry an offset other than UTC's and others carry none: the ones
    without name no instant. ``with_offset``, ``without``: a row of each (1-based)."""

    def __init__(self, with_offset: int, without: int):
        super().__init__(f"row {with_offset} has an offset, row {without} none")
        self.with_offset, self.without = with_offset, without

    def message(self, where: str, column: str, values) -> str:
        """The one-line error for the dates ``values`` (their text, indexed from 0) of ``column``."""
        a, b = self.with_offset, self.without
        return (
            f"{where}: column '{column}', row {a}: {values[a - 1]!r} carries a time zone offset, but not every "
            f"date does (row {b}: {values[b - 1]!r}); give every date its offset, or none, so that each "
            "names one instant"
        )


def written_zone(text: pa.Array | pa.ChunkedArray, *, every_cell: bool = False) -> str | None:
    """The zone a column of dates written as text names: its offset where every cell has the same
    one (+05:30: the outputs give the dates as the table did), UTC where every cell has one but
    they differ (summer and winter time) or are Z; None where none has one, or only Z is mixed
    with dates that have none (read as UTC, as they were). Raises :class:`MixedOffsets` where
    some have another offset and some none. ``every_cell``: the caller knows that every cell ends
    in an offset (pyarrow's CSV reader said so), and only the distinct endings are read."""
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(text)
    if every_cell:
        endings = pc.unique(pc.utf8_slice_codeunits(text, -6)).drop_null().to_pylist()  # +05:30 is 6 long
        offsets = {_offset(m["offset"]) if (m := _OFFSET.search(end)) else None for end in endings}
        return None if None in offsets else offsets.pop() if len(offsets) == 1 else "UTC"
    found = pc.extract_regex(text, _TIME_OFFSET)
    written_as = pc.unique(pc.struct_field(found, [0])).drop_null().to_pylist()  # +05:30, +0530, Z
    offsets = {_offset(cell) for cell in written_as} - {None}
    if not offsets:
        return None
    has = pc.is_valid(found).to_numpy(zero_copy_only=False)
    without = ~has & pc.is_valid(text).to_numpy(zero_copy_only=False)
    if without.any():
        if offsets == {"UTC"}:
            return None
        starts = np.flatnonzero(has)
        raise MixedOffsets(int(starts[0]) + 1, int(np.flatnonzero(without)[0]) + 1)
    return offsets.pop() if len(offsets) == 1 else "UTC"


_OFFSET = re.compile(r"(?P<offset>Z|(?P<sign>[+-])(?P<hours>\d\d):?(?P<minutes>\d\d)?)$")
# an offset after a time of day, which follows a T or a space (2024-01-31 is no date at offset
# -31); the time may be compact (20240131T000000+0545)
_TIME_OFFSET = r"[T ]\d\d:?\d\d(?::?\d\d(?:[.,]\d+)?)? ?" + _OFFSET.pattern


def _offset(text: str) -> str | None:
    """An offset as written (+0530, +05, -03:00) as Arrow names a fixed zone (+05:30), UTC for Z
    and +00:00; None for what is no offset."""
    m = _OFFSET.fullmatch(text)
    if m is None:
        return None
    if m["offset"] == "Z":
        return "UTC"
    hours, minutes = m["hours"], m["minutes"] or "00"
    if int(hours) > 23 or int(minutes) > 59:
        return None
    return "UTC" if (hours, minutes) == ("00", "00") else f"{m['sign']}{hours}:{minutes}"


def _ragged_row(data: bytes, delimiter: str) -> str:
    """Find the first row whose field count differs from the header (error path only)."""
    text = io.StringIO(data.decode("utf-8", "replace").lstrip("\ufeff"), newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        width = len(next(reader))
        for n, row in enumerate(reader, start=1):
            if row and len(row) != width:
                return (
                    f"row {n} has {len(row)} fields but the header has {width}; "
                    "check the delimiter and the quoting of values that contain commas"
                )
    except csv.Error:
        pass
    return "a row has a different number of fields than the header; check the delimiter and quoting"


def _first_non_utf8(column: pa.ChunkedArray) -> int:
    offset = 0
    for chunk in column.chunks:
        for i, value in enumerate(chunk.to_pylist()):
            if value is not None:
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return offset + i + 1
        offset += len(chunk)
    return 1


def _read_jsonl(data: bytes, name: str) -> pd.DataFrame:
    import pyarrow.json as pajson

    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise InputError(f"{name}: the input is empty (it has no rows)")
    if _JSON_ARRAY.match(data):
        source = "FILE" if name == "stdin" else name
        raise InputError(
            f"{name}: is one JSON array of rows ([{{...}}, ...]), not JSON Lines (one object per line); "
            f"convert it with jq -c '.[]' {source} > table.jsonl"
        )
    check_json_depth(data, name)
    try:
        table = pajson.read_json(pa.BufferReader(data))
        dated = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
        if dated:  # pyarrow's JSON reader drops the offset of 2024-01-31T00:00+05:30: read again as text
            text = pa.schema([pa.field(n, pa.string()) for n in dated])
            options = pajson.ParseOptions(explicit_schema=text, unexpected_field_behavior="ignore")
            written = pajson.read_json(pa.BufferReader(data), parse_options=options)
            table = _in_written_zones(table, written, where=name)
        return arrow_to_frame(table, name)
    except pa.ArrowInvalid as exc:
        if "changed from" not in str(exc):
            raise
    # A key whose values change type (a number, then a string): read it loosely so the schema check
    # can point at the row that is not a number.
    try:
        with warnings.catch_warnings():
            # pandas 3 deprecates convert_dates (dtype=False covers it there); pandas 2 needs it
            warnings.simplefilter("ignore", DeprecationWarning)
            frame = pd.read_json(io.BytesIO(data), lines=True, dtype=False, convert_dates=False)
    except ValueError as exc:
        raise InputError(f"{name}: {_explain(exc, 'jsonl')}") from None
    if not len(frame):
        raise InputError(f"{name}: the table has no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def parquet_files(folder: Path, name: str) -> list[str]:
    """The folder's Parquet files, sorted, skipping hidden and _-prefixed names (Spark's
    _SUCCESS, .crc files); one clear error when there are none."""
    try:
        files = sorted(
            str(f)
            for f in folder.rglob("*")
            if f.suffix.lower() in _PARQUET_SUFFIXES
            and f.is_file()
            and not any(part.startswith((".", "_")) for part in f.relative_to(folder).parts)
        )
    except OSError as exc:
        raise InputError(f"{name}: cannot list the folder ({exc.strerror or exc})") from None
    if not files:
        raise InputError(
            f"{name}: is a folder with no .parquet files in it; pass a file, or a folder of Parquet files"
        )
    return files


def _read_parquet_dir(folder: Path, name: str, select: Select | None = None) -> pd.DataFrame:
    import pyarrow.dataset as pads

    files = parquet_files(folder, name)
    try:
        check_partition_keys(folder, files, name)
        dataset = pads.dataset(
            files,
            format="parquet",
            partitioning=pads.HivePartitioning.discover(),
            partition_base_dir=str(folder),
        )
        table = dataset.to_table(columns=_keep(dataset.schema.names, select))
    except (pa.ArrowException, OSError, ValueError) as exc:
        text = " ".join(str(exc).split())
        text = text if len(text) <= 160 else text[:157] + "..."
        raise InputError(
            f"{name}: the Parquet files in this folder cannot be read as one table ({text}); "
            "check that none is damaged and that all have the same columns and types"
        ) from None
    return arrow_to_frame(table, name)


def check_partition_keys(folder: Path, files: list[str], name: str) -> None:
    """A hive folder key (``material=steel/``) that is also a column inside the files: pyarrow
    would silently put the folder's value over the file's. Refused, naming both."""
    import pyarrow.parquet as pq

    keys = {
        part.split("=", 1)[0]: part
        for f in files
        for part in Path(f).relative_to(folder).parts[:-1]
        if "=" in part
    }
    if not keys:
        return
    clash = [k for k in pq.read_schema(files[0]).names if k in keys]
    if clash:
        raise InputError(
            f"{name}: the folder name '{keys[clash[0]]}' sets column '{clash[0]}', which the files "
            f"also hold (e.g. {files[0]}); rename the folder key or drop the column from the files"
        )


def check_unique(names: list[str], name: str) -> None:
    """A column name given twice: refused, naming it (pyarrow and pandas would pick one, or fail)."""
    seen: set[str] = set()
    for col in names:
        if col in seen:
            if not col:
                raise InputError(f"{name}: two columns have no name in the header; name them, or delete them")
            raise InputError(f"{name}: column '{col}' appears twice in the header; rename one of them")
        seen.add(col)


def arrow_to_frame(table: pa.Table, name: str) -> pd.DataFrame:
    names = table.column_names
    check_unique(names, name)
    if table.num_rows == 0:
        cols = f" (columns: {', '.join(names[:20])})" if names else ""
        raise InputError(f"{name}: the table has no rows{cols}")
    # Decimals become floats (they are measurements); dictionary columns stay categorical.
    for i, field in enumerate(table.schema):
        if pa.types.is_decimal(field.type):
            table = table.set_column(i, field.name, table.column(i).cast(pa.float64()))
    # One pandas block per column (no consolidation copy), and each Arrow column freed as soon as
    # it is converted: the peak holds about one copy of the table, not two.
    return table.to_pandas(date_as_object=False, split_blocks=True, self_destruct=True)


# -- writing ---------------------------------------------------------------------------------------
def write_table(
    df: pd.DataFrame, path: str, *, fmt: str | None = None, time_units: dict[str, int] | None = None
) -> None:
    """Write ``df`` as CSV, Parquet or JSON Lines, chosen by ``fmt`` or the file's extension.

    ``-`` writes to stdout (CSV unless ``fmt`` says otherwise). Files are written atomically. A
    CSV writes each time column in the coarsest unit that holds its values (:func:`plain_times`),
    and at least in ``time_units``' (column -> index in TIME_UNITS).
    """
    fmt = check_format(fmt)
    if path == "-":
        _write_stream(df, fmt or "csv", time_units)
        return
    fmt = format_for(path, fmt)  # a name's own extension decides; --output-format the others
    if fmt is None:
        raise InputError(_unknown_table_format(path))
    gz = str(path).lower().endswith(".gz")
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(frame_to_arrow(df), tmp)
            return
        blob = _csv_bytes(df, time_units) if fmt == "csv" else jsonl_bytes(df)
        # mtime=0 and no embedded name: the same table always gives the same bytes.
        tmp.write_bytes(gzip.compress(blob, mtime=0) if gz else blob)


def _unknown_table_format(path) -> str:
    if str(path).lower().endswith((".xlsx", ".xls", ".xlsm")):
        return f"{path}: tables are not written as Excel; use .csv (Excel opens it), .parquet or .jsonl"
    if str(path).lower().removesuffix(".gz").endswith(".tsv"):
        return f"{path}: tables are written comma-separated, not tab-separated; use .csv, .parquet or .jsonl"
    return (
        f"{path}: cannot tell the output format from the name; "
        "use .csv, .csv.gz, .parquet or .jsonl, or pass the format"
    )


def _write_stream(df: pd.DataFrame, fmt: str, time_units: dict[str, int] | None = None) -> None:
    if sys.stdout is None:  # started with stdout closed (`>&-`)
        raise InputError("stdout: is closed; give -o FILE, or leave stdout open")
    if fmt == "parquet" and sys.stdout.isatty():
        raise InputError("stdout: refusing to write binary Parquet to a terminal; use -o NAME.parquet")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        sink = io.BytesIO()
        pq.write_table(frame_to_arrow(df), sink)
        blob = sink.getvalue()
    else:
        blob = _csv_bytes(df, time_units) if fmt == "csv" else jsonl_bytes(df)
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None and fmt == "parquet":
        raise InputError(
            "stdout: cannot write Parquet to a text stream; write to a file with -o NAME.parquet"
        )
    try:
        sys.stdout.flush()
        if buffer is not None:
            buffer.write(blob)
            buffer.flush()
        else:
            sys.stdout.write(blob.decode("utf-8"))
            sys.stdout.flush()
    except BrokenPipeError:
        raise  # the reader went away (`| head`): the command line ends quietly
    except OSError as exc:  # `> /dev/full`, a full disk behind a redirect
        drop_stdout()
        raise DurabilityError(f"stdout: could not write the output ({exc.strerror or exc})") from None


def drop_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush of what is left does not fail again."""
    try:
        sys.stdout.flush()
    except OSError:
        pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (a test runner's stream)
        pass


def frame_to_arrow(df: pd.DataFrame) -> pa.Table:
    """The frame as Arrow; categorical columns (validated tables keep specimen ids so) are written
    as their plain values, so that readers get text ids, not dictionary codes."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(f.type.value_type))
    return table


def _csv_bytes(df: pd.DataFrame, floor: dict[str, int] | None = None) -> bytes:
    table = csv_table(df, plain=False)
    units = {c: max(k, (floor or {}).get(c, 0)) for c, k in time_units(table).items()}
    table = cast_times(table, units)
    return csv_table_bytes(table, csv_style(table))


def csv_table(df: pd.DataFrame, *, plain: bool = True) -> pa.Table:
    """The frame as the Arrow table the CSV writer writes (plain ids, dates without zero times,
    durations as ISO 8601 text as in JSON Lines: Arrow would write a count of nanoseconds). With
    ``plain=False`` the times keep their nanoseconds (a writer of pieces picks their units:
    :func:`time_units`, :func:`cast_times`)."""
    spans = [c for c in df.columns if pd.api.types.is_timedelta64_dtype(df[c].dtype)]
    if spans:
        df = df.copy()
        for c in spans:
            df[c] = df[c].map(lambda v: None if pd.isna(v) else v.isoformat()).astype(object)
    table = frame_to_arrow(df)
    return plain_times(table) if plain else table


def csv_style(table: pa.Table) -> str:
    """pyarrow's quoting style for ``table``: it either quotes every text cell or none, so quotes
    are left out when no name or cell needs them (the file then reads like one written by hand or
    by pandas)."""
    special = any(needs_quotes(name) for name in table.column_names) or any(
        needs_quotes(table.column(i))
        for i, f in enumerate(table.schema)
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    )
    return "needed" if special else "none"


def csv_table_bytes(table: pa.Table, style: str, *, header: bool = True) -> bytes:
    """``table`` as CSV text with quoting ``style`` ("needed" or "none"), with or without the header;
    dates with a time zone as :func:`offset_text` writes them."""
    import pyarrow.csv as pacsv

    table = offset_text(table)

    try:
        options = pacsv.WriteOptions(
            batch_size=65536, include_header=header, quoting_style=style, quoting_header=style
        )
    except TypeError:  # pyarrow < 17 always quotes the header
        options = pacsv.WriteOptions(batch_size=65536, include_header=header, quoting_style=style)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=options)
    return sink.getvalue()


# The units a written time column can take, coarsest first: dates, whole seconds, milli- and
# microseconds; an index past the end keeps the column's own (nanoseconds).
TIME_UNITS = ("day", "second", "millisecond", "microsecond")
_TIME_TYPES = (pa.date32(), pa.timestamp("s"), pa.timestamp("ms"), pa.timestamp("us"))


def time_units(table: pa.Table) -> dict[str, int]:
    """For each time column of ``table``, the index in TIME_UNITS of the coarsest unit that holds
    every value exactly (len(TIME_UNITS): none does). A column with a time zone takes whole seconds
    at least: its offset goes with a time of day (2024-01-31 00:00:00+01:00, never 2024-01-31)."""
    found = {}
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            k = int(row_time_units(table.column(i)).max(initial=0))
            found[f.name] = max(k, 1) if f.type.tz else k
    return found


_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_UNIT_SECONDS = (86_400, 1, 1e-3, 1e-6)  # TIME_UNITS' lengths


def row_time_units(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """[rows] for each value of a timestamp column, the index in TIME_UNITS of the coarsest unit
    that holds it exactly (len(TIME_UNITS): none does; a missing value: 0). With a time zone, of
    its UTC instants."""
    import pyarrow.compute as pc

    ticks = pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)  # the column's own unit
    out = np.full(len(ticks), len(TIME_UNITS), dtype=np.int8)
    for k in reversed(range(len(TIME_UNITS))):  # finest first, so the coarsest that holds wins
        step = _PER_SECOND[col.type.unit] * _UNIT_SECONDS[k]
        out[(ticks % int(step) == 0) if step >= 1 else slice(None)] = k
    return out


def cast_times(table: pa.Table, units: dict[str, int]) -> pa.Table:
    """``table`` with each time column named in ``units`` cast to that unit (time_units' index);
    a name that is no time column of ``table`` is passed over."""
    for i, f in enumerate(table.schema):
        k = units.get(f.name, len(TIME_UNITS))
        if k < len(TIME_UNITS) and pa.types.is_timestamp(f.type):
            kind = (
                _TIME_TYPES[k] if f.type.tz is None else pa.timestamp(_TIME_TYPES[max(k, 1)].unit, f.type.tz)
            )
            table = table.set_column(i, f.name, table.column(i).cast(kind))
    return table


def offset_text(table: pa.Table) -> pa.Table:
    """``table`` with each column of dates that has a time zone as ISO 8601 text with the offset in
    hours and minutes, in the column's unit (2024-01-31 00:00:00+01:00; 2024-07-31 12:00:00.250+02:00
    for milliseconds), which pandas, Excel's import and this tool read back as the same instant.
    pyarrow's CSV writer would write +0100, or Z for UTC."""
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if not (pa.types.is_timestamp(f.type) and f.type.tz):
            continue
        column = table.column(i)
        try:
            text = pc.strftime(column, format="%Y-%m-%d %H:%M:%S%Ez")
        except pa.ArrowException:  # pyarrow found no time zone database for a named zone
            spec = {"s": "seconds", "ms": "milliseconds"}.get(f.type.unit, "microseconds")
            values = column.to_pandas()
            text = pa.array(
                [None if pd.isna(v) else v.isoformat(sep=" ", timespec=spec) for v in values], pa.string()
            )
        table = table.set_column(i, f.name, text)
    return table


def in_zone(df: pd.DataFrame | None, zone) -> pd.DataFrame | None:
    """``df`` with its dates, which a run holds as UTC instants without a zone, in ``zone`` (the
    zone the input's dates had: a tzinfo); ``df`` itself where ``zone`` is None or it has no dates."""
    if df is None or zone is None:
        return df
    naive = [c for c in df.columns if pd.api.types.is_datetime64_dtype(df[c].dtype)]  # (not zoned already)
    if not naive:
        return df
    out = df.copy(deep=False)
    for c in naive:
        out[c] = df[c].dt.tz_localize("UTC").dt.tz_convert(zone)
    return out


def plain_times(table: pa.Table) -> pa.Table:
    """Write dates as 2024-01-31, whole seconds as 2024-01-31 12:00:00 and whole milli- or
    microseconds with 3 or 6 decimals, not with trailing zeros, when no value in the column needs
    more."""
    return cast_times(table, time_units(table))


def needs_quotes(values) -> bool:
    import pyarrow.compute as pc

    if isinstance(values, str):
        return bool(re.search(r'[,"\r\n]', values)) or values != values.strip()
    found = pc.any(pc.match_substring_regex(values, r'[,"\r\n]|^\s|\s$')).as_py()
    return bool(found)


def jsonl_bytes(df: pd.DataFrame) -> bytes:
    """One JSON object per row. Numbers are written with Python's float repr, the shortest text
    that reads back to the same float (pandas' to_json rounds to a number of decimal places, so
    1.234567e-9 would come back as 1.2e-9); NaN, infinities and empty cells become null."""
    if not len(df):
        return b""
    clean = df.copy()
    for c in clean.columns:
        if pd.api.types.is_float_dtype(clean[c].dtype):
            clean[c] = clean[c].replace([float("inf"), float("-inf")], float("nan"))  # JSON has no inf
    values = clean.astype(object).where(clean.notna(), None)
    names = [str(c) for c in df.columns]
    lines = [
        json.dumps(
            dict(zip(names, row, strict=True)),
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
            default=_json_value,
        )
        for row in values.itertuples(index=False, name=None)
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _json_value(value):
    """Dates and durations as ISO 8601 text, numpy scalars as numbers."""
    if isinstance(value, pd.Timestamp | pd.Timedelta):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# -- safe outputs ----------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path`` in one step.

    If the block raises, the temporary file is removed and any existing ``path`` is left untouched.
    The temporary name ends with the real file name, so writers that look at the extension
    (matplotlib, gzip) see the right one.

    Atomic replace is for regular files only. A symbolic link is followed: the file it points to is
    replaced (the link stays a link). A device, a FIFO or ``/dev/stdout`` is written in place, as a
    shell redirect would: renaming a regular file onto it would replace the device itself.
    """
    special = special_file(path)
    if special:
        with _in_place(path):
            yield Path(path)
        return
    target = Path(os.path.realpath(path))  # through any links: replace the file, keep the link
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=f"-{target.name}", dir=target.parent or ".")
    except OSError as exc:
        raise _write_error(path, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode a normal write would have.
        os.chmod(tmp, _mode_for(target))
        held = _HELD.get()
        if held is not None:  # inside together(): moved with the command's other outputs
            held.append((tmp, target, path))
            return
        os.replace(tmp, target)
    except OSError as exc:  # disk full, quota, the folder removed meanwhile: one line, not a traceback
        tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# The files atomic_path has written inside together(), waiting to be moved onto their names:
# (temporary file, target, the name as given). None outside together(); one list per thread.
_HELD: contextvars.ContextVar[list[tuple[Path, Path, str | Path]] | None] = contextvars.ContextVar(
    "durability_held_outputs", default=None
)


@contextlib.contextmanager
def together() -> Iterator[None]:
    """A command's outputs all new or all as they were: the files ``atomic_path`` writes inside
    the block are moved onto their names one right after the other when it ends without an error
    (an interrupt meanwhile waits until they are), and none is when it raises. Without it a forecast
    interrupted while it wrote its Monte Carlo paths left a new table and end-of-life file beside
    the old paths. A block inside another one moves nothing: the outer one does."""
    if _HELD.get() is not None:
        yield
        return
    held: list[tuple[Path, Path, str | Path]] = []
    token = _HELD.set(held)
    try:
        yield
        with _interrupt_deferred():
            _HELD.reset(token)
            token = None
            for i, (tmp, target, path) in enumerate(held):
                try:
                    os.replace(tmp, target)
                except OSError as exc:  # the ones already moved stay: the rest are removed
                    for left, _, _ in held[i:]:
                        left.unlink(missing_ok=True)
                    raise _write_error(path, exc) from None
    except BaseException:
        if token is not None:  # the block raised: nothing of it is moved
            for tmp, _, _ in held:
                tmp.unlink(missing_ok=True)
        raise
    finally:
        if token is not None:
            _HELD.reset(token)


def all_or_none(fn: Callable) -> Callable:
    """``fn`` run inside :func:`together`."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        with together():
            return fn(*args, **kwargs)

    return run


@contextlib.contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Ctrl-C (and SIGTERM or SIGHUP, where the command takes them as errors.Terminated) during the block is
    taken when it ends (in the main thread, where Python's own handler, or the command's, has
    it; elsewhere, or where it is ignored or handled otherwise, as before)."""
    import signal
    import threading

    from durability_cli.errors import HungUp, Terminated, raise_hung_up, raise_terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raising = {signal.SIGINT: (signal.default_int_handler, KeyboardInterrupt)}
    raising[signal.SIGTERM] = (raise_terminated, Terminated)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        raising[signal.SIGHUP] = (raise_hung_up, HungUp)
    taken = [sig for sig, (handler, _) in raising.items() if signal.getsignal(sig) is handler]
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: caught.append(number)) for sig in taken}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise raising[caught[0]][1]


_STDOUT_NAMES = ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1")


def stdout_alias(path: str | None) -> str | None:
    """``-`` for a name of this process's stdout (``/dev/stdout``, ``/dev/fd/1``,
    ``/proc/self/fd/1``), so that it counts as stdout where one table at most may go and is
    written as stdout is (CSV unless told otherwise, whatever the file behind it is called);
    any other ``path`` as it is: ``/dev/null`` or ``/dev/stderr`` stay themselves even where
    stdout is the same file."""
    if not path or os.path.normpath(str(path)) not in _STDOUT_NAMES:
        return path
    try:
        os.fstat(1)
    except OSError:  # stdout closed: the writer says so
        return path
    return "-"


def special_file(path: str | Path) -> bool:
    """True when ``path`` exists (through any links) and is not a regular file: a device, a FIFO,
    a socket, ``/dev/stdout``. Folders are refused elsewhere."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


@contextlib.contextmanager
def _in_place(path: str | Path) -> Iterator[None]:
    """Write errors on a special file (``/dev/full``) become one line; nothing is removed. A pipe
    whose reader went away (``-o /dev/stdout | head``) ends the command quietly, as stdout does."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise DurabilityError(f"{path}: could not write the output ({exc.strerror or exc})") from None


def _write_error(path, exc: OSError) -> DurabilityError:
    return DurabilityError(
        f"{path}: could not write the file ({exc.strerror or exc}); any previous file is unchanged"
    )


def _mode_for(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


PICTURE_FORMATS = {".png": "png", ".svg": "svg"}


def check_outputs(
    outputs: list[str | None],
    inputs: list[str | None],
    *,
    tables: tuple[str | None, ...] = (),
    pictures: tuple[str | None, ...] = (),
    models: dict[str, str | None] | None = None,
    fmt: str | None = None,
) -> None:
    """Refuse, before any work, outputs that would overwrite an input, or cannot be written.

    ``tables`` (written by ``write_table``; ``fmt`` is a --format given for the first of them) and
    ``pictures`` must have a name whose format is known, so that a long run never ends on "cannot
    tell the output format". ``None`` and ``-`` (stdout/stdin) are skipped, but a picture on
    stdout is refused, and so is a model file (``models``: flag -> path) there.
    """
    for flag, out in (models or {}).items():
        if out == "-":
            raise InputError(f"{flag} -: a model file cannot go to stdout; give a file name")
    ins = [(i, Path(os.path.realpath(i))) for i in inputs if i not in (None, "-")]
    seen: dict[Path, str] = {}
    for out in outputs:
        if out in (None, "-"):
            continue
        if not str(out).strip():
            raise InputError(f"{out!r}: an empty output name; give a file name")
        p = Path(out)
        resolved = Path(os.path.realpath(p))  # never raises, even on a link loop
        _check_link_loop(out)
        for given, inp in ins:
            if resolved == inp or _same_file(p, Path(given)):
                raise InputError(
                    f"{out}: the output would overwrite the input {given}; write to another file"
                )
        if resolved in seen and str(resolved) != os.devnull:  # /dev/null may take them all
            raise InputError(
                f"{out}: given as two different outputs ({seen[resolved]} and {out}); use two file names"
            )
        seen[resolved] = out
        if p.is_dir():
            raise InputError(f"{out}: is a folder; give a file name for the output")
        if special_file(p):  # a device or FIFO is written in place: it must be writable itself
            if not os.access(p, os.W_OK):
                raise InputError(f"{out}: cannot write to it; check its permissions or write elsewhere")
            continue
        folder = resolved.parent
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{out}: {p.parent} is a file, not a folder; give another output name")
        if not folder.is_dir():
            raise InputError(
                f"{out}: the folder {p.parent} does not exist; create it first (mkdir -p {p.parent})"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(
                f"{out}: cannot write to the folder {folder}; check its permissions or write elsewhere"
            )
    for out in tables:
        if out in (None, "-"):
            continue
        excel = str(out).lower().endswith((".xlsx", ".xls", ".xlsm"))
        if excel or format_for(str(out), fmt and check_format(fmt)) is None:
            raise InputError(_unknown_table_format(out))
    for out in pictures:
        if out == "-":
            raise InputError("-: a picture cannot go to stdout; give a file name ending .png or .svg")
        if out is not None and Path(out).suffix.lower() not in PICTURE_FORMATS:
            raise InputError(f"{out}: unsupported picture format; use .png or .svg")


def _check_link_loop(path: str) -> None:
    """A symbolic link that leads back to itself: one line, exit 2 (not Python's RuntimeError)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"{path}: is a symbolic link loop (too many levels of links); point the link at a real file"
            ) from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False
