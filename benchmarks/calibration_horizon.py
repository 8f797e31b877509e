"""The demo's coating model before and after `durability calibrate`, coverage by step (issue 14).

Run after `make demo` (it reads out/coating.safetensors and out/coating_test.csv, the 48 unseen
specimens of the demo). Calibrates on 48 more specimens of the same generator (seed 2, ids
prefixed "h") with --bins 1, 2 and 4, and prints the 80 % band's coverage of the demo's test
specimens by fifth of the steps after the 40-row warm-up, overall, and the end-of-life 80 %
interval's coverage (threshold 0.6).

    python benchmarks/calibration_horizon.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

import durability_cli as dur
from durability_cli.synthetic import make_coating

OUT = Path(__file__).resolve().parents[1] / "out"


def show(label: str, model) -> None:
    ev = model.evaluate(str(OUT / "coating_test.csv"), context=40, baselines=False, threshold=0.6)
    bt = ev.backtest
    inside = (bt.y_true >= bt["q0.1"]) & (bt.y_true <= bt["q0.9"])
    by_fifth = inside.groupby(pd.qcut(bt.step, 5), observed=True).mean().round(3).tolist()
    eol = ev.report["models"]["model"]["eol"]["interval_coverage"]
    print(f"{label}: by fifth of the steps {by_fifth}, overall {inside.mean():.3f}, end of life {eol:.3f}")


def main() -> None:
    model = dur.load(OUT / "coating.safetensors")
    held, _ = make_coating(seed=2)
    held["specimen_id"] = "h" + held["specimen_id"].astype(str)
    show("as trained", model)
    for bins in (1, 2, 4):
        calibrated = model.calibrate(held, context=40, bins=bins, threshold=0.6)
        block = calibrated.summary["calibration"]
        factors = ", ".join(
            f"{f:.3f} at step {c:g}" for f, c in zip(block["factors"], block["centres"], strict=True)
        )
        print(f"--bins {bins}: {factors}")
        show(f"--bins {bins}", calibrated)


if __name__ == "__main__":
    main()
