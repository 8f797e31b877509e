"""What an ensemble costs (issue 14): training and forecast time of ``--ensemble N`` over one model's,
measured in one process, interleaved (one model, the ensemble, one model, ...), so that the load of
a shared machine falls on both alike.

    python benchmarks/ensemble_cost.py                      # ball, N = 5, 2 repeats
    python benchmarks/ensemble_cost.py --dataset coating --members 3 --epochs 20

Writes results/ensemble-cost.json: the times of every repeat and the median ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, header, one_thread, say  # noqa: E402


def _repo_path(path: str) -> str:
    """``path`` relative to the repository when it lies inside it (results name no machine's paths)."""
    p = Path(path).resolve()
    return str(p.relative_to(common.ROOT)) if p.is_relative_to(common.ROOT) else path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="ball")
    p.add_argument("--members", type=int, default=5)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--out", default=str(RESULTS / "ensemble-cost.json"))
    args = p.parse_args(argv)
    common.CODE_AT_START = common.code_version()
    one_thread()
    from benchmarks.accuracy import model_config
    from durability_cli.config import TrainConfig
    from durability_cli.forecasting import ForecastConfig, forecast
    from durability_cli.schema import Schema, validate
    from durability_cli.synthetic import make_split
    from durability_cli.training import train

    split = make_split(args.dataset, 32, 16, seed=0)
    info = split["info"]
    schema = Schema("specimen_id", "time", info.target, info.covariates, info.static)
    ds = validate(split["train"], schema, source="train")
    plan = validate(split["test"], schema, source="test")
    train(ds, model_config(args.dataset), TrainConfig(epochs=1, val_context=info.context))  # warm-up
    times: dict[str, list[float]] = {"train_1": [], "train_n": [], "forecast_1": [], "forecast_n": []}
    for r in range(args.repeats):
        for n in (1, args.members):
            key = "1" if n == 1 else "n"
            cfg = TrainConfig(epochs=args.epochs, val_context=info.context, ensemble=n, patience=args.epochs)
            t0 = time.perf_counter()
            bundle = train(ds, model_config(args.dataset), cfg)
            times[f"train_{key}"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            forecast(bundle, plan, ForecastConfig(samples=args.samples), horizon=20, hold_conditions=True)
            times[f"forecast_{key}"].append(time.perf_counter() - t0)
            say(f"[ensemble-cost] repeat {r}, {n} member(s): train {times[f'train_{key}'][-1]:.1f} s")
    out = header("ensemble-cost", False) | {
        "settings": vars(args) | {"out": _repo_path(args.out)},
        "seconds": times,
        "train_ratio": statistics.median(times["train_n"]) / statistics.median(times["train_1"]),
        "forecast_ratio": statistics.median(times["forecast_n"]) / statistics.median(times["forecast_1"]),
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    say(
        f"[ensemble-cost] train x{out['train_ratio']:.2f}, forecast x{out['forecast_ratio']:.2f} -> {args.out}"
    )


if __name__ == "__main__":
    main()
