"""Could training choose a narrower band by itself? (issue 14, session 10)

`train` scales the predicted spread by k = max(1, k_val), k_val the factor that makes the p10-p90
band cover 80 % of the validation specimens' free-running errors. Here the same model is trained
(the accuracy suite's split, 60 epochs, the set's warm-up as the validation warm-up, other options
default), and for the test, validation and training ("in-sample") specimens the |error| and the
predicted scale of every scored row are kept (``--arrays DIR``, one .npz per run). Then the test
coverage of the 80 % band under rules that training could apply:

- ``file``: what the model file holds now, max(1, k_val);
- ``train``: k_train, the training specimens' own factor (in-sample: optimistic);
- ``max(train,val)``: the larger of the two, narrowing allowed;
- ``train*1.3``: k_train with a fixed allowance for optimism;
- ``val``: k_val alone, narrowing allowed.

    python benchmarks/band_rules.py --sets ageing,device_b --seeds 0,1,2 --arrays band-arrays
    python benchmarks/band_rules.py --arrays band-arrays --no-train      # the rules again, no training

One JSON line per run on stdout and in results/band-rules.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "band-rules.jsonl"
Z80 = 1.2815515655446004  # the standard normal's 0.9 quantile


def save_run(name: str, seed: int, latent: int, epochs: int, arrays: Path) -> None:
    """Train one model and keep |error|, scale and z's spread per scored row of each specimen set."""
    from benchmarks import realdata
    from benchmarks.accuracy import model_config
    from benchmarks.band_diagnosis import spreads
    from durability_cli import training
    from durability_cli.config import TrainConfig
    from durability_cli.data import to_series, to_tensors
    from durability_cli.schema import Schema, validate
    from durability_cli.synthetic import make_split

    split = realdata.split(name, seed=0) if name in realdata.REAL_INFO else make_split(name, 32, 16, seed=0)
    info = split["info"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    cfg = TrainConfig(epochs=epochs, val_context=info.context, seed=seed, ensemble=1)
    bundle = training.train(validate(split["train"], schema, source="train"), model_config(name, latent), cfg)
    train = split["train"]
    val_ids = bundle.summary["val_specimens"]
    out = {"k_file": float(bundle.summary.get("scale_calibration") or 1.0)}
    for part, table in (
        ("test", split["test"]),
        ("val", train[train["specimen_id"].isin(val_ids)]),
        ("train", train[~train["specimen_id"].isin(val_ids)]),
    ):
        t = to_tensors(to_series(validate(table, schema, source=part)), bundle.scaler)
        err, scale, spread = spreads(bundle.model, t, info.context)
        out |= {f"{part}_err": err.numpy(), f"{part}_scale": scale.numpy(), f"{part}_spread": spread.numpy()}
    np.savez(arrays / f"z_{name}_{seed}_{latent}.npz", **out)


def rules(path: Path) -> dict:
    """Test coverage of the 80 % band under each rule, for one saved run."""
    d = np.load(path)
    name, seed, latent = path.stem.removeprefix("z_").rsplit("_", 2)  # z_SET_SEED_LATENT
    sd = {p: np.hypot(d[f"{p}_scale"], d[f"{p}_spread"]) for p in ("test", "val", "train")}
    k = {p: float(np.quantile(d[f"{p}_err"] / sd[p], 0.8)) / Z80 for p in sd}
    chosen = {
        "file": float(d["k_file"]),
        "train": k["train"],
        "max(train,val)": max(k["train"], k["val"]),
        "train*1.3": 1.3 * k["train"],
        "val": k["val"],
    }
    coverage = {r: round(float(np.mean(d["test_err"] <= Z80 * c * sd["test"])), 3) for r, c in chosen.items()}
    return {
        "set": name,
        "seed": int(seed),
        "latent": int(latent),
        "k_test": round(k["test"], 3),
        "k_train": round(k["train"], 3),
        "k_val": round(k["val"], 3),
        "coverage": coverage,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", default="ageing,coating,ball,battery,crack,device_b")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--latent", type=int, default=0)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--arrays", required=True, help="folder of the per-run arrays (.npz)")
    p.add_argument("--no-train", action="store_true", help="only evaluate the rules on the saved arrays")
    a = p.parse_args()
    arrays = Path(a.arrays)
    arrays.mkdir(parents=True, exist_ok=True)
    if not a.no_train:
        from benchmarks.common import one_thread

        one_thread()
        for name in a.sets.split(","):
            for seed in map(int, a.seeds.split(",")):
                save_run(name, seed, a.latent, a.epochs, arrays)
    for path in sorted(arrays.glob("z_*.npz")):
        row = rules(path)
        print(json.dumps(row), flush=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
