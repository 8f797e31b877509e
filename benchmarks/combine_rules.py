"""Weight rules for ``--combine mixed_effects``, scored without training anything.

``mixed_blend.py`` scores, per test split, the model's mean path (weight w = 1), the mixed-effects
path's (w = 0) and their averages at w = 0.25, 0.5 and 0.75. The test MSE of an average is a
quadratic in w (w^2 m^2 + (1 - w)^2 b^2 + 2 w (1 - w) c, with c the mean product of the two
errors), so those five RMSEs fix it exactly at every w: any rule that picks w from what training
knows (the members' validation RMSEs of the model and of the path, the path's fold scores on the
training specimens) can be scored on every stored split from results/mixed-blend.jsonl alone.

    python benchmarks/combine_rules.py [--sets alloy_a,laser,...]

Prints each rule's test RMSE over the model's, per split and summed up (geometric mean, worst,
splits better): the last row per (set, split) of the file is used. The rules:

- ``model``: the model alone (1.0 by definition);
- ``inverse``: ``--combine``'s weight, b^2 / (m^2 + b^2), from the mean validation RMSEs;
- ``inverse_folds``: the same with the path's fold score of its chosen family (``cv_rmse``) for b:
  the validation specimens chose that family, so its validation score flatters it;
- ``inverse_worse``: the larger of the two for b;
- ``inverse_squared``: b^4 / (m^4 + b^4), which leans harder on the better one;
- ``select``: whichever validates better, alone;
- ``equal``: w = 0.5;
- ``oracle``: the best w on the test specimens (no rule can know it: the room left).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "mixed-blend.jsonl"
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def mse_curve(rmse: dict):
    """The test MSE of the average as a function of the model's weight w (a quadratic through the
    five stored points, least squares: they lie on one up to rounding)."""
    keys = ["mixed_effects", "w0.25", "w0.5", "w0.75", "model"]
    coef = np.polyfit(WEIGHTS, np.array([rmse[k] for k in keys]) ** 2, 2)
    return lambda w: max(float(np.polyval(coef, w)), 0.0)


def _inverse(power: int):
    return lambda m, b, f: b**power / (m**power + b**power)


RULES = {
    "model": lambda m, b, f: 1.0,
    "inverse": _inverse(2),
    "inverse_folds": lambda m, b, f: _inverse(2)(m, f, f),
    "inverse_worse": lambda m, b, f: _inverse(2)(m, max(b, f), f),
    "inverse_squared": _inverse(4),
    "select": lambda m, b, f: 1.0 if m <= b else 0.0,
    "equal": lambda m, b, f: 0.5,
}


def scores(row: dict) -> dict[str, float]:
    """Each rule's test RMSE over the model's on one split (``oracle`` included)."""
    curve = mse_curve(row["rmse"])
    m = float(np.mean(row["model_val_rmse"]))
    b = float(np.mean([v["mixed_effects"] for v in row["val_baseline_rmse"]]))
    label = row.get("family") or str(row["degree"])
    f = float(row["cv_rmse"][label])
    base = math.sqrt(curve(1.0))
    out = {name: math.sqrt(curve(rule(m, b, f))) / base for name, rule in RULES.items()}
    out["oracle"] = min(math.sqrt(curve(w)) for w in np.linspace(0, 1, 101)) / base
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(RESULTS), help="mixed_blend.py's JSON lines")
    ap.add_argument("--sets", default="", help="comma-separated sets (default: every set in the file)")
    args = ap.parse_args(argv)
    last: dict[tuple, dict] = {}
    for line in Path(args.results).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            last[(row["set"], row["split"])] = row
    wanted = {s for s in args.sets.split(",") if s}
    rows = [r for key, r in sorted(last.items()) if not wanted or key[0] in wanted]
    if not rows:
        print("no splits to score", file=sys.stderr)
        return 2
    names = [*RULES, "oracle"]
    print("| set | split | commit | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    table = []
    for row in rows:
        s = scores(row)
        table.append(s)
        cells = " | ".join(f"{s[n]:.3f}" for n in names)
        print(f"| {row['set']} | {row['split']} | {row['code']['commit']} | {cells} |")
    print()
    print("| rule | geometric mean | worst | splits better (< 0.999) |")
    print("|---|---|---|---|")
    for n in names:
        v = np.array([s[n] for s in table])
        print(f"| {n} | {math.exp(np.log(v).mean()):.4f} | {v.max():.3f} | {(v < 0.999).sum()} of {len(v)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
