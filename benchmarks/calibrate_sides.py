"""`durability calibrate --sides each` against `--sides both` (issue 14, session 32).

New specimens' misses are often one-sided: on the suite's 96 fresh coating and battery specimens
8-24 % of the values fell under the 80 % band and 2-9 % over it (RESULTS.md, bands rows). One
factor for the two halves of the band can only widen both; a factor per half moves each. This
loads the accuracy suite's saved models (``run.py --save-models DIR``: DIR/SET-sSEED.safetensors),
calibrates each on ``--draws`` sets of ``--cal-specimens`` new specimens (generator seeds
calibration.CAL_SEED, CAL_SEED + 1, ...) with each rule, the end-of-life interval left to the band
(as `calibrate` does without --eol-interval; ``--eol-interval``: calibrated on its own too), and scores the suite's 96 fresh specimens
(accuracy.fresh_split) from the set's warm-up with the model as trained and as calibrated (a measured
set, which has no new specimens: its test split in two halves, each calibrating on one and scored
on the other): RMSE of
the mean column (the paths' average, which a factor per half moves), 80 % band coverage and the
shares under and over it, interval score, CRPS, end-of-life 80 % interval coverage and its misses.

    python benchmarks/calibrate_sides.py --models DIR --sets coating,battery,crack,ageing --seeds 0,1,2

One JSON line per set and seed, appended to results/calibrate-sides.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import direction_of, fresh_split  # noqa: E402
from benchmarks.calibration import CAL_SEED, new_specimens, scores, suite_set  # noqa: E402
from benchmarks.common import RESULTS, code_version, one_thread  # noqa: E402
from durability_cli.api import load  # noqa: E402
from durability_cli.schema import validate  # noqa: E402

SIDES = ("both", "each")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    p.add_argument("--sets", default="coating,battery,crack,ageing")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--draws", type=int, default=2, help="calibration sets per model")
    p.add_argument("--cal-specimens", type=int, default=16)
    p.add_argument("--bins", type=int, default=4, help="calibrate --bins")
    p.add_argument(
        "--eol-interval",
        action="store_true",
        help="calibrate --eol-interval: the interval calibrated on its own too",
    )
    a = p.parse_args()
    one_thread()
    commit = code_version()["commit"]
    for name in a.sets.split(","):
        held_scored, info, cut = (measured if name in realdata.REAL_INFO else synthetic)(name, a)
        for seed in [int(s) for s in a.seeds.split(",")]:
            trained = load(Path(a.models) / f"{name}-s{seed}.safetensors")
            out = {
                "set": name,
                "seed": seed,
                "commit": commit,
                "cal_specimens": a.cal_specimens,
                "bins": a.bins,
                "eol_interval": a.eol_interval,
                "draws": [],
            }
            for held, scored in held_scored:
                row = {"before": scores(trained, scored, info, cut)}
                for sides in SIDES:
                    model = trained.calibrate(
                        held,
                        **cut,
                        bins=a.bins,
                        sides=sides,
                        threshold=info.eol_threshold,
                        direction=direction_of(info),
                        eol_interval=a.eol_interval,
                    )
                    block = model.summary["calibration"]
                    row[sides] = {
                        k: block.get(k)
                        for k in ("factors", "under", "over", "coverage_after", "under_after", "over_after")
                    } | {"after": scores(model, scored, info, cut)}
                out["draws"].append(row)
            out["before"] = out["draws"][0]["before"]  # synthetic sets: the same 96 for every draw
            print(json.dumps(out), flush=True)
            with open(RESULTS / "calibrate-sides.jsonl", "a") as f:
                f.write(json.dumps(out) + "\n")


def synthetic(name: str, a) -> tuple[list, object, dict]:
    """(held-out, scored) pairs of a synthetic set: each draw of new specimens, and the suite's 96
    fresh ones; the set's info and cut-off."""
    _, info, schema = suite_set(name)
    fresh = validate(fresh_split(name, 96, info)["test"], schema, source="fresh")
    draws = [new_specimens(name, a.cal_specimens, CAL_SEED + d, f"cal{d}-", schema) for d in range(a.draws)]
    return [(held, fresh) for held in draws], info, {"context": info.context}


def measured(name: str, a) -> tuple[list, object, dict]:
    """(held-out, scored) pairs of a measured set, which has no new specimens to draw: its test
    split's specimens in two halves (every other one by name), each calibrating and the other
    scored; the suite's warm-up (a share of each specimen's rows, or a fixed count)."""
    split = realdata.split(name, seed=0)
    info, test = split["info"], split["test"]
    ids = sorted(test["specimen_id"].astype(str).unique())
    halves = [test[test["specimen_id"].astype(str).isin(ids[k::2])] for k in (0, 1)]
    frac = getattr(info, "warmup_fraction", None)
    cut = {"context_frac": frac} if frac else {"context": info.warmup}
    return [(halves[0], halves[1]), (halves[1], halves[0])], info, cut


if __name__ == "__main__":
    main()
