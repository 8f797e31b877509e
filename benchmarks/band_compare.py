"""The bands of two sets of accuracy runs side by side (issue 14): each run of ``--after`` beside
the run of ``--before`` of the same set, seed and trend-line candidate. Made to judge a change
that moves the band and not the mean (``refit_scale``): the RMSE of both must agree, and the
table says where it does not (the mean path's RMSE, ``rmse_deterministic``; ``rmse`` is that of the
paths' average, which moves with their spread).

    python benchmarks/band_compare.py \\
        --before results/accuracy-fresh-tfalse.json results/accuracy-fresh-ttrue.json \\
        --after results/accuracy-refit-A.json results/accuracy-refit-B.json

Per run, on the fresh specimens (``scores_fresh``) where the runs have them, else on the test
split: the 80 % band's coverage and width, the pinball loss at p10 and p90, the end-of-life 80 %
interval's coverage. Writes the rows as JSON to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FIELDS = ("coverage80", "interval80_width", "pinball10", "pinball90", "eol_coverage80")


def runs(paths: list[str]) -> dict[tuple, dict]:
    """(set, seed, trend line) -> the run's scores on its fresh specimens (else its test split)."""
    found = {}
    for path in paths:
        data = json.loads(Path(path).read_text())
        for name, entry in data["datasets"].items():
            for run in entry.get("model", {}).get("runs", []):
                scores = run.get("scores_fresh") or run["scores"]
                pinball = scores.get("pinball") or {}
                found[name, run["seed"], bool(run.get("trend_line"))] = {
                    # the mean path's RMSE: a change to the band alone leaves it as it was
                    "rmse": scores.get("rmse_deterministic", scores["rmse"]),
                    "coverage80": scores.get("coverage80"),
                    "interval80_width": scores.get("interval80_width"),
                    "pinball10": pinball.get("0.1"),
                    "pinball90": pinball.get("0.9"),
                    "eol_coverage80": scores.get("eol_coverage80"),
                    "fresh": "scores_fresh" in run,
                }
    return found


def compare(before: dict, after: dict) -> list[dict]:
    rows = []
    for key, a in sorted(after.items()):
        b = before.get(key)
        if b is None:
            continue
        row = {"set": key[0], "seed": key[1], "trend_line": key[2], "fresh": a["fresh"] and b["fresh"]}
        row["same_mean"] = math.isclose(a["rmse"], b["rmse"], rel_tol=1e-6)
        for f in FIELDS:
            row[f] = [b[f], a[f]]
        rows.append(row)
    return rows


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}" if abs(x) >= 0.01 else f"{x:.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", nargs="+", required=True, help="accuracy results files (the reference)")
    p.add_argument("--after", nargs="+", required=True, help="accuracy results files (the change)")
    p.add_argument("--out", help="write the rows here as JSON")
    a = p.parse_args()
    rows = compare(runs(a.before), runs(a.after))
    if not rows:
        sys.exit(
            "band_compare: no run of --after has a run of --before with the same set, seed and trend line"
        )
    print("| set | seed | line | same mean | " + " | ".join(f"{f} before -> after" for f in FIELDS) + " |")
    print("|---" * (4 + len(FIELDS)) + "|")
    for r in rows:
        cells = [f"{_fmt(r[f][0])} -> {_fmt(r[f][1])}" for f in FIELDS]
        line = "yes" if r["trend_line"] else "no"
        print(
            f"| {r['set']} | {r['seed']} | {line} | {'yes' if r['same_mean'] else 'NO'} | "
            + " | ".join(cells)
            + " |"
        )
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
