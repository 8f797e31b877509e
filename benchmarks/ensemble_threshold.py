"""Where does an ensemble stop paying? One model against ``--ensemble 5`` on coating tables of
growing size, to place the line of ``ensemble = 0`` (auto: 5 members where few specimens
validate; issue 14).

Each coating run trains on ``make_coating(n, seed=0)`` (``--static material``, every other option
the default; n = 48 is sample_data/coating.csv, 10 validation specimens; n = 96, 19) and
backtests 48 new specimens (``make_coating(48, seed=1)``, as ``make demo`` does) from their first
40 rows. Each ball run trains on ``make_ball(n, seed=0)`` (n = 60 is sample_data/ball.csv, 12
validating; ``--target height --lags 3 --val-context 3``) and backtests 20 new balls
(``make_ball(20, seed=7)``, as tests/test_accuracy_ball.py does) from their first 3 heights. Score:
RMSE of the mean path over every hidden row against the noisy values.

    python benchmarks/ensemble_threshold.py                       # coating, n = 48, 96; seeds 0, 1, 2
    python benchmarks/ensemble_threshold.py --set ball --sizes 60
    python benchmarks/ensemble_threshold.py --sizes 48 --seeds 0 --epochs 20

Appends one JSON line per run to results/ensemble-threshold.jsonl (seed s of an ensemble trains
seeds 5s .. 5s + 4, as the accuracy suite's ensembles do).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, one_thread, say  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", default="coating", choices=["coating", "ball"])
    p.add_argument("--sizes", default="48,96", help="training specimens per table, comma-separated")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--members", default="1,5", help="ensemble sizes to compare")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--context", type=int, default=40)
    p.add_argument("--out", default=str(RESULTS / "ensemble-threshold.jsonl"))
    args = p.parse_args(argv)
    one_thread()
    import numpy as np

    from durability_cli import api
    from durability_cli.synthetic import make_ball, make_coating

    code = common.code_version()
    if args.set == "coating":
        make, options, context = make_coating, {"static": ["material"]}, args.context
        test, _ = make_coating(48, seed=1)
    else:
        make, options, context = make_ball, {"target": "height", "lags": 3, "val_context": 3}, 3
        test, _ = make_ball(20, seed=7)
    for n in (int(v) for v in args.sizes.split(",")):
        table, _ = make(n, seed=0)
        for seed in (int(v) for v in args.seeds.split(",")):
            for members in (int(v) for v in args.members.split(",")):
                started = time.perf_counter()
                model = api.train(table, epochs=args.epochs, seed=seed * members, ensemble=members, **options)
                seconds = time.perf_counter() - started
                bt = model.evaluate(test, context=context, samples=0, baselines=False).backtest
                rows = bt[bt.model == "model"] if "model" in bt.columns else bt
                err = rows["y_pred"].to_numpy() - rows["y_true"].to_numpy()
                rmse = float(np.sqrt(np.nanmean(err**2)))
                line = {
                    "set": args.set,
                    "code": code,
                    "train_specimens": n,
                    "val_specimens": len(model.summary["val_specimens"]),
                    "seed": seed,
                    "members": members,
                    "epochs": args.epochs,
                    "rmse": rmse,
                    "train_seconds": round(seconds, 1),
                    "best_epochs": (model.summary.get("ensemble") or {}).get(
                        "best_epoch", [model.summary["best_epoch"]]
                    ),
                }
                say(json.dumps(line))
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
