"""How an ensemble's Monte Carlo paths should sit (issue 14): one ensemble of 5 trained per set and
seed, then forecast twice, its paths as a mixture (member k's paths around member k's mean) and
centred (moved onto the ensemble's mean path); the 80 % band's coverage, width and pinball loss on
the accuracy suite's test specimens.

    python benchmarks/ensemble_paths.py                       # ball and device_b, seeds 0 and 1
    python benchmarks/ensemble_paths.py --sets coating --seeds 0
    python benchmarks/ensemble_paths.py --sets ball --epochs 0 --trend-line true --fresh-test 96
                                   # train's length, the line, scored on 96 new specimens

Prints one JSON line per set and seed and writes them to results/ensemble-paths.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, header, one_thread, say  # noqa: E402

MODES = ("mixture", "centred")
# what main() sets from its command line (pooled_calibration.py keeps these defaults)
OPTIONS = {"epochs": 60, "trend_line": False, "fresh_test": 0, "modes": MODES}


def prepare(name: str, seed: int, members: int) -> dict:
    """An ensemble of ``members`` trained on set ``name``'s accuracy-suite split (seeds
    ``seed * members`` on), and what scoring its forecasts of the test specimens needs: the plan
    (targets emptied after each warm-up), the scored rows and the end-of-life truth."""

    from benchmarks import accuracy as acc
    from benchmarks import realdata
    from durability_cli.config import TrainConfig
    from durability_cli.schema import Schema, validate
    from durability_cli.synthetic import make_split
    from durability_cli.training import train

    real = name in realdata.REAL_INFO
    split = realdata.split(name, seed=0) if real else make_split(name, 32, 16, seed=0)
    info, test = split["info"], split["test"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    ds = validate(split["train"], schema, source="train")
    warm = acc.warmup_lengths(test, info)
    cfg = TrainConfig(
        epochs=OPTIONS["epochs"], val_context=info.context, seed=seed * members, ensemble=members
    )
    bundle = train(ds, replace(acc.model_config(name), trend_line=OPTIONS["trend_line"]), cfg)
    clean = split["test_clean"]
    if OPTIONS["fresh_test"] and not real:  # score on that many new specimens instead
        fresh = acc.fresh_split(name, OPTIONS["fresh_test"], info)
        test, clean, warm = fresh["test"], fresh["clean"], fresh["warmup"]
    plan = acc.plan_for(test, warm, info.target)
    truth = None
    if info.eol_threshold is not None:
        truth = acc.eol_truth(clean, warm, info.target, info.eol_threshold)
    return {
        "split": split,
        "schema": schema,
        "bundle": bundle,
        "plan": validate(plan, bundle.schema, source="plan"),
        "rows": acc.forecast_rows(test, clean, warm, info.target),
        "truth": truth,
    }


def band_scores(case: dict, seed: int) -> dict:
    """Forecast ``case``'s plan (200 paths) and score it: RMSE, the 80 % band's coverage, width
    and pinball loss, and with a threshold the end-of-life interval's coverage."""
    from benchmarks import accuracy as acc
    from durability_cli.forecasting import ForecastConfig, forecast, quantile_column

    info = case["split"]["info"]
    cols = {f"{info.target}_mean": "y_pred"} | {
        quantile_column(info.target, q): f"q{q:g}" for q in acc.QUANTILES
    }
    fcfg = ForecastConfig(samples=200, quantiles=acc.QUANTILES, threshold=info.eol_threshold, seed=seed)
    result = forecast(case["bundle"], case["plan"], fcfg)
    merged = case["rows"].merge(
        result.forecast[["specimen_id", "time", *cols]].rename(columns=cols),
        on=["specimen_id", "time"],
        how="left",
    )
    sc = acc.score(merged, info.eol_threshold, probabilistic=True)
    out = {k: sc[k] for k in ("rmse", "coverage80", "interval80_width", "pinball")}
    if case["truth"] is not None:
        out |= acc.eol_interval(result.eol, case["truth"])
    return out


def measure(name: str, seed: int, members: int) -> dict:
    from durability_cli import forecasting

    case = prepare(name, seed, members)
    out = {"set": name, "seed": seed, "members": members} | {k: v for k, v in OPTIONS.items() if k != "modes"}
    before = forecasting.ENSEMBLE_PATHS
    try:
        for mode in OPTIONS["modes"]:
            forecasting.ENSEMBLE_PATHS = mode
            out[mode] = band_scores(case, seed)
    finally:
        forecasting.ENSEMBLE_PATHS = before
    return out


def run_sets(argv, measure, *, doc: str, suite: str, sets: str, seeds: str) -> None:
    """The command line of a script that runs ``measure(set, seed, members)`` over sets and
    seeds and writes its lines to results/<suite>.json (this one and pooled_calibration.py)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--sets", default=sets)
    p.add_argument("--seeds", default=seeds)
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / f"{suite}.json"))
    p.add_argument("--epochs", type=int, default=60, help="0: train's automatic length")
    p.add_argument("--trend-line", choices=("auto", "true", "false"), default="false")
    p.add_argument("--fresh-test", type=int, default=0, help="score on N new specimens (synthetic sets)")
    p.add_argument(
        "--modes", default=",".join(MODES), help="ensemble path modes (forecasting.ENSEMBLE_PATHS)"
    )
    args = p.parse_args(argv)
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:  # forecasting.ENSEMBLE_PATHS would read an unknown one as the mixture
        p.error(f"unknown mode(s) {', '.join(sorted(unknown))}; main forecasts {', '.join(MODES)}")
    line = {"auto": "auto", "true": True, "false": False}[args.trend_line]
    OPTIONS.update(
        epochs=args.epochs, trend_line=line, fresh_test=args.fresh_test, modes=args.modes.split(",")
    )
    common.CODE_AT_START = common.code_version()
    one_thread()
    lines = []
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            lines.append(measure(name, seed, args.members))
            say(json.dumps(lines[-1]))
    Path(args.out).write_text(json.dumps(header(suite, False) | {"runs": lines}, indent=1))


def main(argv=None) -> None:
    run_sets(argv, measure, doc=__doc__, suite="ensemble-paths", sets="ball,device_b", seeds="0,1")


if __name__ == "__main__":
    main()
