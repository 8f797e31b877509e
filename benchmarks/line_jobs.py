"""`durability train --jobs 2` against `--jobs 1`: wall time of the default training, and the same model.

The default `--trend-line auto` trains two candidates. With `--jobs 2` the line's candidate trains
in a second process beside the other (durability_cli/aside.py). Where the line is not chosen
between (`--latent auto` gives long warm-ups a latent with the line), the ensemble's members
cannot train stacked and train one after the other; with `--jobs 2` a share of them trains in the
second process (durability_cli/ensemble.py). This runs the real command on a set's whole table,
default options (plus `--flags`), once with each `--jobs` per repeat (the order alternating, so
that a drift of the shared machine's speed falls on both), and records each run's wall time, the
ratio of the medians, and whether the two model files hold the same tensors.

    python benchmarks/line_jobs.py --sets laser,alloy_a,device_b --repeats 2
    python benchmarks/line_jobs.py --sets ageing --repeats 1          # the suite's ageing training table
    python benchmarks/line_jobs.py --sets laser --flags "--latent 2 --trend-line"
    python benchmarks/line_jobs.py --sets laser --flags=--refit-all   # the refit's members too

With `--refit-all` each row also holds the refit's own wall time per run (`refit_seconds_jobs1`,
`refit_seconds_jobs2`: the members one after the other, or shared among the processes).

A set is a measured one (benchmarks/data), a bundled sample (sample_data/NAME.csv) or a synthetic
set of the accuracy suite (`ageing`, `crack`, ...: its training table, generated as the suite
does, validated on the suite's warm-up).

Appends one JSON line per set to results/line-jobs.jsonl. Meaningful only on a machine with at
least two free cores (`--jobs 2` on one core takes as long as `--jobs 1`, or longer).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import realdata  # noqa: E402
from benchmarks.accuracy import FULL  # noqa: E402
from benchmarks.common import code_version  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "line-jobs.jsonl"
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
# the bundled samples' flags, as README.md's quick start trains them
SAMPLE_FLAGS = {"coating": ["--static", "material"], "ball": ["--target", "height", "--lags", "3"]}


def table_and_flags(name: str, tmp: Path) -> tuple[Path, list[str]]:
    """A set's whole table and the flags that name its columns (a measured set, a synthetic set's
    training table as the accuracy suite makes it, written to ``tmp``, or sample_data/NAME.csv)."""
    from durability_cli.synthetic import DATASETS, make_split

    if name in realdata.REAL_INFO:
        info = realdata.REAL_INFO[name]
        return realdata.DATA / f"{name}.csv", ["--target", info.target]
    if name in DATASETS:
        size = FULL
        split = make_split(name, size["n_train"], size["n_test"], seed=0)
        path = tmp / f"{name}-train.csv"
        split["train"].to_csv(path, index=False)
        info = split["info"]
        statics = [flag for col in info.static for flag in ("--static", col)]
        return path, [*statics, "--val-context", str(info.context)]
    return SAMPLE / f"{name}.csv", SAMPLE_FLAGS.get(name, [])


def train(data: Path, flags: list[str], jobs: int, out: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "durability_cli",
        "train",
        str(data),
        *flags,
        "--jobs",
        str(jobs),
        "-q",
        "-o",
        str(out),
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - start


def refit_wall(out: Path) -> float | None:
    """How long a model's --refit-all took (wall time: its members' sum in one process, the
    shares' time at once in several); None without the refit."""
    from durability_cli.artifact import load_bundle

    s = load_bundle(out).summary
    wall = s.get("refit_all_wall_seconds", s.get("refit_all_seconds"))
    return None if wall is None else round(wall, 2)


def same_tensors(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(bool((x[k] == y[k]).all()) for k in x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="laser,alloy_a,device_b")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--flags", default="", help="more options for both runs, e.g. '--latent 2 --trend-line'")
    args = ap.parse_args()
    for name in args.sets.split(","):
        seconds: dict[int, list[float]] = {1: [], 2: []}
        refits: dict[int, list[float | None]] = {1: [], 2: []}
        with tempfile.TemporaryDirectory() as tmp:
            data, flags = table_and_flags(name, Path(tmp))
            flags += args.flags.split()
            for r in range(args.repeats):
                for jobs in (1, 2) if r % 2 == 0 else (2, 1):
                    out = Path(tmp) / f"j{jobs}.safetensors"
                    seconds[jobs].append(round(train(data, flags, jobs, out), 2))
                    refits[jobs].append(refit_wall(out))
            same = same_tensors(Path(tmp) / "j1.safetensors", Path(tmp) / "j2.safetensors")
        one, two = statistics.median(seconds[1]), statistics.median(seconds[2])
        row = {
            "set": name,
            "flags": flags,
            "seconds_jobs1": seconds[1],
            "seconds_jobs2": seconds[2],
            "ratio_jobs2_over_jobs1": round(two / one, 3),
            "same_model": same,
            **(
                {"refit_seconds_jobs1": refits[1], "refit_seconds_jobs2": refits[2]}
                if any(x is not None for x in refits[1])
                else {}
            ),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
            "code": code_version(),
        }
        print(json.dumps(row))
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
