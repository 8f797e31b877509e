"""The forecast's point: the paths' average against the mean path, on the saved accuracy runs (issue 14).

    python benchmarks/mean_path.py

Until session 48 the forecast's mean column averaged its Monte Carlo paths; since then it is the
mean path, the run that feeds back its own mean (as ``--samples 0`` and training score it). Every
accuracy run scored both on the same models and specimens: ``rmse`` (the column as it was) and
``rmse_deterministic``. This reads the runs benchmarks/RESULTS.md section 1 renders and prints,
per set, both means over the seeds, their seed spread (sd / mean), the ratio to Darts' RMSE, and
on how many seed x split runs the mean path scored lower. Reads only; writes nothing.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
# the runs section 1 is assembled from (benchmarks/RESULTS.md, "Command:"): the decided sets' own
# runs, and refit-B for the ball
RUNS = {name: f"accuracy-sides-{name}-s*.json" for name in (
    "coating", "battery", "crack", "ageing", "device_b", "alloy_a", "laser", "luminosity"
)} | {"ball": "accuracy-refit-B.json"}  # fmt: skip
DARTS = {  # section 1's Darts RMSE per set (3 seeds), the denominator of its "x Darts"
    "coating": 0.05434,
    "ball": 1.851,
    "battery": 0.02738,
    "crack": 0.1484,
    "ageing": 0.05068,
    "alloy_a": 0.05339,
    "laser": 0.7355,
    "luminosity": 0.02944,
}


def pairs(name: str) -> list[tuple[str, float, float]]:
    """(split, paths' average, mean path) of every seed's run of ``name``: the test split and, where
    the run scored them, the 96 fresh specimens."""
    out = []
    for path in sorted(RESULTS.glob(RUNS[name])):
        for run in json.loads(path.read_text())["datasets"][name]["model"]["runs"]:
            for split, key in (("test", "scores"), ("fresh", "scores_fresh")):
                scores = run.get(key) or {}
                if "rmse_deterministic" in scores:
                    out.append((split, scores["rmse"], scores["rmse_deterministic"]))
    return out


def spread(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


def main() -> None:
    better = {"test": [0, 0], "fresh": [0, 0]}
    print("set          paths' average (spread)   mean path (spread)   change    x Darts")
    for name in RUNS:
        rows = pairs(name)
        for split, old, new in rows:
            better[split][0] += new < old
            better[split][1] += 1
        old = [o for s, o, _ in rows if s == "test"]
        new = [n for s, _, n in rows if s == "test"]
        a, b = statistics.mean(old), statistics.mean(new)
        darts = f"{a / DARTS[name]:.3f} -> {b / DARTS[name]:.3f}" if name in DARTS else "-"
        print(
            f"{name:12s} {a:.4g} ({spread(old):.1%}){'':10s}{b:.4g} ({spread(new):.1%}){'':6s}"
            f"{b / a - 1:+.1%}    {darts}"
        )
    for split, (won, n) in better.items():
        print(f"the mean path scored lower on {won} of {n} {split} runs")


if __name__ == "__main__":
    main()
