"""What a plan with a few long specimens costs: this library against an earlier commit's, taken in
turn in fresh processes (issue 14, session 51).

A batch of the forecast's rollout runs as many steps as its longest specimen. Until session 51 its
chunks were runs of neighbours in the table, each as long as the table's longest specimen; since
then specimens of like lengths share a chunk (forecasting.chunk_plan), each chunk as long as its
own longest. The plan is tests/test_memory.py's: a model trained on 8 coating specimens (40 rows,
1 epoch, hidden 8) forecasting 4,800 new ones, 20 measured rows and 40 future rows each, with 200
paths and an end of life at 0.6. ``--max-step auto`` cuts 3,376 of its future steps (460
specimens, up to 291 rows), ``off`` runs them as given (every specimen 60 rows): the ratio auto /
off within one library is what the grouping moves. Both libraries' tables are compared.

    python benchmarks/chunk_lengths.py --base REV [--repeat 2] [--specimens 4800] [--name chunk-lengths]

REV is checked out in a scratch git worktree; both libraries run on this virtual environment's
packages, one thread each. Writes results/NAME.json (chunk-lengths.json).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import base_and_this, header, in_turn, medians, say, write_result  # noqa: E402
from durability_cli.synthetic import make_coating  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "coating.csv"


def commands() -> dict[str, list[str]]:
    return {
        f"forecast {how}": ["forecast", "plan.parquet", "-m", "m.safetensors", "--samples", "200",
                            "--threshold", "0.6", "--eol-out", f"eol-{how}.csv", "-o", f"fc-{how}.parquet",
                            "--max-step", how, "--quiet"]
        for how in ("off", "auto")
    }  # fmt: skip


def tables(work: Path, specimens: int) -> None:
    """The training table and the plan, as tests/test_memory.py makes them."""
    df = pd.read_csv(SAMPLE)
    first = sorted(df.specimen_id.unique())[:8]
    df = df[df.specimen_id.isin(first) & (df.groupby("specimen_id").cumcount() < 40)]
    df.to_csv(work / "tiny.csv", index=False)
    noisy, _ = make_coating(n_specimens=specimens, seed=3, missing_fraction=0.0, irregular_fraction=0.0)
    noisy = noisy[noisy.groupby("specimen_id").cumcount() < 60].copy()
    noisy.loc[noisy.groupby("specimen_id").cumcount() >= 20, "durability"] = np.nan
    noisy.to_parquet(work / "plan.parquet")


def compare(work: dict[str, Path]) -> dict:
    """Whether both libraries wrote the same tables (forecasts equal exactly, end-of-life bytes)."""
    same = {}
    for how in ("off", "auto"):
        a, b = (pd.read_parquet(w / f"fc-{how}.parquet") for w in work.values())
        same[f"forecast {how}"] = bool(a.equals(b))
        same[f"eol {how}"] = (work["base"] / f"eol-{how}.csv").read_bytes() == (
            work["this"] / f"eol-{how}.csv"
        ).read_bytes()
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with (a git revision)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of A then B")
    parser.add_argument("--specimens", type=int, default=4800, help="specimens in the plan")
    parser.add_argument("--name", default="chunk-lengths", help="the result's name: results/NAME.json")
    args = parser.parse_args()

    result = header(args.name, False)
    todo = commands()
    with base_and_this(args.base) as (scratch, trees):
        work = {name: scratch / name / "work" for name in trees}
        for w in work.values():
            tables(w, args.specimens)
        train = ["-m", "durability_cli", "train", "tiny.csv", "-o", "m.safetensors", "--epochs", "1",
                 "--hidden", "8", "--layers", "1", "--quiet"]  # fmt: skip
        subprocess.run([sys.executable, *train], cwd=work["this"], check=True)
        (work["base"] / "m.safetensors").write_bytes((work["this"] / "m.safetensors").read_bytes())
        runs = in_turn(trees, scratch, todo, args.repeat)
        outputs = compare(work)
    summary = medians(runs, todo)
    for name in runs:  # what the grouping moves: auto against off within one library
        off, auto = (summary[f"forecast {how}"]["median_wall_s"][name] for how in ("off", "auto"))
        summary[f"auto over off, {name}"] = auto / off
    for key, value in summary.items():
        say(key, value)
    say("outputs", outputs)
    result |= {"base": args.base, "specimens": args.specimens, "commands": todo, "runs": runs,
               "summary": summary, "outputs": outputs}  # fmt: skip
    say("wrote", write_result(args.name, False, result))


if __name__ == "__main__":
    main()
