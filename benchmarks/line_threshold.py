"""How many of the members must validate better with the warm-up's line for ``--trend-line auto``
to keep it? Scored on stored runs, without training (issue 14).

``train`` keeps the line's candidate when most members validate better with it (3 of 5). Each
stored run below keeps both candidates' test RMSEs and how many members voted for the line, so
any bar k ("the line when at least k members prefer it") can be scored:

- results/line-rules.json: the five synthetic sets, 3 seeds, 96 fresh specimens each (session 24);
- results/line-rules-measured.json: the four measured sets, 3 seeds, the suite's test split;
- results/blend-lines.jsonl: the four measured sets, 5 test splits, training seed 0 (session 40;
  its votes recounted from the members' validation RMSEs).

    python benchmarks/line_threshold.py

Prints, per source, the geometric mean over its runs of each bar's RMSE over the current vote's,
its worst and best run, and writes results/line-threshold.json.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, header  # noqa: E402
from durability_cli.line_choice import line_votes, line_wins  # noqa: E402

BARS = (1, 2, 3, 4, 5)


def _runs_from_rules(path: Path) -> list[dict]:
    d = json.loads(path.read_text())
    return [
        {"set": name, "run": f"seed {r['seed']}", "votes": r["votes"], "members": r["members"], **r["rmse"]}
        for name, e in d["sets"].items()
        for r in e["runs"]
    ]


def _runs_from_blend(path: Path) -> list[dict]:
    runs = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        val = d["member_val_rmse"]
        votes, members = line_votes(val["without"], val["with"])
        vote = "with" if line_wins(val["without"], val["with"]) else "without"
        assert vote == d["auto_keeps"], d  # the recount is train's own choice
        runs.append(
            {"set": d["set"], "run": f"split {d['split']}", "votes": votes, "members": members, **d["rmse"]}
            | {"vote": d["rmse"][vote]}
        )
    return runs


def score(runs: list[dict]) -> dict:
    out = {}
    for k in BARS:
        ratios = [(r["with"] if r["votes"] >= k else r["without"]) / r["vote"] for r in runs]
        out[k] = {
            "geomean_vs_vote": math.exp(sum(map(math.log, ratios)) / len(ratios)),
            "worst": max(ratios),
            "best": min(ratios),
            "runs_changed": sum(abs(x - 1) > 1e-12 for x in ratios),
        }
    return out


def _line(k: int, s: dict) -> str:
    g, worst, best = s["geomean_vs_vote"], s["worst"], s["best"]
    return f"the line from {k} of 5 votes: {g:.4f} x the vote, worst {worst:.3f}, best {best:.3f}"


def main() -> None:
    sources = {
        "synthetic, 96 fresh specimens": _runs_from_rules(RESULTS / "line-rules.json"),
        "measured, the suite's split, 3 seeds": _runs_from_rules(RESULTS / "line-rules-measured.json"),
        "measured, 5 splits, seed 0": _runs_from_blend(RESULTS / "blend-lines.jsonl"),
    }
    result = header("line-threshold", False) | {"sources": {}}
    for name, runs in sources.items():
        scored = score(runs)
        result["sources"][name] = {"runs": runs, "bars": scored}
        print(f"{name} ({len(runs)} runs)")
        for k, s in scored.items():
            print(f"  {_line(k, s)}, {s['runs_changed']} runs changed")
    every = [r for runs in sources.values() for r in runs]
    result["all"] = score(every)
    print(f"all ({len(every)} runs)")
    for k, s in result["all"].items():
        print(f"  {_line(k, s)}")
    (RESULTS / "line-threshold.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
