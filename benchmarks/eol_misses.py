"""Where a saved model's end-of-life interval misses on a synthetic set's fresh specimens.

    python benchmarks/eol_misses.py --model DIR/crack-s2.safetensors --set crack --seed 2

Forecasts the accuracy suite's 96 fresh specimens of ``--set`` (the model ``run.py
--save-models DIR`` saved for seed ``--seed``; 200 paths, the suite's quantiles and threshold)
and, for the specimens whose clean truth crosses the threshold but whose interval's lower end
lies past the horizon (counted as missed early), prints how late in the forecast span the truth
crossed and the forecast's chance of a crossing within the horizon (``prob_cross``), against the
specimens whose interval was decided. On crack the series stop at failure, so every truth crosses
in the last few per cent of its span: an interval whose p10 lands just past the horizon misses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.accuracy import QUANTILES, direction_of, eol_truth, held_out, plan_for  # noqa: E402
from benchmarks.common import one_thread  # noqa: E402
from durability_cli import api  # noqa: E402
from durability_cli.synthetic import DATASET_INFO  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="a model run.py --save-models wrote")
    ap.add_argument("--set", default="crack", choices=sorted(DATASET_INFO))
    ap.add_argument("--seed", type=int, default=0, help="the run's seed (the forecast's paths)")
    args = ap.parse_args()
    one_thread()
    info, fresh = held_out(args.set)  # the 96 fresh specimens
    plan = plan_for(fresh["test"], fresh["warmup"], info.target)
    direction = direction_of(info)
    eol = (
        api.load(args.model)
        .forecast(
            plan,
            samples=200,
            quantiles=QUANTILES,
            threshold=info.eol_threshold,
            direction=direction,
            seed=args.seed,
        )
        .end_of_life
    )
    truth = eol_truth(fresh["clean"], fresh["warmup"], info.target, info.eol_threshold, direction)
    eol["truth"] = eol["specimen_id"].map(truth["eol_true"])  # as the suite scores it
    span = eol["horizon_end"] - eol["last_measured_time"]
    left = (eol["horizon_end"] - eol["truth"]) / span  # share of the span after the truth crossed
    crosses = eol["truth"].notna()
    past = crosses & eol["eol_p10"].isna()
    decided = crosses & eol["eol_p10"].notna()
    report = {
        "model": str(args.model.name),
        "set": args.set,
        "truth_crosses": int(crosses.sum()),
        "p10_past_horizon": int(past.sum()),
        "their_span_left_median": round(float(left[past].median()), 4) if past.any() else None,
        "their_span_left_max": round(float(left[past].max()), 4) if past.any() else None,
        "their_prob_cross_median": round(float(eol.loc[past, "prob_cross"].median()), 4)
        if past.any()
        else None,
        "their_prob_cross_max": round(float(eol.loc[past, "prob_cross"].max()), 4) if past.any() else None,
        "decided": int(decided.sum()),
        "decided_span_left_median": round(float(left[decided].median()), 4) if decided.any() else None,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
