"""What a short ``durability train`` and ``forecast`` pay before their work: this library against
an earlier commit's, taken in turn in fresh processes.

torch.optim's Optimizer imports ``torch._dynamo`` (about 2,000 modules) when it is built and in its
step; so do torch's Python kernels for the meta device, where a model file's shapes are checked.
durability_cli/adam.py and durability_cli/model.py avoid both. This times what that saves on
the commands a user and the test suite run most: a 2-epoch training of one model on a 12-specimen
slice of the coating sample (``--jobs 1``, so that one process is timed), then a forecast of its
specimens 5 rows on, each in a fresh interpreter with one thread, the two libraries taken ABAB.
Each process also says whether it imported torch._dynamo.

    python benchmarks/train_start.py --base REV [--repeat 4]

REV is checked out in a scratch git worktree; both libraries run on this virtual environment's
packages. Writes results/train-start.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, header, say, write_result  # noqa: E402

SCRIPT = """
import sys, time
t0 = time.perf_counter()
import durability_cli
from durability_cli.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(durability_cli.__file__, "torch._dynamo" in sys.modules, time.perf_counter() - t0)
"""

COMMANDS = {
    "train": ["train", "small.csv", "--static", "material", "--epochs", "2", "--ensemble", "1",
              "--no-trend-line", "--jobs", "1", "-o", "m.safetensors", "--quiet"],
    "forecast": ["forecast", "small.csv", "-m", "m.safetensors", "--horizon", "5", "--hold-conditions",
                 "--samples", "50", "-o", "fc.csv", "--quiet"],
}  # fmt: skip


def run(tree: Path, command: list[str], work: Path) -> dict:
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env |= {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "DURABILITY_JOBS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} in {tree} failed: {proc.stderr[-2000:]}")
    where, dynamo, inside = proc.stdout.split()[-3:]
    if not Path(where).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree}'s run imported the library from {where}")
    return {"wall_s": wall, "in_process_s": float(inside), "imported_dynamo": dynamo == "True"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (a git revision)")
    parser.add_argument("--repeat", type=int, default=4, help="rounds of A then B")
    args = parser.parse_args()
    import pandas as pd

    result = header("train-start", False)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base = scratch / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True
        )
        try:
            trees = {"base": base, "this": ROOT}
            table = pd.read_csv(ROOT / "sample_data" / "coating.csv")
            keep = table.specimen_id.unique()[:12]
            for name in trees:
                (scratch / name / "work").mkdir(parents=True, exist_ok=True)
                table[table.specimen_id.isin(keep)].to_csv(scratch / name / "work" / "small.csv", index=False)
            runs: dict = {name: {c: [] for c in COMMANDS} for name in trees}
            for round_ in range(args.repeat):
                for name, tree in trees.items():
                    for command, argv in COMMANDS.items():
                        runs[name][command].append(run(tree, argv, scratch / name / "work"))
                    say(
                        f"round {round_ + 1}: {name}",
                        {c: round(r[-1]["wall_s"], 2) for c, r in runs[name].items()},
                    )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    summary = {}
    for command in COMMANDS:
        med = {name: statistics.median(r["wall_s"] for r in runs[name][command]) for name in runs}
        summary[command] = {
            "median_wall_s": med,
            "ratio_this_over_base": med["this"] / med["base"],
            "saved_s": med["base"] - med["this"],
            "imported_dynamo": {
                name: any(r["imported_dynamo"] for r in runs[name][command]) for name in runs
            },
        }
        say(command, summary[command])
    result |= {"base": args.base, "commands": COMMANDS, "runs": runs, "summary": summary}
    say("wrote", write_result("train-start", False, result))


if __name__ == "__main__":
    main()
