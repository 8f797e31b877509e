"""Regenerate the sample datasets in sample_data/ from the physics generators (seed 0).

    python scripts/make_sample_data.py            # writes into sample_data/
    python scripts/make_sample_data.py --out DIR  # writes somewhere else

CSV files keep 6 significant digits (time keeps all its digits) so that they stay small;
Parquet files keep full precision. tests/test_synthetic.py checks that the committed files are
exactly what this script writes now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from durability_cli.synthetic import make_ball, make_coating

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def write_csv(table: pd.DataFrame, path: Path) -> None:
    """CSV with 6 significant digits on measured floats and an empty field for NaN."""
    text = table.copy()
    for name in table.columns:
        if pd.api.types.is_float_dtype(table[name]):
            fmt = "{:.10g}" if name == "time" else "{:.6g}"
            text[name] = ["" if np.isnan(v) else fmt.format(v) for v in table[name]]
    text.to_csv(path, index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    coating, coating_clean = make_coating(seed=0)
    ball, _ = make_ball(seed=0)
    write_csv(coating, args.out / "coating.csv")
    coating.to_parquet(args.out / "coating.parquet", index=False)
    write_csv(coating_clean, args.out / "coating_clean.csv")
    write_csv(ball, args.out / "ball.csv")
    ball.to_parquet(args.out / "ball.parquet", index=False)
    for name, table in (("coating", coating), ("ball", ball)):
        specimens = table["specimen_id"].nunique()
        print(f"{name}: {specimens} specimens, {len(table)} rows -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
