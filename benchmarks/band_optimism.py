"""How optimistic is the band's validation factor? (issue 14, session 31)

``train`` widens each member's 80 % band by the factor its validation specimens need
(training.scale_calibration: the 0.8 quantile of |error / scale| over their free-running rows
over 1.2816, never below 1). Those few specimens (6 per member on the suite's sets) also chose
the member's early-stopping epoch and the line's vote. This script loads models saved by the
accuracy suite (``run.py --save-models DIR``: DIR/SET-sSEED.safetensors) and reports, per member:

- ``k_val``: the factor its own validation specimens need (recomputed from the training table;
  ``max(1, k_val)`` is what the file holds, checked);
- ``k_new``: the factor new specimens need, on two draws: 64 from generator seed
  benchmarks.calibration.TEST_SEED (``test``) and the suite's 96 fresh ones (``fresh``); a
  measured set has no new specimens, so its test split (``split``), from the suite's warm-up;
- the bootstrap of ``k_val`` over the validation specimens (200 resamples, seed 0): its 0.8 and
  0.9 quantiles, a one-sided bound for a factor measured on 6 specimens;

and, for the whole model, the 80 % band's coverage and the end-of-life 80 % interval's coverage
(``evaluate``'s rule) on both draws with each member's factor as trained (``current``) and as the
bootstrap's 0.8 or 0.9 quantile (at least 1): whether such a rule would bring the bands nearer
80 % without training again.

    python benchmarks/band_optimism.py --models DIR --sets crack,coating,battery,ageing --seeds 0,1,2

One JSON line per set and seed, appended to results/band-optimism.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import fresh_split  # noqa: E402
from benchmarks.calibration import TEST_SEED, new_specimens, scores  # noqa: E402
from benchmarks.common import RESULTS, code_version, member_rows, one_thread  # noqa: E402
from durability_cli import scale_refit, training  # noqa: E402
from durability_cli.api import load  # noqa: E402
from durability_cli.data import to_series, to_tensors  # noqa: E402
from durability_cli.schema import Schema, validate  # noqa: E402
from durability_cli.synthetic import make_split  # noqa: E402

RESAMPLES = 200


def specimen_z(member, table, schema, context=None) -> list[torch.Tensor]:
    """The member's |error / scale| on ``table``'s specimens forecast from ``context`` rows (None:
    the member's validation warm-up, rows or a share of each specimen's), one tensor per specimen
    (its scored rows)."""
    series = to_series(validate(table, schema, source="scored"))
    t = to_tensors(series, member.scaler)
    if context is None:
        context = training.validation_warmup(member.train_config, np.asarray(series.lengths))
    ctx = training.warmup_tensor(t, context)
    with torch.no_grad():
        z = training._free_run_errors(
            member.model.eval(), t, context, spread=scale_refit.latent_spread(member.summary)
        )[2]
    return list(torch.split(z, training.scored_rows(t, ctx).sum(dim=1).tolist()))


def factor(parts: list[torch.Tensor]) -> float:
    return scale_refit.needed_factor(torch.cat(parts))


def bootstrap(parts: list[torch.Tensor], quantiles) -> list[float]:
    """Quantiles of the factor over resamples of the specimens (with replacement)."""
    rng = np.random.default_rng(0)
    draws = [factor([parts[i] for i in rng.integers(0, len(parts), len(parts))]) for _ in range(RESAMPLES)]
    return [float(np.quantile(draws, q)) for q in quantiles]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", required=True, help="DIR of SET-sSEED.safetensors (run.py --save-models)")
    ap.add_argument("--sets", default="crack,coating,battery,ageing")
    ap.add_argument("--seeds", default="0,1,2")
    a = ap.parse_args()
    one_thread()
    for name in a.sets.split(","):
        real = name in realdata.REAL_INFO
        split = realdata.split(name, seed=0) if real else make_split(name, 32, 16, seed=0)
        info, train = split["info"], split["train"]
        schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
        if real:  # no new specimens: the suite's test split, from its warm-up
            draws = {"split": validate(split["test"], schema, source="test")}
            cut = {"context_frac": info.warmup_fraction} if info.warmup is None else {"context": info.warmup}
            context = info.warmup  # None: a share of each specimen's rows, as its validation
        else:
            draws = {
                "test": new_specimens(name, 64, TEST_SEED, "test-", schema),
                "fresh": validate(fresh_split(name, 96, info)["test"], schema, source="fresh"),
            }
            context, cut = info.context, {"context": info.context}
        for seed in (int(s) for s in a.seeds.split(",")):
            model = load(Path(a.models) / f"{name}-s{seed}.safetensors")
            members = model.bundle.members
            stored = [float(m.summary.get("scale_calibration") or 1.0) for m in members]
            rows, rules = [], {"current": stored, "boot80": [], "boot90": []}
            for m in members:
                val = specimen_z(m, member_rows(m, train), schema)
                b80, b90 = bootstrap(val, (0.8, 0.9))
                row = {"k_val": factor(val), "boot80": b80, "boot90": b90}
                for d, ds in draws.items():
                    row[f"k_{d}"] = factor(specimen_z(m, ds.frame, schema, context))
                rows.append({k: round(v, 4) for k, v in row.items()})
                rules["boot80"].append(max(1.0, b80))
                rules["boot90"].append(max(1.0, b90))
            assert all(abs(max(1.0, r["k_val"]) - s) < 1e-3 for r, s in zip(rows, stored, strict=True)), (
                f"the recomputed validation factor differs from the file's: {rows} {stored}"
            )
            out = {"set": name, "seed": seed, "commit": code_version()["commit"], "members": rows}
            for rule, ks in rules.items():
                for m, k in zip(members, ks, strict=True):
                    m.summary["scale_calibration"] = float(k)
                for d, ds in draws.items():
                    out[f"{rule}/{d}"] = scores(model, ds, info, cut)
            for m, k in zip(members, stored, strict=True):
                m.summary["scale_calibration"] = k
            print(json.dumps(out), flush=True)
            with open(RESULTS / "band-optimism.jsonl", "a") as fh:
                fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
