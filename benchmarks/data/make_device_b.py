"""Rebuild benchmarks/data/device_b.csv from the fetched text, DeviceB.txt.gz (see README.md).

    python benchmarks/data/make_device_b.py          # rewrites device_b.csv beside this file
    python benchmarks/data/make_device_b.py --check  # exit 1 if device_b.csv differs from a rebuild

The fetched file is tab-separated with columns Powerdrop (dB), Device, Hours, celsius, one row per
device and inspection. The conversion renames them to the long format of the benchmarks
(specimen_id, time, temperature, power_drop), orders the rows by device and time, and changes no
value: every measured row is kept.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RAW = HERE / "DeviceB.txt.gz"
CSV = HERE / "device_b.csv"
RAW_SHA256 = "c896af26b03564e2c74517a7c4e499ce0e524e4667e66a99c3f8f4788df7957c"  # of the unzipped text
COLUMNS = {"Device": "specimen_id", "Hours": "time", "celsius": "temperature", "Powerdrop": "power_drop"}


def build() -> str:
    """The CSV text of the benchmark table, from the fetched file."""
    raw = gzip.decompress(RAW.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != RAW_SHA256:
        raise SystemExit(f"{RAW.name}: sha256 {digest}, expected {RAW_SHA256}; the fetched text changed")
    table = pd.read_csv(io.BytesIO(raw), sep="\t").rename(columns=COLUMNS)[list(COLUMNS.values())]
    table = table.sort_values(["specimen_id", "time"], kind="stable")
    return table.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="compare with device_b.csv instead of writing it"
    )
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        same = CSV.exists() and CSV.read_text() == text
        print(f"{CSV.name}: {'matches' if same else 'differs from'} a rebuild from {RAW.name}")
        return 0 if same else 1
    CSV.write_text(text)
    print(f"wrote {CSV.name}: {text.count(chr(10)) - 1} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
