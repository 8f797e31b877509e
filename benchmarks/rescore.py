"""Score the accuracy suite's saved models again, with the library's post-training rules of now.

Training is the expensive part of a suite run (10-15 minutes a seed on the synthetic sets); what
`train` decides after it, from the kept weights and the validation specimens (the band's
validation factor, training.scale_calibration), and all of forecasting, can be measured again
without it. For each run of each given results file (one set, its seeds), this loads the model
that run saved (``run.py --save-models DIR``: DIR/SET-sSEED.safetensors), recomputes each
member's ``scale_calibration`` on its validation specimens as `train` now would
(training._validation_scores), and scores the suite's test split and fresh specimens again
(accuracy.score_bundle, the same seeds). Everything else in the file (training times, curves,
baselines, the oracle) is kept. ``--keep-factor`` leaves the factor as saved: the scores must
then be the file's, to the last digit (a check that the model and the scoring are the same).

    python benchmarks/rescore.py --runs results/accuracy-decided-crack-s0.json --models DIR --tag boot

Writes results/accuracy-TAG-SET-sSEED.json per input file (the input's name with its tag
replaced), each saying what it was rescored from.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import (  # noqa: E402
    forecast_rows,
    fresh_split,
    score_bundle,
    score_split,
    summarise,
    warmup_lengths,
)
from benchmarks.common import RESULTS, code_version, jsonable, member_rows, one_thread, recorded_args  # noqa: E402
from durability_cli import scale_refit, training  # noqa: E402
from durability_cli.artifact import load_bundle  # noqa: E402
from durability_cli.data import to_series, to_tensors  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402


def recalibrate(bundle, train_df, schema) -> tuple[list[float], list[float]]:
    """Each member's validation factor as saved and as `train` computes it now, set in place."""
    before, after = [], []
    for m in bundle.members:
        held = member_rows(m, train_df)
        series = to_series(validate(held, schema, source="validation"))
        t = to_tensors(series, m.scaler)
        context = training.validation_warmup(m.train_config, np.asarray(series.lengths))
        spread = scale_refit.latent_spread(m.summary)
        (_, _, factor), _ = training._validation_scores(
            m.model.eval(), [(series, t)], m.scaler, context, spread
        )
        before.append(m.summary.get("scale_calibration"))
        m.summary["scale_calibration"] = factor
        after.append(factor)
    return before, after


def rescore(path: Path, models: Path, tag: str, keep_factor: bool) -> Path:
    r = json.loads(path.read_text())
    s = r["settings"]
    for name, d in r["datasets"].items():
        real = name in realdata.REAL_INFO
        split = realdata.split(name, seed=0) if real else make_split(name, s["n_train"], s["n_test"], seed=0)
        info = split["info"]
        test, clean = split["test"], split["test_clean"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        warmup = warmup_lengths(test, info)
        rows = forecast_rows(test, clean, warmup, info.target)
        fresh = fresh_split(name, d["fresh"]["test_specimens"], info) if d.get("fresh") else None
        for run in d["model"]["runs"]:
            seed = run["seed"]
            bundle = load_bundle(models / f"{name}-s{seed}.safetensors")
            factors = None if keep_factor else recalibrate(bundle, split["train"], schema)
            run["scores"], _ = score_bundle(bundle, test, clean, rows, warmup, info, seed, s["samples"])
            if fresh is not None and "scores_fresh" in run:
                run["scores_fresh"] = score_split(bundle, fresh, info, seed, s["samples"])
            run["rescored"] = {
                "scale_calibration_before": factors[0] if factors else None,
                "scale_calibration_after": factors[1] if factors else None,
                "keep_factor": keep_factor,
            }
        d["model"]["summary"] = summarise([run["scores"] for run in d["model"]["runs"]])
        if fresh is not None:
            d["fresh"]["summary"] = summarise([run["scores_fresh"] for run in d["model"]["runs"]])
    earlier = r.get("rescored_from")  # a file rescored before: keep its training run in the chain
    r["rescored_from"] = {
        "file": f"benchmarks/results/{path.name}",
        "command": f"{earlier['command']} ; then {r['command']}" if earlier else r["command"],
        "code": r["code"],
    }
    # this file's own command (the same as the call's for it alone), --models DIR
    own = ["--runs", f"benchmarks/results/{path.name}", "--models", str(models), "--tag", tag]
    r["command"] = "python benchmarks/rescore.py " + " ".join(
        recorded_args(own + (["--keep-factor"] if keep_factor else []))
    )
    r["code"] = code_version()
    r["date"] = dt.datetime.now().isoformat(timespec="seconds")
    old_tag = path.stem.split("-")[1]
    out = RESULTS / path.name.replace(f"accuracy-{old_tag}-", f"accuracy-{tag}-", 1)
    if out == path:
        raise SystemExit(f"rescore: {path.name} would be written over; give another --tag")
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(jsonable(r), indent=1, allow_nan=False) + "\n")
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="results/accuracy-TAG-SET-sSEED.json files")
    ap.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    ap.add_argument("--tag", required=True, help="the written files' tag")
    ap.add_argument("--keep-factor", action="store_true", help="keep the saved validation factor (a check)")
    a = ap.parse_args(argv)
    one_thread()
    for f in a.runs:
        print(rescore(Path(f), Path(a.models), a.tag, a.keep_factor), flush=True)


if __name__ == "__main__":
    main()
