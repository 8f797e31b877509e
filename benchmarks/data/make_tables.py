"""Rebuild the benchmark CSVs of the measured datasets from their fetched texts (see README.md).

    python benchmarks/data/make_tables.py                 # rewrites every table beside this file
    python benchmarks/data/make_tables.py alloy_a         # one of them
    python benchmarks/data/make_tables.py --check         # exit 1 if a table differs from a rebuild

Each fetched text is kept gzip-compressed and unchanged; its sha256 (of the unzipped text) is
checked before anything is built. The conversion renames the source's columns to the long format
of the benchmarks (specimen_id, time, conditions, the durability column), orders the rows by
specimen and time, and changes no value: every measured row is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import io
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Source:
    raw: str  # the fetched text, gzip-compressed, beside this script
    sha256: str  # of the unzipped text
    sep: str
    columns: dict[str, str]  # the source's column -> the benchmark table's, in the table's order
    csv: str  # the table written beside this script
    ints: tuple[str, ...] = ()  # table columns the source writes as decimals of whole numbers (ids)


SOURCES = {
    "device_b": Source(
        raw="DeviceB.txt.gz",
        sha256="c896af26b03564e2c74517a7c4e499ce0e524e4667e66a99c3f8f4788df7957c",
        sep="\t",
        columns={
            "Device": "specimen_id",
            "Hours": "time",
            "celsius": "temperature",
            "Powerdrop": "power_drop",
        },
        csv="device_b.csv",
    ),
    "alloy_a": Source(
        raw="AlloyA.txt.gz",
        sha256="38ad2b55a51f27f81c6133257e67bdc0771e96cce11f195ee229329e48f577b7",
        sep=" ",
        columns={"Specimen": "specimen_id", "Megacycles": "time", "Inches": "crack_length"},
        csv="alloy_a.csv",
    ),
    "laser": Source(
        raw="GaAsLaser.txt.gz",
        sha256="0c44fcc952690bb61766e65cf030cdb193315cc1d5fc1f87634c26bb2fb1337d",
        sep="\t",
        columns={"Unit": "specimen_id", "Hours": "time", "Increase": "current_increase"},
        csv="laser.csv",
        ints=("specimen_id",),
    ),
    "luminosity": Source(
        raw="Luminosity.txt.gz",
        sha256="f5614177a372321ed78aae398be504850cd654cf0dbcf3811638f77e21475f1c",
        sep="\t",
        columns={
            "Unit": "specimen_id",
            "Hours": "time",
            "celsius": "temperature",
            "Luminosity": "luminosity",
        },
        csv="luminosity.csv",
    ),
}


def build(name: str) -> str:
    """The CSV text of one benchmark table, from its fetched file."""
    src = SOURCES[name]
    raw = gzip.decompress((HERE / src.raw).read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != src.sha256:
        raise SystemExit(f"{src.raw}: sha256 {digest}, expected {src.sha256}; the fetched text changed")
    table = pd.read_csv(io.BytesIO(raw), sep=src.sep).rename(columns=src.columns)[list(src.columns.values())]
    whole = table[list(src.ints)]
    if not (whole == whole.round()).all().all():
        raise SystemExit(f"{src.raw}: {', '.join(src.ints)} not whole numbers")
    table = table.astype({c: "int64" for c in src.ints}).sort_values(["specimen_id", "time"], kind="stable")
    return table.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", help=f"tables to build (default: all of {', '.join(SOURCES)})")
    parser.add_argument(
        "--check", action="store_true", help="compare with the tables instead of writing them"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(SOURCES))
    if unknown:
        parser.error(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
    status = 0
    for name in args.names or list(SOURCES):
        text, csv = build(name), HERE / SOURCES[name].csv
        if args.check:
            same = csv.exists() and csv.read_text() == text
            print(f"{csv.name}: {'matches' if same else 'differs from'} a rebuild from {SOURCES[name].raw}")
            status = status or (0 if same else 1)
        else:
            csv.write_text(text)
            print(f"wrote {csv.name}: {text.count(chr(10)) - 1} rows")
    return status


if __name__ == "__main__":
    sys.exit(main())
