"""How ``--trend-line auto`` should choose, judged on many test specimens (issue 14): from two
accuracy runs of the same sets and seeds, one trained without the warm-up's line and one with it
(``run.py --set trend_line=false`` / ``=true``, both with ``--fresh-test N --member-paths DIR``),
score each choice rule's forecast of the N fresh specimens. Nothing is trained: every member's
mean path is in DIR, every member's best validation RMSE in the results file, and member k of the
two runs held out the same validation specimens.

Rules (each forecast is the average of the members' mean paths it keeps):

- ``without``, ``with``: one candidate whatever the validation says;
- ``vote``: the line's candidate when most members validate better with it (what train does);
- ``mean``: the candidate with the lower mean of its members' validation RMSEs;
- ``member``: each member k keeps its own better candidate (a mixed ensemble);
- ``both``: all 2 x N members averaged, the validation unused;
- ``share``: the two candidates' averages weighted by the share of members voting for each;
- ``weighted``: weighted by the inverse of each candidate's mean squared validation RMSE
  (``weighted4``: its fourth power, leaning harder to the better one).

    python benchmarks/line_rules.py --without results/accuracy-fresh-tfalse.json \\
        --with results/accuracy-fresh-ttrue.json --paths-without DIR0 --paths-with DIR1

Prints a table (RMSE against the noisy values, mean over the seeds; seed spread; the geometric
mean of each rule's ratio to ``without`` over every set and seed) and writes results/line-rules.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, header
from durability_cli.line_choice import line_votes, line_wins

RULES = ("without", "with", "vote", "mean", "member", "both", "share", "weighted", "weighted4")


def member_scores(run: dict) -> list[float]:
    """Each member's best free-running validation RMSE (the minimum of its curve)."""
    return [min(v for v in curve if v is not None) for curve in run["member_val_curves"]]


def rule_paths(plain: pd.DataFrame, line: pd.DataFrame, val0: list[float], val1: list[float]) -> dict:
    """Each rule's mean path over the rows (plain and line: the two runs' member columns)."""
    cols = [c for c in plain.columns if c.startswith("member")]
    a, b = plain[cols].to_numpy(), line[cols].to_numpy()
    wins = np.array(val1) < np.array(val0)  # member k validates better with the line
    votes = line_votes(val0, val1)[0]
    return {
        "without": a.mean(axis=1),
        "with": b.mean(axis=1),
        "vote": (b if line_wins(val0, val1) else a).mean(axis=1),  # train's own rule
        "mean": (b if np.mean(val1) < np.mean(val0) else a).mean(axis=1),
        "member": np.where(wins[None, :], b, a).mean(axis=1),
        "both": np.concatenate([a, b], axis=1).mean(axis=1),
        "share": (votes * b.mean(axis=1) + (len(wins) - votes) * a.mean(axis=1)) / len(wins),
        "weighted": _weighted(a, b, val0, val1, 2),
        "weighted4": _weighted(a, b, val0, val1, 4),
    }, votes


def _weighted(a, b, val0, val1, power: int) -> np.ndarray:
    w0, w1 = np.mean(np.square(val0)) ** (-power / 2), np.mean(np.square(val1)) ** (-power / 2)
    return (w0 * a.mean(axis=1) + w1 * b.mean(axis=1)) / (w0 + w1)


def analyse(without: dict, with_line: dict, paths_without: Path, paths_with: Path) -> dict:
    out = {}
    for name, entry in without["datasets"].items():
        other = with_line["datasets"].get(name)
        if other is None:
            continue
        runs = []
        for r0, r1 in zip(entry["model"]["runs"], other["model"]["runs"], strict=True):
            seed = r0["seed"]
            plain = pd.read_parquet(paths_without / f"{name}-s{seed}.parquet")
            line = pd.read_parquet(paths_with / f"{name}-s{seed}.parquet")
            if not (plain[["specimen_id", "time"]].equals(line[["specimen_id", "time"]])):
                raise SystemExit(f"{name} seed {seed}: the two runs' rows differ")
            y = plain["y"].to_numpy()
            paths, votes = rule_paths(plain, line, member_scores(r0), member_scores(r1))
            rmse = {k: float(np.sqrt(np.mean((p - y) ** 2))) for k, p in paths.items()}
            runs.append({"seed": seed, "votes": votes, "members": len(r0["member_val_curves"]), "rmse": rmse})
        means = {k: float(np.mean([r["rmse"][k] for r in runs])) for k in RULES}
        spread = {k: float(np.std([r["rmse"][k] for r in runs], ddof=1) / means[k]) for k in RULES}
        out[name] = {
            "fresh_specimens": entry.get("fresh", {}).get("test_specimens"),
            "runs": runs,
            "mean": means,
            "spread": spread,
        }
    ratios = {
        k: float(
            np.exp(
                np.mean(
                    [np.log(r["rmse"][k] / r["rmse"]["without"]) for e in out.values() for r in e["runs"]]
                )
            )
        )
        for k in RULES
    }
    return {"sets": out, "geomean_vs_without": ratios}


def table(result: dict) -> str:
    lines = ["| set | " + " | ".join(RULES) + " |", "|---" * (len(RULES) + 1) + "|"]
    for name, e in result["sets"].items():
        cells = [f"{e['mean'][k]:.4g} ({100 * e['spread'][k]:.0f} %)" for k in RULES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    g = result["geomean_vs_without"]
    lines.append("| geometric mean of run / without | " + " | ".join(f"{g[k]:.3f}" for k in RULES) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--without", required=True, help="the accuracy results file trained without the line")
    p.add_argument("--with", dest="with_line", required=True, help="the one trained with it")
    p.add_argument("--paths-without", required=True, help="--member-paths DIR of the run without")
    p.add_argument("--paths-with", required=True, help="--member-paths DIR of the run with it")
    p.add_argument("--out", default=str(RESULTS / "line-rules.json"))
    a = p.parse_args(argv)
    result = analyse(
        json.loads(Path(a.without).read_text()),
        json.loads(Path(a.with_line).read_text()),
        Path(a.paths_without),
        Path(a.paths_with),
    )
    print(table(result))
    Path(a.out).write_text(json.dumps(header("line-rules", False) | result, indent=1))


if __name__ == "__main__":
    main()
