"""Every specimen for the final fit (issue 14), measured before it is built: does each ensemble
member gain from training again on the validation specimens too?

Each member of a default model holds out a fifth of the training specimens to choose its epoch.
With 64 training specimens instead of 32 crack's RMSE fell 18 % and coating's 13 % (notes.md,
session 34), so the held-out fifth looks like data the model is missing. The usual answer (scikit-
learn's ``refit``, a final fit after cross-validation) is to train once more on everything for the
length validation chose. This probe does that to the accuracy suite's saved models
(``run.py --save-models DIR``: DIR/SET-sSEED.safetensors) with the library's refit, what
``train --refit-all`` runs after its first pass (durability_cli/refit_all.py): member k is trained
again from its own start (its seed, its planned epochs and so the same cosine learning rate) on
every training specimen, no validation held out, and stopped at the epoch its first pass kept.
What the first pass measured on its validation specimens, the band's validation factor and the
end-of-life paces, is carried over; the scale head is refitted on the new fit's training
specimens as `train` does. (The same numbers as ``run.py --set refit_all=true``, which trains the
first pass again: laser seed 0, 0.7694 both ways.) The refitted models are written to --refitted DIR and scored by
``rescore.py --keep-factor`` on the run's test split and fresh specimens:

    python benchmarks/refit_all.py --runs results/accuracy-base35-coating-s0.json --models DIR --refitted DIR2

``--same-steps`` keeps each epoch's optimiser steps (a larger batch) instead of the batch.
Writes results/accuracy-refitall-SET-sSEED.json (``--same-steps``: refitallsteps) beside each input (rescore.py's file, with this
probe's command and the refit's times under ``refit_all``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.common import jsonable, one_thread, recorded_args  # noqa: E402
from benchmarks.rescore import rescore  # noqa: E402
from durability_cli import refit_all  # noqa: E402
from durability_cli.artifact import load_bundle, save_bundle  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402

TAG = "refitall"


def refit(bundle, table, same_steps: bool = False) -> tuple[object, list[dict]]:
    """Every member of ``bundle`` trained again on all of ``table`` to its first pass's epoch
    (the library's ``refit_all.refit``, what ``train --refit-all`` runs after its first pass).
    ``same_steps``: each member's batch made ceil(all specimens / its first pass's optimiser steps
    per epoch), so that its epochs make as many steps as before (the library keeps the batch, and
    on the small measured sets, whose automatic batch was one step of the training specimens, an
    epoch of the refit then makes two)."""
    if same_steps:
        for m in bundle.members:
            n_fit, n_val = len(m.summary["train_specimens"]), len(m.summary["val_specimens"])
            steps = math.ceil(n_fit / m.train_config.batch_size)
            m.train_config = replace(m.train_config, batch_size=math.ceil((n_fit + n_val) / steps))
    out = refit_all.refit(table, bundle)
    said = [
        {
            "seed": m.train_config.seed,
            "epochs": m.summary["refit_all"]["epochs"],
            "of": m.train_config.epochs,
            "seconds": m.summary["refit_all"]["seconds"],
        }
        for m in out.members
    ]
    return out, said


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="results/accuracy-TAG-SET-sSEED.json files")
    ap.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    ap.add_argument("--refitted", required=True, help="DIR for the refitted models")
    ap.add_argument(
        "--same-steps", action="store_true", help="refit with a batch that keeps each epoch's optimiser steps"
    )
    a = ap.parse_args(argv)
    one_thread()
    out = Path(a.refitted)
    out.mkdir(parents=True, exist_ok=True)
    for f in a.runs:
        r = json.loads(Path(f).read_text())
        for name, d in r["datasets"].items():
            split = (
                realdata.split(name, seed=0)
                if name in realdata.REAL_INFO
                else make_split(name, r["settings"]["n_train"], r["settings"]["n_test"], seed=0)
            )
            info = split["info"]
            schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
            table = validate(split["train"], schema, source=f"{name}-train")
            said = {}
            for run in d["model"]["runs"]:
                seed = run["seed"]
                bundle = load_bundle(Path(a.models) / f"{name}-s{seed}.safetensors")
                refitted, said[seed] = refit(bundle, table, a.same_steps)
                save_bundle(refitted, out / f"{name}-s{seed}.safetensors")
        written = rescore(Path(f), out, TAG + "steps" * a.same_steps, keep_factor=True)
        w = json.loads(written.read_text())
        w["command"] = "python benchmarks/refit_all.py " + " ".join(
            recorded_args(
                [
                    "--runs",
                    f"benchmarks/results/{Path(f).name}",
                    "--models",
                    a.models,
                    "--refitted",
                    a.refitted,
                ]
            )
        )
        w["refit_all"] = {str(k): v for k, v in said.items()}
        tmp = written.with_suffix(".tmp")
        tmp.write_text(json.dumps(jsonable(w), indent=1, allow_nan=False) + "\n")
        tmp.replace(written)
        print(written, flush=True)


if __name__ == "__main__":
    main()
