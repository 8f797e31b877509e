"""Benchmark suites of issues 5 and 7: accuracy (vs baselines and Darts), speed and memory, cost
curves, and the memory of chunked forecasts as specimens grow.

    python benchmarks/run.py                 # everything, full size (~25 min on 2 cores)
    python benchmarks/run.py --quick         # one seed, fewer epochs, smaller sizes (a few minutes)
    python benchmarks/run.py --only speed    # accuracy, speed, curves, streaming (comma-separated)
    python benchmarks/run.py --report        # only re-render RESULTS.md from results/*.json

Each suite writes benchmarks/results/<suite>.json (<suite>-quick.json with --quick); RESULTS.md is
then rendered from every result file present. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks import common  # noqa: E402
from benchmarks.common import one_thread, say, write_result  # noqa: E402

SUITES = ("accuracy", "speed", "curves", "streaming")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one seed, fewer epochs, smaller sizes")
    parser.add_argument(
        "--only", default=",".join(SUITES), help="suites to run: accuracy,speed,curves,streaming"
    )
    parser.add_argument(
        "--datasets", default="coating,ball,battery,crack,ageing", help="accuracy datasets (comma-separated)"
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
    parser.add_argument("--report", action="store_true", help="only re-render RESULTS.md")
    args = parser.parse_args(argv)
    common.CODE_AT_START = common.code_version()  # before anything imports durability_cli
    one_thread()
    from benchmarks import report

    if not args.report:
        chosen = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in SUITES]
        if unknown:
            parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        for suite in chosen:
            t0 = time.perf_counter()
            say(f"== {suite} ({'quick' if args.quick else 'full'}) ==")
            if suite == "accuracy":
                from benchmarks import accuracy

                names = [d.strip() for d in args.datasets.split(",") if d.strip()]
                seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else None
                payload = accuracy.run(args.quick, names, not args.no_darts, args.darts_budget, seeds)
            elif suite == "speed":
                from benchmarks import speed

                payload = speed.run(args.quick)
            elif suite == "curves":
                from benchmarks import curves

                payload = curves.run(args.quick)
            else:
                from benchmarks import streaming

                payload = streaming.run(args.quick)
            payload["suite_wall_seconds"] = time.perf_counter() - t0
            path = write_result(suite if not args.tag else f"{suite}-{args.tag}", args.quick, payload)
            say(f"== {suite}: {time.perf_counter() - t0:.0f} s -> {path}")
    path = report.render()
    say(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
