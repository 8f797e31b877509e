"""The end-of-life interval's pace (durability_cli/eol_warp.py, issue 14, session 29).

Trains the suite's default model on a set's accuracy split (or loads one saved by an earlier run,
``--models DIR``: DIR/SET-sSEED.safetensors) and backtests 64 new specimens (generator seed
benchmarks.calibration.TEST_SEED) from the set's warm-up. Reported per model:

- the validation specimens' log pace factors as training recorded them (median, sd), the same
  fit on 32 other new specimens (CAL_SEED) against the model's mean, and on each member's own
  training specimens (in-sample) and validation specimens against that member's mean: how
  optimistic, and how steady, each spread is;
- the end-of-life 80 % interval's coverage of the 64 specimens' crossings with the paths alone,
  and with the pace spread at several factors on the validation's sd (``--factors``) under two
  rules for the lower end: ``fill`` (the library's: the stretched mean's crossing only where too few
  paths cross within the horizon) and ``earlier`` (the earlier of the two everywhere).

    python benchmarks/eol_pace.py --sets crack,coating,battery --seed 0 --save-models DIR
    python benchmarks/eol_pace.py --sets crack --seed 0 --models DIR --factors 1,1.5,2,2.5

One JSON line per set and seed, appended to results/eol-pace.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import model_config  # noqa: E402
from benchmarks.calibration import CAL_SEED, TEST_SEED, new_specimens, scores  # noqa: E402
from benchmarks.common import RESULTS, code_version, one_thread  # noqa: E402
from durability_cli import eol_warp, training  # noqa: E402
from durability_cli.api import Model, load  # noqa: E402
from durability_cli.config import TrainConfig  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402


def new_paces(model: Model, frame, info) -> list[float]:
    """Each specimen's log pace factor against the model's mean forecast from the set's warm-up
    (``frame``: a table's rows, sorted by specimen and time)."""
    target, ctx = info.target, info.context
    hidden = frame.copy()
    hidden.loc[hidden.groupby("specimen_id").cumcount() >= ctx, target] = np.nan
    mean = model.forecast(hidden, samples=0).table
    out = []
    for sid, g in frame.groupby("specimen_id", sort=False):
        f = mean.loc[mean["specimen_id"] == sid, f"{target}_mean"].to_numpy(float)
        t, y = g["time"].to_numpy(float), g[target].to_numpy(float)
        lw = eol_warp.fit_one(t[ctx:], y[ctx:], f, t[ctx - 1], y[ctx - 1])
        if lw is not None:
            out.append(lw)
    return out


def member_paces(model: Model, frame, info) -> tuple[list[float], list[float]]:
    """Each member's log pace factors on its own training specimens (in-sample) and on its
    validation specimens, against that member's mean alone (``frame``: the training table)."""
    train, val = [], []
    ids = frame["specimen_id"].astype(str)
    for member in model.bundle.members:
        one = Model(dataclasses.replace(member, others=[]))
        for names, out in (
            (member.summary["train_specimens"], train),
            (member.summary["val_specimens"], val),
        ):
            out += new_paces(one, frame[ids.isin([str(i) for i in names])], info)
    return train, val


def coverage_with(model: Model, test, info, rule: str, factor: float | None) -> dict:
    """The backtest's scores with the pace spread at ``factor`` x the validation's sd (None: the
    paths alone) and the lower end set by ``rule``."""
    spread_factor, envelope = eol_warp.SPREAD_FACTOR, eol_warp.envelope

    def earlier(paths_q, warp_q, quantiles):
        return [
            np.minimum(p, w) if q < 0.5 else np.maximum(p, w) if q > 0.5 else p
            for q, p, w in zip(quantiles, paths_q, warp_q, strict=True)
        ]

    saved = [(m, m.summary.get("eol_warp")) for m in model.bundle.members]
    try:
        if factor is None:
            for m in model.bundle.members:
                m.summary.pop("eol_warp", None)
        else:
            eol_warp.SPREAD_FACTOR = factor
            if rule == "earlier":
                eol_warp.envelope = earlier
        return scores(model, test, info)
    finally:
        eol_warp.SPREAD_FACTOR, eol_warp.envelope = spread_factor, envelope
        for m, block in saved:
            if block is not None:
                m.summary["eol_warp"] = block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="crack,coating,battery")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="", help="load DIR/SET-sSEED.safetensors instead of training")
    ap.add_argument("--save-models", default="", help="save each trained model as DIR/SET-sSEED.safetensors")
    ap.add_argument("--factors", default="1,1.5,2,2.5")
    a = ap.parse_args()
    one_thread()
    factors = [float(f) for f in a.factors.split(",") if f]
    for name in a.sets.split(","):
        split = make_split(name, 32, 16, seed=0)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        test = new_specimens(name, 64, TEST_SEED, "test-", schema)
        cal = new_specimens(name, 32, CAL_SEED, "cal-", schema)
        file = f"{name}-s{a.seed}.safetensors"
        t0 = time.perf_counter()
        if a.models:
            model = load(Path(a.models) / file)
        else:
            cfg = TrainConfig(val_context=info.context, seed=a.seed)
            model = Model(
                training.train(validate(split["train"], schema, source="train"), model_config(name), cfg)
            )
            if a.save_models:
                Path(a.save_models).mkdir(parents=True, exist_ok=True)
                model.save(Path(a.save_models) / file)
        val = [v for m in model.bundle.members for v in (m.summary.get("eol_warp") or {}).get("log_w") or []]
        fresh = new_paces(model, cal.frame, info)
        train_w, member_val = member_paces(model, split["train"], info)
        out = {
            "set": name,
            "seed": a.seed,
            "commit": code_version()["commit"],
            "seconds": round(time.perf_counter() - t0, 1),
            "validation_log_w": {
                "n": len(val),
                "median": float(np.median(val)),
                "sd": float(np.std(val, ddof=1)),
            },
            "train_log_w": {"n": len(train_w), "sd": float(np.std(train_w, ddof=1))},
            "member_val_log_w": {"n": len(member_val), "sd": float(np.std(member_val, ddof=1))},
            "new_log_w": {
                "n": len(fresh),
                "median": float(np.median(fresh)),
                "sd": float(np.std(fresh, ddof=1)),
            },
            "paths_alone": coverage_with(model, test, info, "fill", None),
        }
        for rule in ("fill", "earlier"):
            out[rule] = {f"{f:g}": coverage_with(model, test, info, rule, f) for f in factors}
        print(json.dumps(out), flush=True)
        with open(RESULTS / "eol-pace.jsonl", "a") as fh:
            fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
