"""Replay a shorter patience on recorded validation curves (issue 14).

A run that stops earlier follows the same trajectory up to its stop: the learning rate follows
the epochs, not the patience, and a member's batches are drawn from its own generator. So every
member's per-epoch validation RMSE, recorded by ``benchmarks/accuracy.py`` as
``member_val_curves``, says exactly where a shorter patience would have stopped it and which epoch
it would have kept. Where the kept epoch is the one the full run kept, the model is the same bits
and so is every test score; where it is not, only a run can say what the test scores become.

    python benchmarks/patience.py results/accuracy-curves-*.json --shares 0.5,0.33,0.25,0.2

For each set and share: how many members keep another epoch, how much worse their validation
RMSE is there, and how many epochs the ensemble (trained together: it runs until its last member
stops) runs, against the recorded run's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def replay(curve: list[float], patience: int) -> tuple[int, int]:
    """(epochs run, best epoch) of a run with this patience over ``curve``, as training decides:
    an epoch is best when its RMSE is below every earlier one; stop after ``patience`` epochs
    without a best one."""
    best, best_epoch, stale = math.inf, 0, 0
    for epoch, rmse in enumerate(curve, start=1):
        if rmse < best:
            best, best_epoch, stale = rmse, epoch, 0
        else:
            stale += 1
        if stale >= patience:
            return epoch, best_epoch
    return len(curve), best_epoch


def longest_wait(curve: list[float], upto: int) -> int:
    """The most epochs between two best epochs of ``curve`` up to epoch ``upto`` (the first
    best counts from epoch 0): the patience a run needs to keep the best epoch it kept."""
    best, last, wait = math.inf, 0, 0
    for epoch, rmse in enumerate(curve[:upto], start=1):
        if rmse < best:
            best, wait, last = rmse, max(wait, epoch - last), epoch
    return wait


def study(path: Path, shares: list[float], min_patience: int) -> list[dict]:
    """One row per set and share of the runs in an accuracy results file."""
    rows = []
    payload = json.loads(path.read_text())
    for name, entry in payload["datasets"].items():
        runs = entry["model"]["runs"]
        if not all("member_val_curves" in r for r in runs):
            continue
        for share in shares:
            changed = members = 0
            worse, epochs_new, epochs_old, seconds = [], 0, 0, 0.0
            # the patience, as a share of the epochs, each member needed to keep its best epoch
            needed = max(
                longest_wait(curve, best_epoch) / run["epochs_max"]
                for run in runs
                for curve, best_epoch in zip(run["member_val_curves"], run["member_best_epochs"], strict=True)
            )
            for run in runs:
                patience = max(min_patience, math.ceil(share * run["epochs_max"]))
                if patience > run["patience"]:
                    raise SystemExit(
                        f"{path}: {name} ran with patience {run['patience']}; cannot replay {patience}"
                    )
                stops = []
                for curve, best_epoch in zip(
                    run["member_val_curves"], run["member_best_epochs"], strict=True
                ):
                    stop, kept = replay(curve, patience)
                    stops.append(stop)
                    members += 1
                    if kept != best_epoch:
                        changed += 1
                        worse.append(curve[kept - 1] / curve[best_epoch - 1] - 1)
                epochs_new += max(stops)
                epochs_old += max(run["member_epochs_run"])
                seconds += run["train_seconds"] * max(stops) / max(run["member_epochs_run"])
            rows.append(
                {
                    "set": name,
                    "share": share,
                    "members_changed": changed,
                    "members": members,
                    "val_worse_mean": sum(worse) / len(worse) if worse else 0.0,
                    "val_worse_max": max(worse) if worse else 0.0,
                    "epochs_ratio": epochs_new / epochs_old,
                    "train_seconds_estimate": seconds / len(runs),
                    "train_seconds_recorded": sum(r["train_seconds"] for r in runs) / len(runs),
                    "share_needed": needed,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="accuracy results with member_val_curves")
    parser.add_argument("--shares", default="0.5,0.33,0.25,0.2", help="patience as a share of the epochs")
    parser.add_argument("--min-patience", type=int, default=30, help="the floor of the automatic patience")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    shares = [float(s) for s in args.shares.split(",")]
    rows = [row for path in args.files for row in study(path, shares, args.min_patience)]
    print(
        "| set | patience share | members keeping another epoch | their validation RMSE, mean / worst "
        "| epochs run | training seconds a seed (estimate) | longest wait for a best epoch, share of the epochs |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['set']} | {r['share']:g} | {r['members_changed']} of {r['members']} | "
            f"+{100 * r['val_worse_mean']:.1f} % / +{100 * r['val_worse_max']:.1f} % | "
            f"{r['epochs_ratio']:.2f} x | {r['train_seconds_estimate']:.0f} (recorded {r['train_seconds_recorded']:.0f}) | "
            f"{r['share_needed']:.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
