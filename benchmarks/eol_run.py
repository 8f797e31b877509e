"""What the end-of-life interval's run past the horizon costs the demo's everyday commands: this
library against an earlier commit's, taken in turn in fresh processes.

With a threshold, forecast, evaluate, calibrate and ``plot eol`` run each specimen's mean on past
the horizon (eol_warp.py). Until session 45 every specimen of a chunk ran as far as the one that
needed most, to the end, whatever had crossed, and calibrate's backtest no farther than a
forecast. Since then each specimen runs as far as its own span asks, the run stops once every
mean has crossed, and calibrate's backtest runs as far as a shift of eol_warp.CALIBRATE_SHIFT
would need (so that it can measure one that brings ends past the horizon within it). This times
the demo's commands (scripts/demo.sh, steps 4, 6, 7 and 8's ``plot eol``) on the demo's model,
each in a fresh interpreter with one thread, the two libraries taken ABAB (the wall time, the
seconds spent in the run past the horizon inside the process, and those spent in the model's step
loop, ``FeedbackRNN._run_steps``, by the forecast's rollouts and that run), and compares what
they wrote: the forecast and its end-of-life table, evaluate's metrics, calibrate's model file.

    python benchmarks/eol_run.py --base REV --model out/coating.safetensors [--repeat 3] [--name eol-run]

``--model``: a model trained as the demo trains it (``make demo`` writes out/coating.safetensors;
its calibration is replaced by each run's calibrate). REV is checked out in a scratch git
worktree; both libraries run on this virtual environment's packages. Writes
results/NAME.json (eol-run.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import base_and_this, header, in_turn, medians, say, write_result  # noqa: E402

# the demo's commands (scripts/demo.sh), on the calibrated copy of the model
COMMANDS = {
    "calibrate": ["calibrate", "coating_calibration.csv", "-m", "given.safetensors", "--context", "40",
                  "--bins", "4", "--threshold", "0.6", "--eol-interval", "-o", "m.safetensors", "--quiet"],
    "evaluate": ["evaluate", "coating_test.csv", "-m", "m.safetensors", "--context", "40", "--threshold",
                 "0.6", "-o", "metrics.json", "--quiet"],
    "forecast": ["forecast", "plan.csv", "-m", "m.safetensors", "--threshold", "0.6", "--eol-out", "eol.csv",
                 "-o", "forecast.csv", "--quiet"],
    "plot eol": ["plot", "eol", "coating_test.csv", "-m", "m.safetensors", "--threshold", "0.6", "--context",
                 "40", "-o", "eol.png"],
}  # fmt: skip


# times every call of the run past the horizon inside the process, and every call of the model's
# step loop (forecast rollouts and that run alike; the same names in both libraries)
PRELUDE = """
from durability_cli import forecasting as _f
from durability_cli import model as _m
def _timing(key, run):
    EXTRA[key] = 0.0
    def timed(*args, **kwargs):
        t = time.perf_counter()
        try:
            return run(*args, **kwargs)
        finally:
            EXTRA[key] += time.perf_counter() - t
    return timed
_f._stretched_crossings = _timing("run_past_horizon_s", _f._stretched_crossings)
_m.FeedbackRNN._run_steps = _timing("step_loop_s", _m.FeedbackRNN._run_steps)
"""


def tables(work: Path) -> None:
    """The demo's three tables (scripts/demo.sh steps 3-5)."""
    from durability_cli.synthetic import make_coating

    test, _ = make_coating(seed=1)
    test.to_csv(work / "coating_test.csv", index=False)
    calib, _ = make_coating(seed=2)
    calib["specimen_id"] = "K" + calib["specimen_id"]
    calib.to_csv(work / "coating_calibration.csv", index=False)
    plan = test.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 40, "durability"] = float("nan")
    plan.to_csv(work / "plan.csv", index=False)


def compare(work: dict[str, Path]) -> dict:
    """What the two libraries wrote, side by side."""
    import numpy as np
    import pandas as pd

    out = {}
    eol = {name: pd.read_csv(w / "eol.csv") for name, w in work.items()}
    for col in ("eol_time", "prob_cross", "eol_p10", "eol_p50", "eol_p90"):
        a, b = (eol[n][col].to_numpy(float) for n in work)
        out[f"eol.csv {col}: rows that differ"] = int((~((a == b) | (np.isnan(a) & np.isnan(b)))).sum())
    out["eol.csv rows"] = len(eol["this"])
    fc = {name: pd.read_csv(w / "forecast.csv") for name, w in work.items()}
    out["forecast.csv identical"] = bool(fc["base"].equals(fc["this"]))
    metrics = {name: json.loads((w / "metrics.json").read_text()) for name, w in work.items()}
    for name, m in metrics.items():
        model = m["models"]["model"]
        out[f"evaluate {name}"] = {
            k: model.get(k) for k in ("rmse", "coverage_80", "eol_interval_coverage") if k in model
        }
    from durability_cli.api import load

    for name, w in work.items():
        out[f"calibrate {name}: eol shift"] = (
            load(w / "m.safetensors").summary["calibration"].get("eol") or {}
        ).get("shift")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (a git revision)")
    parser.add_argument(
        "--model", required=True, type=Path, help="the demo's model (out/coating.safetensors)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds of A then B")
    parser.add_argument("--name", default="eol-run", help="the result's name: results/NAME.json")
    args = parser.parse_args()

    result = header(args.name, False)
    with base_and_this(args.base) as (scratch, trees):
        work = {name: scratch / name / "work" for name in trees}
        for w in work.values():
            tables(w)
            shutil.copy(args.model, w / "given.safetensors")
        runs = in_turn(trees, scratch, COMMANDS, args.repeat, PRELUDE)
        outputs = compare(work)
    summary = medians(runs, COMMANDS)
    for command in COMMANDS:
        say(command, summary[command])
    say("outputs", outputs)
    result |= {"base": args.base, "commands": COMMANDS, "runs": runs, "summary": summary, "outputs": outputs}
    say("wrote", write_result(args.name, False, result))


if __name__ == "__main__":
    main()
