"""What-if plans against the physics: does a forecast depend on the plan's step length, and is it
right? (issue 14, session 49)

    python benchmarks/whatif.py --model coating.safetensors [--model other.safetensors ...]

The coating set's generator (durability_cli/synthetic.py) integrates a dose: strength s = s0 / (1
+ lot D(t)), D the running sum of rate(temperature, humidity) x step length, each row's
conditions acting until the next row. So a specimen's path under any plan is known once its two
hidden factors are, and the clean history gives them exactly (1 / s is linear in D). Each of
``make demo``'s 48 unseen test specimens (make_coating seed 1) warms up on its first ``--context``
rows; then a plan of ``--days`` days in steps of each ``--steps`` length, at the conditions of its
last warm-up row (``held``) or at ``--set`` conditions from that row on (``set``). Both plans are
the same test whatever the step length. Each is forecast with the mean path (``samples=0``) and
scored against the physics at every ``--every`` days (a time every step length reaches). Prints
one JSON line per model: RMSE per scenario and step length, and the largest difference between
two step lengths' forecasts of the same point.
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pandas as pd

from durability_cli.synthetic import coating_rate as rate
from durability_cli.synthetic import make_coating


def hidden_factors(clean: pd.DataFrame) -> tuple[float, float, float]:
    """(1 / s0, lot / s0, the dose at the last row) of one specimen's clean rows: 1 / s is linear in D."""
    r = rate(clean.material.iloc[0], clean.temperature, clean.humidity)
    t = clean.time.to_numpy(float)
    dose = np.concatenate([[0.0], np.cumsum(r[:-1] * np.diff(t))])
    (a, b), *_ = np.linalg.lstsq(np.vstack([np.ones_like(dose), dose]).T, 1.0 / clean.durability, rcond=None)
    return float(a), float(b), float(dose[-1])


def plans(noisy, clean, context: int, days: float, steps, setting):
    """{(scenario, step): (plan table, truth at the scored times)} for every specimen together."""
    out: dict = {}
    for sid, g in noisy.groupby("specimen_id", sort=False):
        h = g.iloc[:context].copy()
        a, b, dose = hidden_factors(clean[clean.specimen_id == sid].iloc[:context])
        last = h.iloc[-1]
        for scenario in ("held", "set"):
            temp, rh = (last.temperature, last.humidity) if scenario == "held" else setting
            hh = h.copy()
            hh.loc[hh.index[-1], ["temperature", "humidity"]] = [temp, rh]  # acts on the first step
            r = float(rate(last.material, temp, rh))
            for step in steps:
                times = last.time + step * np.arange(1, int(round(days / step)) + 1)
                fut = pd.DataFrame(
                    {
                        "specimen_id": sid,
                        "time": times,
                        "temperature": temp,
                        "humidity": rh,
                        "material": last.material,
                    }
                )
                truth = pd.DataFrame(
                    {
                        "specimen_id": sid,
                        "time": times,
                        "truth": 1.0 / (a + b * (dose + r * (times - last.time))),
                    }
                )
                tables, truths = out.setdefault((scenario, step), ([], []))
                tables.append(pd.concat([hh, fut]))
                truths.append(truth)
    return {
        k: (pd.concat(t, ignore_index=True), pd.concat(v, ignore_index=True)) for k, (t, v) in out.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--context", type=int, default=40)
    p.add_argument("--days", type=float, default=70.0)
    p.add_argument("--steps", default="14,7,1,0.5")
    p.add_argument("--every", type=float, default=14.0)
    p.add_argument("--set", default="60,85", help="temperature,humidity of the set scenario")
    p.add_argument(
        "--max-step",
        default="off",
        help="forecast every plan with --max-step (a length, auto, off: as given, or default: what "
        "forecast does when it is not given)",
    )
    a = p.parse_args()
    max_step = None if a.max_step == "default" else a.max_step

    import durability_cli as dur

    noisy, clean = make_coating(seed=1)
    steps = [float(s) for s in a.steps.split(",")]
    setting = tuple(float(v) for v in a.set.split(","))
    cases = plans(noisy, clean, a.context, a.days, steps, setting)
    for path in a.model:
        model = dur.load(path)
        scores: dict = {}
        at: dict = {}
        for (scenario, step), (table, truth) in cases.items():
            with warnings.catch_warnings(record=True):
                fc = model.forecast(table, samples=0, max_step=max_step).table
            got = truth.merge(fc, on=["specimen_id", "time"])
            start = got.groupby("specimen_id").time.transform("min") - step
            got = got[np.isclose(((got.time - start) / a.every) % 1.0, 0.0, atol=1e-6)]
            err = got.durability_mean - got.truth
            scores.setdefault(scenario, {})[f"{step:g}"] = {
                "rmse": round(float(np.sqrt(np.mean(err**2))), 5),
                "bias": round(float(err.mean()), 5),
                "points": len(got),
                "extrapolated rows": int(fc.extrapolated.sum()),
            }
            at[(scenario, step)] = got.set_index(["specimen_id", "time"]).durability_mean
        spread = {}
        for scenario in ("held", "set"):
            both = pd.concat([at[(scenario, s)] for s in steps], axis=1)
            spread[scenario] = round(float((both.max(axis=1) - both.min(axis=1)).mean()), 5)
        print(
            json.dumps(
                {
                    "model": path,
                    "context": a.context,
                    "days": a.days,
                    "set": setting,
                    "max_step": a.max_step,
                    "scores": scores,
                    "mean spread between step lengths": spread,
                }
            )
        )


if __name__ == "__main__":
    main()
