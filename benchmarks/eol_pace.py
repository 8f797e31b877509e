"""The end-of-life interval's pace (durability_cli/eol_warp.py, issue 14, session 29).

Trains the suite's default model on a set's accuracy split (or loads one saved by an earlier run,
``--models DIR``: DIR/SET-sSEED.safetensors) and backtests 64 new specimens (generator seed
benchmarks.calibration.TEST_SEED; ``--draw fresh``: the accuracy suite's 96 fresh ones) from the
set's warm-up. Reported per model:

- the validation specimens' log pace factors as training recorded them (median, sd), the same
  fit on 32 other new specimens (CAL_SEED) against the model's mean, and on each member's own
  training specimens (in-sample) and validation specimens against that member's mean: how
  optimistic, and how steady, each spread is;
- the end-of-life 80 % interval's coverage of the 64 specimens' crossings with the paths alone,
  and with the pace spread at several factors (``--factors``) on the sd of the validation's log
  factors, the training specimens' in-sample ones, or both pooled (``--sources val,train,pooled``;
  the library pools them, session 30), under two rules for the lower end (``--rules``): ``fill``
  (the library's: the stretched mean's crossing only where too few paths cross within the horizon)
  and ``earlier`` (the earlier of the two everywhere), and two for the upper end (``--uppers``):
  ``max`` (the library's: the later of the two) and ``paths`` (the paths' alone).

    python benchmarks/eol_pace.py --sets crack,coating,battery --seed 0 --save-models DIR
    python benchmarks/eol_pace.py --sets crack --seed 0 --models DIR --factors 1,1.5,2,2.5
    python benchmarks/eol_pace.py --sets crack --seed 1 --models DIR --sources val,train,pooled \
        --rules fill --uppers max,paths

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

from benchmarks.accuracy import fresh_split, model_config  # noqa: E402
from benchmarks.calibration import CAL_SEED, TEST_SEED, new_specimens, scores  # noqa: E402
from benchmarks.common import RESULTS, code_version, member_rows, one_thread  # noqa: E402
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


def member_paces(model: Model, frame, info) -> list[tuple[list[float], list[float]]]:
    """Each member's log pace factors on its own training specimens (in-sample) and on its
    validation specimens, against that member's mean alone (``frame``: the training table)."""
    out = []
    for member in model.bundle.members:
        one = Model(dataclasses.replace(member, others=[]))
        train, val = (
            new_paces(one, member_rows(member, frame, key), info)
            for key in ("train_specimens", "val_specimens")
        )
        out.append((train, val))
    return out


SOURCES = ("val", "train", "pooled")  # which specimens' paces the spread is measured on


def coverage_with(
    model: Model,
    test,
    info,
    rule: str,
    factor: float | None,
    source: str = "val",
    upper: str = "max",
    paces: list[tuple[list[float], list[float]]] | None = None,
) -> dict:
    """The backtest's scores with the pace spread at ``factor`` x the sd of ``source``'s log
    factors (None: the paths alone): the validation specimens' as training recorded them, each
    member's training specimens' in-sample (``paces``, from :func:`member_paces`), or both pooled.
    The lower end is set by ``rule`` (fill: the library's; earlier: the earlier of the two
    everywhere), the upper end by ``upper`` (max: the later of the two; paths: the paths' alone)."""
    spread_factor, envelope = eol_warp.SPREAD_FACTOR, eol_warp.envelope

    def ends(paths_q, warp_q, quantiles):
        lower = np.minimum if rule == "earlier" else lambda p, w: np.where(np.isfinite(p), p, w)
        higher = np.maximum if upper == "max" else lambda p, w: p
        return [
            lower(p, w) if q < 0.5 else higher(p, w) if q > 0.5 else p
            for q, p, w in zip(quantiles, paths_q, warp_q, strict=True)
        ]

    saved = [(m, m.summary.get("eol_warp")) for m in model.bundle.members]
    try:
        if factor is None:
            for m in model.bundle.members:
                m.summary.pop("eol_warp", None)
        else:
            eol_warp.SPREAD_FACTOR = factor
            eol_warp.envelope = ends
            for i, (m, block) in enumerate(saved):
                val = list((block or {}).get("log_w") or [])
                train = paces[i][0] if paces is not None else []
                m.summary["eol_warp"] = {"log_w": {"val": val, "train": train, "pooled": val + train}[source]}
        return scores(model, test, info)
    finally:
        eol_warp.SPREAD_FACTOR, eol_warp.envelope = spread_factor, envelope
        for m, block in saved:
            m.summary.pop("eol_warp", None)
            if block is not None:
                m.summary["eol_warp"] = block


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="crack,coating,battery")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="", help="load DIR/SET-sSEED.safetensors instead of training")
    ap.add_argument("--save-models", default="", help="save each trained model as DIR/SET-sSEED.safetensors")
    ap.add_argument("--factors", default="1,1.5,2,2.5")
    ap.add_argument("--sources", default="val", help=f"spread measured on: any of {','.join(SOURCES)}")
    ap.add_argument("--rules", default="fill,earlier", help="lower-end rules: fill, earlier")
    ap.add_argument("--uppers", default="max", help="upper-end rules: max, paths")
    ap.add_argument(
        "--draw",
        default="test",
        choices=("test", "fresh"),
        help="the specimens scored: test, 64 new ones (generator seed TEST_SEED); fresh, the accuracy "
        "suite's 96 (benchmarks/accuracy.py fresh_split, complete series), scored against their "
        "noisy values as evaluate does",
    )
    a = ap.parse_args()
    one_thread()
    factors = [float(f) for f in a.factors.split(",") if f]
    for name in a.sets.split(","):
        split = make_split(name, 32, 16, seed=0)
        info = split["info"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        if a.draw == "fresh":
            test = validate(fresh_split(name, 96, info)["test"], schema, source="fresh")
        else:
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
        paces = member_paces(model, split["train"], info)
        train_w = [v for t, _ in paces for v in t]
        member_val = [v for _, v in paces for v in v]
        out = {
            "set": name,
            "seed": a.seed,
            "draw": a.draw,
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
        for source in a.sources.split(","):
            for rule in a.rules.split(","):
                for upper in a.uppers.split(","):
                    key = rule if (source, upper) == ("val", "max") else f"{rule}-{upper}-{source}"
                    out[key] = {
                        f"{f:g}": coverage_with(model, test, info, rule, f, source, upper, paces)
                        for f in factors
                    }
        print(json.dumps(out), flush=True)
        with open(RESULTS / "eol-pace.jsonl", "a") as fh:
            fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
