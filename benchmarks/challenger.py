"""Would a third candidate help `--trend-line auto`? The default's runs against a challenger's.

`train --trend-line auto` trains the model without and with the warm-up's line and keeps the one
most ensemble members validate better (durability_cli/line_choice.py). Given accuracy runs of the
default (which record both candidates' member validation RMSEs, ``trend_line_val_rmse``) and runs
of a challenger trained with the same seeds (so member k of each holds out the same validation
specimens), this puts side by side, per set and seed: the RMSE of the kept candidate, of the
challenger, and of what the same vote would keep between the two, on the suite's test specimens
and on the fresh ones where the runs have them; the members voting for the challenger; the 80 %
coverage and the training time of each.

    python benchmarks/challenger.py --default results/accuracy-refit-A.json results/accuracy-refit-B.json \
        results/accuracy-refit-measured.json --challenger results/accuracy-latent2-line-*.json \
        --out results/challenger-latent2-line.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks import common  # noqa: E402
from benchmarks.common import say  # noqa: E402


def runs_of(paths: list[Path]) -> tuple[dict, list[dict]]:
    """{(set, seed): run} over the files, and each file's command and commit."""
    runs, sources = {}, []
    for p in paths:
        r = json.loads(p.read_text())
        sources.append({"file": p.name, "command": r["command"], "code": r["code"]})
        for name, entry in r["datasets"].items():
            for run in entry["model"]["runs"]:
                runs[(name, run["seed"])] = run
    return runs, sources


def member_best(run: dict) -> list[float | None]:
    """Each member's best validation RMSE, from its recorded curve."""
    out = []
    for curve in run.get("member_val_curves") or []:
        finite = [x for x in curve if x is not None and math.isfinite(x)]
        out.append(min(finite) if finite else None)
    return out


def kept_members(run: dict) -> list[float | None]:
    """The kept candidate's members' best validation RMSEs (auto records both candidates')."""
    both = run.get("trend_line_val_rmse")
    if both:
        return both["with" if run["trend_line"] else "without"]
    return member_best(run)


def votes(kept: list, challenger: list) -> tuple[int, int]:
    pairs = [(a, b) for a, b in zip(kept, challenger, strict=False) if a is not None and b is not None]
    return sum(b < a for a, b in pairs), len(pairs)


def scores(run: dict, key: str) -> dict | None:
    s = run.get(key)
    return None if s is None else {"rmse": s["rmse"], "coverage80": s.get("coverage80")}


def compare(default: dict, challenger: dict) -> dict:
    out: dict = {}
    for (name, seed), ch in sorted(challenger.items()):
        base = default.get((name, seed))
        if base is None:
            say(f"[challenger] {name} seed {seed}: no default run to compare with")
            continue
        won, voters = votes(kept_members(base), member_best(ch))
        chosen = ch if 2 * won > voters > 0 else base
        line = {
            "seed": seed,
            "kept_line": base.get("trend_line"),
            "members_for_challenger": won,
            "members": voters,
            "vote_keeps": "challenger" if chosen is ch else "default",
            "train_seconds": {"default": base["train_seconds"], "challenger": ch["train_seconds"]},
        }
        for where, key in (("test", "scores"), ("fresh", "scores_fresh")):
            if key in base and key in ch:
                line[where] = {
                    "default": scores(base, key),
                    "challenger": scores(ch, key),
                    "vote": scores(chosen, key),
                }
        out.setdefault(name, {"runs": []})["runs"].append(line)
    for entry in out.values():
        for where in ("test", "fresh"):
            rows = [r[where] for r in entry["runs"] if where in r]
            if rows:
                entry[f"{where}_mean_rmse"] = {
                    k: statistics.fmean(r[k]["rmse"] for r in rows) for k in ("default", "challenger", "vote")
                }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--default", nargs="+", type=Path, required=True, help="accuracy runs of the default")
    parser.add_argument(
        "--challenger", nargs="+", type=Path, required=True, help="accuracy runs of the challenger"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the comparison here (JSON)")
    args = parser.parse_args(argv)
    for p in [*args.default, *args.challenger]:
        if not p.is_file():
            parser.error(f"{p}: no such results file")
    default, default_src = runs_of(args.default)
    challenger, challenger_src = runs_of(args.challenger)
    sets = compare(default, challenger)
    for name, entry in sets.items():
        for where in ("test", "fresh"):
            m = entry.get(f"{where}_mean_rmse")
            if m:
                say(
                    f"{name} ({where}): default {m['default']:.4g}, challenger {m['challenger']:.4g} "
                    f"({100 * (m['challenger'] / m['default'] - 1):+.1f} %), vote {m['vote']:.4g} "
                    f"({100 * (m['vote'] / m['default'] - 1):+.1f} %); members for the challenger "
                    + " / ".join(f"{r['members_for_challenger']} of {r['members']}" for r in entry["runs"])
                )
    if args.out:
        payload = {
            "suite": "challenger",
            "command": common.COMMAND,
            "code": common.code_version(),
            "default": default_src,
            "challenger": challenger_src,
            "sets": sets,
        }
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(common.jsonable(payload), indent=1, allow_nan=False) + "\n")
        tmp.replace(args.out)
        say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
