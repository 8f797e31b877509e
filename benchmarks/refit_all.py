"""Every specimen for the final fit (issue 14), measured before it is built: does each ensemble
member gain from training again on the validation specimens too?

Each member of a default model holds out a fifth of the training specimens to choose its epoch.
With 64 training specimens instead of 32 crack's RMSE fell 18 % and coating's 13 % (notes.md,
session 34), so the held-out fifth looks like data the model is missing. The usual answer (scikit-
learn's ``refit``, a final fit after cross-validation) is to train once more on everything for the
length validation chose. This probe does that to the accuracy suite's saved models
(``run.py --save-models DIR``: DIR/SET-sSEED.safetensors): member k is trained again from its own
start (its seed, its planned epochs and so the same cosine learning rate) on every training
specimen, no validation held out, and stopped at the epoch its first pass kept (the stop is made by
wrapping ``training._close_epoch``: every epoch counts as the best, and the run ends at that
epoch). What the first pass measured on its validation specimens, the band's validation factor and
the end-of-life paces, is carried over; the scale head is refitted on the new fit's training
specimens as `train` does. The refitted models are written to --refitted DIR and scored by
``rescore.py --keep-factor`` on the run's test split and fresh specimens:

    python benchmarks/refit_all.py --runs results/accuracy-base35-coating-s0.json --models DIR --refitted DIR2

Writes results/accuracy-refitall-SET-sSEED.json beside each input (rescore.py's file, with this
probe's command and the refit's times under ``refit_all``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.common import jsonable, one_thread, recorded_args  # noqa: E402
from benchmarks.rescore import rescore  # noqa: E402
from durability_cli import training  # noqa: E402
from durability_cli.artifact import load_bundle, save_bundle  # noqa: E402
from durability_cli.ensemble import combine  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402

TAG = "refitall"


class _StopAt:
    """``training._close_epoch`` wrapped: every epoch is the best (the weights kept are the last)
    and the run ends after epoch ``stop``."""

    def __init__(self):
        self.stop = 0
        self.original = training._close_epoch

    def __call__(self, state, val_rmse, *args, **kwargs):
        log = self.original(state, -(state.epoch + 1.0), *args, **kwargs)
        if state.epoch >= self.stop:
            state.stale = 10**9
        return log


def refit(bundle, table, stop: _StopAt) -> tuple[object, list[dict]]:
    """Every member of ``bundle`` trained again on all of ``table`` to its first pass's epoch."""
    members, said = [], []
    for m in bundle.members:
        stop.stop = max(1, int(m.summary["best_epoch"]))
        cfg = replace(m.train_config, val_fraction=0.0, ensemble=1, patience=m.train_config.epochs + 1)
        t0 = time.perf_counter()
        b = training.train_one(table, bundle.model_config, cfg)
        b.summary["scale_calibration"] = m.summary["scale_calibration"]
        b.summary["eol_warp"] = m.summary["eol_warp"]
        said.append(
            {
                "seed": cfg.seed,
                "epochs": b.summary["epochs_run"],
                "of": cfg.epochs,
                "seconds": round(time.perf_counter() - t0, 1),
                "first_pass_seconds": m.summary.get("train_seconds"),
            }
        )
        members.append(b)
    out = combine(members)
    out.summary["trend_line_auto"] = bundle.summary.get("trend_line_auto")
    return out, said


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="results/accuracy-TAG-SET-sSEED.json files")
    ap.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    ap.add_argument("--refitted", required=True, help="DIR for the refitted models")
    a = ap.parse_args(argv)
    one_thread()
    stop = _StopAt()
    training._close_epoch = stop
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
                refitted, said[seed] = refit(bundle, table, stop)
                save_bundle(refitted, out / f"{name}-s{seed}.safetensors")
        written = rescore(Path(f), out, TAG, keep_factor=True)
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
