"""Does the forecast depend on how finely its future steps are cut? (issue 14, session 48)

    python benchmarks/substeps.py --model coating.safetensors --data coating_test.csv --context 40

A row's conditions act from its time to the next row's, so cutting a long future step into
shorter ones with the same conditions describes the same test. A model that integrated exactly
would forecast the same values at the original rows; this measures how far it does not. Each
specimen warms up on its first ``--context`` rows; every later step longer than ``--step`` is cut
into pieces of at most that length (the conditions of the row it starts from); both plans are
forecast with the mean path (``samples=0``) and scored on the original rows against the
measured values. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd


def finer(plan: pd.DataFrame, id_col: str, time_col: str, target: str, step: float) -> pd.DataFrame:
    """``plan`` with every step after a specimen's last measurement that is longer than ``step`` cut
    into equal pieces of at most ``step``, each new row holding the conditions of the row it
    follows and no measurement."""
    rows = []
    for _, g in plan.groupby(id_col, sort=False):
        g = g.sort_values(time_col)
        measured = g[target].notna().to_numpy()
        last = int(np.flatnonzero(measured).max())
        times = g[time_col].to_numpy(dtype=float)
        for i in range(last, len(g) - 1):
            gap = times[i + 1] - times[i]
            k = int(np.ceil(gap / step - 1e-9))
            for j in range(1, k):
                new = g.iloc[i].copy()
                new[time_col] = times[i] + gap * j / k
                new[target] = np.nan
                rows.append(new)
    return pd.concat([plan, pd.DataFrame(rows)], ignore_index=True).sort_values([id_col, time_col])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="measured specimens the model never saw")
    p.add_argument("--context", type=int, default=40, help="warm-up rows per specimen")
    p.add_argument("--step", type=float, default=1.0, help="longest future step after cutting")
    a = p.parse_args()

    import durability_cli as dur

    model = dur.load(a.model)
    s = model.schema
    truth = pd.read_csv(a.data)
    plan = truth.copy()
    plan.loc[plan.groupby(s.id_col).cumcount() >= a.context, s.target] = np.nan
    scores = {}
    for name, table in (
        ("as measured", plan),
        (f"steps of at most {a.step:g}", finer(plan, s.id_col, s.time_col, s.target, a.step)),
    ):
        fc = model.forecast(table, samples=0).table
        got = truth.merge(fc, on=[s.id_col, s.time_col])  # the original rows only
        err = got[f"{s.target}_mean"] - got[s.target]
        scores[name] = {
            "rows": int(err.notna().sum()),
            "forecast rows": int(len(fc)),
            "rmse": float(np.sqrt(np.nanmean(err**2))),
        }
    print(json.dumps({"model": a.model, "data": a.data, "context": a.context, "step": a.step, **scores}))


if __name__ == "__main__":
    main()
