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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, base_and_this, header, in_turn, medians, say, write_result  # noqa: E402

COMMANDS = {
    "train": ["train", "small.csv", "--static", "material", "--epochs", "2", "--ensemble", "1",
              "--no-trend-line", "--jobs", "1", "-o", "m.safetensors", "--quiet"],
    "forecast": ["forecast", "small.csv", "-m", "m.safetensors", "--horizon", "5", "--hold-conditions",
                 "--samples", "50", "-o", "fc.csv", "--quiet"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (a git revision)")
    parser.add_argument("--repeat", type=int, default=4, help="rounds of A then B")
    args = parser.parse_args()
    import pandas as pd

    result = header("train-start", False)
    with base_and_this(args.base) as (scratch, trees):
        table = pd.read_csv(ROOT / "sample_data" / "coating.csv")
        keep = table.specimen_id.unique()[:12]
        for name in trees:
            table[table.specimen_id.isin(keep)].to_csv(scratch / name / "work" / "small.csv", index=False)
        runs = in_turn(trees, scratch, COMMANDS, args.repeat)
    summary = medians(runs, COMMANDS)
    for command in COMMANDS:
        summary[command]["imported_dynamo"] = {
            name: any(r["imported_dynamo"] for r in runs[name][command]) for name in runs
        }
        say(command, summary[command])
    result |= {"base": args.base, "commands": COMMANDS, "runs": runs, "summary": summary}
    say("wrote", write_result("train-start", False, result))


if __name__ == "__main__":
    main()
