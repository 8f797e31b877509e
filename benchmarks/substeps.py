"""Does the forecast depend on how finely its future steps are cut? (issue 14, session 48)

    python benchmarks/substeps.py --model coating.safetensors --data coating_test.csv --context 40
    python benchmarks/substeps.py --model DIR/laser-s0.safetensors --set laser --pieces 4

A row's conditions act from its time to the next row's, so cutting a long future step into
shorter ones with the same conditions describes the same test. A model that integrated exactly
would forecast the same values at the original rows; this measures how far it does not. Each
specimen warms up on its first ``--context`` rows; every later step longer than ``--step`` is cut
into pieces of at most that length (the conditions of the row it starts from); both plans are
forecast with the mean path (``samples=0``) and scored on the original rows against the
measured values. Prints one JSON line.

With ``--set NAME`` instead of ``--data``/``--context``: a saved benchmark model's held-out
specimens (accuracy.held_out: a synthetic set's 96 fresh ones, a measured set's test split, each
specimen warmed up as the suite warms it up), and ``--pieces K`` cuts every future step into K
equal pieces, a cut that means the same on sets of any time unit (session 49, ``--recut``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def finer(plan: pd.DataFrame, id_col: str, time_col: str, target: str, step: float) -> pd.DataFrame:
    """``plan`` with every step after a specimen's last measurement that is longer than ``step`` cut
    into equal pieces of at most ``step``, each new row holding the conditions of the row it
    follows and no measurement."""
    return cut_plan(plan, id_col, time_col, target, lambda gap: int(np.ceil(gap / step - 1e-9)))


def cut_plan(plan: pd.DataFrame, id_col: str, time_col: str, target: str, pieces) -> pd.DataFrame:
    """``plan`` with every step after a specimen's last measurement cut into ``pieces(gap)`` equal
    pieces, each new row holding the conditions of the row it follows and no measurement."""
    rows = []
    for _, g in plan.groupby(id_col, sort=False):
        g = g.sort_values(time_col)
        measured = g[target].notna().to_numpy()
        last = int(np.flatnonzero(measured).max())
        times = g[time_col].to_numpy(dtype=float)
        for i in range(last, len(g) - 1):
            gap = times[i + 1] - times[i]
            k = pieces(gap)
            for j in range(1, k):
                new = g.iloc[i].copy()
                new[time_col] = times[i] + gap * j / k
                new[target] = np.nan
                rows.append(new)
    return pd.concat([plan, pd.DataFrame(rows)], ignore_index=True).sort_values([id_col, time_col])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", help="measured specimens the model never saw")
    p.add_argument("--context", type=int, default=40, help="warm-up rows per specimen (with --data)")
    p.add_argument("--step", type=float, default=1.0, help="longest future step after cutting")
    p.add_argument("--set", help="a benchmark set: its held-out specimens and warm-ups instead of --data")
    p.add_argument("--pieces", type=int, default=0, help="cut every future step into this many pieces")
    p.add_argument(
        "--max-step",
        default=None,
        help="also score the plan as given, forecast with this --max-step (e.g. auto)",
    )
    a = p.parse_args()

    import durability_cli as dur

    model = dur.load(a.model)
    s = model.schema
    if a.set:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from benchmarks.accuracy import held_out, plan_for

        _info, part = held_out(a.set)
        truth = part["test"]
        plan = plan_for(truth, part["warmup"], s.target)
    else:
        truth = pd.read_csv(a.data)
        plan = truth.copy()
        plan.loc[plan.groupby(s.id_col).cumcount() >= a.context, s.target] = np.nan
    if a.pieces:
        name, cut = (
            f"{a.pieces} pieces a step",
            cut_plan(plan, s.id_col, s.time_col, s.target, lambda _: a.pieces),
        )
    else:
        name, cut = f"steps of at most {a.step:g}", finer(plan, s.id_col, s.time_col, s.target, a.step)
    scores = {}
    runs = [("as measured", plan, "off"), (name, cut, "off")]  # both run as given, uncut
    if a.max_step:
        runs.append((f"max-step {a.max_step}", plan, a.max_step))
    for label, table, max_step in runs:
        fc = model.forecast(table, samples=0, max_step=max_step).table
        got = truth.merge(fc, on=[s.id_col, s.time_col])  # the original rows only
        err = got[f"{s.target}_mean"] - got[s.target]
        scores[label] = {
            "extrapolated rows": int(fc["extrapolated"].sum()),
            "rows": int(err.notna().sum()),
            "forecast rows": int(len(fc)),
            "rmse": float(np.sqrt(np.nanmean(err**2))),
        }
    where = {"set": a.set} if a.set else {"data": a.data, "context": a.context}
    print(json.dumps({"model": a.model, **where, "step": a.step, "pieces": a.pieces, **scores}))


if __name__ == "__main__":
    main()
