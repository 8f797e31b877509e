"""Benchmark suites of issues 5 and 7: accuracy (vs baselines and Darts), speed and memory, cost
curves, and the memory of chunked forecasts as specimens grow.

    python benchmarks/run.py                 # everything, full size (~25 min on 2 cores)
    python benchmarks/run.py --quick         # one seed, fewer epochs, smaller sizes (a few minutes)
    python benchmarks/run.py --only speed    # accuracy, speed, curves, streaming, measured-splits
    python benchmarks/run.py --report        # only re-render RESULTS.md from results/*.json
    python benchmarks/run.py --only accuracy --datasets device_b --merge
                                             # one dataset, the others kept in results/accuracy.json

Each suite writes benchmarks/results/<suite>.json (<suite>-quick.json with --quick); RESULTS.md is
then rendered from every result file present. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks import common  # noqa: E402
from benchmarks.common import one_thread, result_path, say, write_result  # noqa: E402

SUITES = ("accuracy", "speed", "curves", "streaming", "measured-splits")


def _latent(text: str) -> int | str:
    """--latent: "auto" or a size (config.auto_number), a bad one an argparse error."""
    from durability_cli.config import auto_number
    from durability_cli.errors import InputError

    try:
        return auto_number("latent", text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs, smaller sizes")
    parser.add_argument(
        "--only",
        default=",".join(SUITES),
        help="suites to run: accuracy,speed,curves,streaming,measured-splits",
    )
    parser.add_argument(
        "--datasets",
        default="coating,ball,battery,crack,ageing,device_b,alloy_a,laser,luminosity",
        help="accuracy datasets (comma-separated; device_b, alloy_a, laser and luminosity are measured data, benchmarks/data/README.md)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="accuracy: keep the other datasets of the existing results file (each keeps its own run's command, date and commit)",
    )
    parser.add_argument("--no-darts", action="store_true", help="skip the Darts peer")
    parser.add_argument(
        "--darts-budget", type=float, default=1.0, help="Darts' training wall time / the durability model's"
    )
    parser.add_argument(
        "--seeds", default=None, help="accuracy training seeds, e.g. 0,1,2 (default: by mode)"
    )
    parser.add_argument(
        "--tag",
        default=None,
        help="write results/<suite>-<tag>.json (a side experiment RESULTS.md does not render)",
    )
    parser.add_argument(
        "--latent",
        type=_latent,
        default=None,
        help="accuracy: the durability model with a per-specimen latent of this size, or auto "
        "(default: train's; a side experiment: add --tag)",
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=0,
        help="accuracy: the durability model as an ensemble of this many members; 0 = train's default "
        "(auto: 5 where fewer than 15 specimens validate, as on every set here); 1 = one model (add --tag)",
    )
    parser.add_argument(
        "--latent-prior",
        type=float,
        default=None,
        help="accuracy, with --latent: the weight of the prior on z (default: the model's)",
    )
    parser.add_argument(
        "--monotonic",
        default="none",
        choices=("none", "decreasing", "increasing"),
        help="accuracy: the durability model trained --monotonic (a side experiment: add --tag)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="accuracy: the durability model's --epochs (default 0: train's auto length, as train's default; --quick: 6)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=None,
        help="accuracy: the durability model's --patience (default: train's auto, half the epochs, at least 30)",
    )
    parser.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="accuracy: any other ModelConfig/TrainConfig field of the durability model, e.g. "
        "--set batch_size=16 (repeatable; a side experiment: add --tag)",
    )
    parser.add_argument(
        "--fresh-test",
        type=int,
        default=None,
        metavar="N",
        help="accuracy: also score each run on N new specimens of each synthetic set's generator "
        "(scores_fresh; the suite's own test set is 16 specimens; default 96, --quick 0)",
    )
    parser.add_argument(
        "--member-paths",
        default=None,
        metavar="DIR",
        help="accuracy: write each run's members' mean paths on the fresh (else the suite's) test "
        "specimens to DIR/<set>-s<seed>.parquet, for studies that combine members",
    )
    parser.add_argument(
        "--save-models",
        default=None,
        metavar="DIR",
        help="accuracy: write each run's trained model to DIR/<set>-s<seed>.safetensors (e.g. for "
        "benchmarks/eol_pace.py --models DIR: forecast-side rules rescored without training again)",
    )
    parser.add_argument(
        "--train-specimens",
        type=int,
        default=None,
        metavar="N",
        help="accuracy: train each synthetic set on N specimens instead of 32 (the test and fresh "
        "specimens are drawn as before; measured sets keep their splits; a side experiment: add --tag)",
    )
    parser.add_argument(
        "--context",
        type=int,
        default=None,
        metavar="ROWS",
        help="accuracy: warm up every test specimen (and validate) from this many rows instead of "
        "each synthetic set's own context (measured sets keep theirs; a side experiment: add --tag)",
    )
    parser.add_argument("--report", action="store_true", help="only re-render RESULTS.md")
    args = parser.parse_args(argv)
    common.CODE_AT_START = common.code_version()  # before anything imports durability_cli
    options = {}
    if args.options:
        from benchmarks.accuracy import parse_options

        try:
            options = parse_options(args.options)
        except ValueError as e:
            parser.error(str(e))  # one line, exit 2, before any suite runs
    one_thread()
    from benchmarks import report

    if not args.report:
        chosen = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in SUITES]
        if unknown:
            parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        for suite in chosen:
            t0 = time.perf_counter()
            stem = suite if not args.tag else f"{suite}-{args.tag}"
            say(f"== {suite} ({'quick' if args.quick else 'full'}) ==")
            if suite == "accuracy":
                from benchmarks import accuracy

                names = [d.strip() for d in args.datasets.split(",") if d.strip()]
                seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
                payload = accuracy.run(
                    args.quick,
                    names,
                    not args.no_darts,
                    args.darts_budget,
                    seeds,
                    latent=args.latent,
                    ensemble=args.ensemble,
                    latent_prior=args.latent_prior,
                    monotonic=args.monotonic,
                    epochs=args.epochs,
                    patience=args.patience,
                    options=options,
                    fresh_test=args.fresh_test,
                    member_paths=args.member_paths,
                    save_models=args.save_models,
                    context=args.context,
                    train_specimens=args.train_specimens,
                )
                if args.merge:
                    merge_datasets(payload, result_path(stem, args.quick))
            elif suite == "speed":
                from benchmarks import speed

                payload = speed.run(args.quick)
            elif suite == "curves":
                from benchmarks import curves

                payload = curves.run(args.quick)
            elif suite == "measured-splits":
                from benchmarks import measured_splits

                payload = measured_splits.run(args.quick)
            else:
                from benchmarks import streaming

                payload = streaming.run(args.quick)
            payload["suite_wall_seconds"] = time.perf_counter() - t0
            path = write_result(stem, args.quick, payload)
            say(f"== {suite}: {time.perf_counter() - t0:.0f} s -> {path}")
    path = report.render()
    say(f"wrote {path}")
    return 0


def merge_datasets(payload: dict, path: Path) -> None:
    """Keep in ``payload`` the datasets of the results file at ``path`` that it did not measure,
    in their order, each stamped (once) with the command, date, commit and settings of its run."""
    if not path.exists():
        return
    old = json.loads(path.read_text())
    merged = {
        name: payload["datasets"].get(name) or ({"run": common.dataset_run(old, entry)} | entry)
        for name, entry in old.get("datasets", {}).items()
    }
    merged |= payload["datasets"]
    kept = [name for name in merged if name not in payload["datasets"]]
    payload["datasets"] = merged
    say(f"kept {', '.join(kept) or 'no other datasets'} from {path.name}")


if __name__ == "__main__":
    sys.exit(main())
