"""The default's two candidates blended instead of one chosen: measured before building it.

`--trend-line auto` (the default where validation warms up on fewer than 50 rows) trains a model
without the warm-up's line and one with it, keeps the one most members validate better, and throws
the other away. Both are trained either way, so an average of the two forecasts costs nothing more
in training. This trains both candidates as the suite does (splits.py: the suite's options, the
automatic ensemble, training seed ``--seed``) on several test splits of a set, and scores on the
test specimens (each from its own warm-up, against the measured values) the mean path
(deterministic, no Monte Carlo) of:

- ``without``, ``with``: each candidate alone;
- ``auto``: the one the default keeps (line_choice.line_wins on the members' validation RMSE);
- ``blend``: the two mean paths averaged, row by row.

    python benchmarks/blend_lines.py --set laser --splits 0,1,2,3,4

Appends one JSON line per split to results/blend-lines.jsonl (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import accuracy  # noqa: E402
from benchmarks.common import code_version, one_thread  # noqa: E402
from benchmarks.splits import SETS, prepared, rmse  # noqa: E402
from durability_cli.forecasting import ForecastConfig, forecast  # noqa: E402
from durability_cli.line_choice import line_wins, member_val_rmse  # noqa: E402
from durability_cli.schema import validate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "blend-lines.jsonl"


def run_split(name: str, split_seed: int, seed: int) -> dict:
    """Both candidates on one split, and the four scores."""
    info, ds, test, clean, warmup, rows = prepared(name, split_seed)
    means, bundles, seconds = {}, {}, {}
    for label, line in (("without", False), ("with", True)):
        settings = dict(accuracy.FULL) | {"seeds": [seed], "ensemble": 0, "options": {"trend_line": line}}
        run, bundle = accuracy.run_model(ds, test, clean, rows, warmup, info, seed, settings)
        plan = validate(accuracy.plan_for(test, warmup, info.target), bundle.schema, source="plan")
        means[label] = forecast(bundle, plan, ForecastConfig(samples=0, seed=0)).forecast
        bundles[label], seconds[label] = bundle, round(run["train_seconds"], 1)
    col = f"{info.target}_mean"
    keys = ["specimen_id", "time"]
    both = means["without"][[*keys, col]].merge(means["with"][[*keys, col]], on=keys, suffixes=("_a", "_b"))
    blend = both[keys].assign(**{col: (both[f"{col}_a"] + both[f"{col}_b"]) / 2})
    votes = (member_val_rmse(bundles["without"]), member_val_rmse(bundles["with"]))
    auto = "with" if line_wins(*votes) else "without"
    scores = {label: rmse(rows, means[label], info.target) for label in means}
    scores["blend"] = rmse(rows, blend, info.target)
    scores["auto"] = scores[auto]
    return {
        "set": name,
        "split": split_seed,
        "seed": seed,
        "rmse": scores,
        "auto_keeps": auto,
        "member_val_rmse": {"without": votes[0], "with": votes[1]},
        "members": len(bundles["without"].members),
        "test_specimens": len(warmup),
        "train_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--set", required=True, choices=SETS, help="a set of the accuracy suite")
    p.add_argument("--splits", default="0,1,2,3,4", help="test-split seeds (0 is the suite's)")
    p.add_argument("--seed", type=int, default=0, help="training seed (an ensemble of 5 trains 5s..5s+4)")
    p.add_argument("--out", type=Path, default=RESULTS, help="the JSON-lines file to append to")
    args = p.parse_args(argv)
    one_thread()
    code = code_version()
    for split_seed in (int(s) for s in args.splits.split(",")):
        line = run_split(args.set, split_seed, args.seed) | {"code": code}
        with args.out.open("a") as f:
            f.write(json.dumps(line) + "\n")
        r = line["rmse"]
        print(
            f"{args.set} split {split_seed}: without {r['without']:.4g}, with {r['with']:.4g}, "
            f"auto ({line['auto_keeps']}) {r['auto']:.4g}, blend {r['blend']:.4g}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
