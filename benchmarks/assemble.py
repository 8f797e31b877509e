"""Put tagged accuracy runs in section 1's place, each set's Darts runs taken from an earlier run.

Section 1 of RESULTS.md renders results/accuracy.json. A full `make bench` trains the default
model and Darts on nine sets, which takes hours on two shared cores. When the default changed and
its model has been run already (`run.py --only accuracy --no-darts --tag T`, one file per group of
sets), this writes those runs into results/accuracy.json and keeps, for every set, the Darts runs
of the file given by ``--darts-from``:

    python benchmarks/assemble.py --runs benchmarks/results/accuracy-T1.json \
        benchmarks/results/accuracy-T2.json --darts-from benchmarks/results/accuracy.json

``--replace-with`` takes runs of some of those sets made later (a default that changed only
there), one or more seeds per file, e.g. one file per seed run side by side; their seeds are
merged and replace the set's runs of ``--runs``.

Darts is reused only where its runs are of the same test split and the same seeds (Darts is fit
on the split of the model's first member of each seed, which depends on the seed alone), and each
set records where they came from: that run's command, commit and date, and its budget, which was
that run's model's training time, written beside this model's time so that a reader sees how much
time each side had. The time-to-Darts'-best table is computed again from this model's curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks import common  # noqa: E402
from benchmarks.common import RESULTS, header, say, write_result  # noqa: E402

# what must agree for two runs to be of the same test split
SPLIT_KEYS = ("target", "train_specimens", "test_specimens", "train_rows", "forecast_rows", "test_ids")


def same_split(a: dict, b: dict) -> bool:
    return all(a["info"].get(k) == b["info"].get(k) for k in SPLIT_KEYS)


def seeds(entry: dict) -> list[int]:
    return [r["seed"] for r in entry["model"]["runs"]]


def reused_darts(name: str, entry: dict, source: dict, source_path: Path) -> tuple[dict | None, str]:
    """The Darts block of ``source`` for ``name``, stamped with its run, or None and why not."""
    info = entry["info"]
    if info.get("real") and info.get("warmup") is None:
        return None, "not run: the peer takes one warm-up length, this set one per specimen"
    old = source.get("datasets", {}).get(name)
    if old is None:
        return None, f"no {name} in {source_path.name}"
    if not old["darts"].get("runs"):
        return None, f"{source_path.name} has no Darts runs of {name} ({old['darts'].get('error')})"
    if not same_split(entry, old):
        return None, f"{source_path.name}'s {name} is another split"
    darts_seeds = [r["seed"] for r in old["darts"]["runs"]]
    if darts_seeds != seeds(entry):
        return None, f"{source_path.name}'s Darts seeds {darts_seeds}, these runs' {seeds(entry)}"
    if "reused" in old["darts"]:  # an assembled file: keep the run Darts was trained in
        return dict(old["darts"]), ""
    run = common.dataset_run(source, old)
    budget_of = {r["seed"]: r["train_seconds"] for r in old["model"]["runs"]}
    reused = {
        "command": run["command"],
        "date": run["date"],
        "code": run.get("code"),
        "budget_factor": ((run.get("settings") or {}).get("darts_budget_factor")),
        "budget_model_seconds": [budget_of.get(s) for s in darts_seeds],
    }
    return {k: v for k, v in old["darts"].items() if k != "error"} | {"reused": reused}, ""


def merged(parts: list[tuple[Path, dict, dict]]) -> dict:
    """One set's entry from runs of it in several files (``(path, file, entry)``, one or more
    seeds each, e.g. one file per seed run side by side): their runs in seed order, the summaries
    computed again, and every file's command in the run's stamp. The seeds must not repeat and
    the test split must be the same."""
    from benchmarks.accuracy import summarise

    first_path, first_file, first = parts[0]
    runs, stamps = [], []
    for path, result, entry in parts:
        if not same_split(first, entry):
            raise SystemExit(f"assemble: {path.name} and {first_path.name} hold other test splits of a set")
        runs += entry["model"]["runs"]
        stamps.append(common.dataset_run(result, entry))
    got = [r["seed"] for r in runs]
    if len(set(got)) != len(got):
        raise SystemExit(
            f"assemble: seeds {sorted(got)} repeat across {', '.join(p.name for p, _, _ in parts)}"
        )
    runs.sort(key=lambda r: r["seed"])
    out = json.loads(json.dumps(first))  # a copy: the first file's info, baselines and oracle
    out["model"] = {"runs": runs, "summary": summarise([r["scores"] for r in runs])}
    if "fresh" in out and all("scores_fresh" in r for r in runs):
        out["fresh"]["summary"] = summarise([r["scores_fresh"] for r in runs])
    out["run"] = stamps[0] | {
        "command": " ; ".join(st["command"] for st in stamps),
        "merged_from": [p.name for p, _, _ in parts],
    }
    return out


def assemble(run_paths: list[Path], darts_from: Path, replace_paths: list[Path] | None = None) -> dict:
    from benchmarks.accuracy import time_to_reach  # imports the library: after run-time setup

    source = json.loads(darts_from.read_text())
    runs = [(p, json.loads(p.read_text())) for p in run_paths]
    by_set: dict[str, list] = {}
    for p in replace_paths or []:
        result = json.loads(p.read_text())
        for name, entry in result["datasets"].items():
            by_set.setdefault(name, []).append((p, result, entry))
    replacing = {name: merged(parts) for name, parts in by_set.items()}
    out = header("accuracy", False) | {
        "settings": runs[0][1]["settings"],
        "darts_status": f"reused from {darts_from.name}, each set's own run (named under the set)",
        "assembled_from": [
            str(p.relative_to(common.ROOT)) if p.is_relative_to(common.ROOT) else p.name
            for p in [*run_paths, *(replace_paths or [])]
        ],
        "datasets": {},
    }
    found: dict[str, dict] = {}
    for path, result in runs:
        if result.get("mode") != "full":
            raise SystemExit(
                f"assemble: {path.name} is a {result.get('mode')} run; section 1 shows full runs"
            )
        for name, entry in result["datasets"].items():
            if name in found:
                raise SystemExit(f"assemble: {name} is in two of the runs given; give each set once")
            came_from = path  # the file this set's runs are taken from (said below)
            if name in replacing:  # --replace-with: this set's runs come from those files
                entry, came_from = replacing.pop(name), Path(by_set[name][0][0])
            else:
                entry = {"run": common.dataset_run(result, entry)} | entry
            darts, why = reused_darts(name, entry, source, darts_from)
            if darts is not None:
                entry["darts"] = darts
            else:
                say(f"[assemble] {name}: Darts not reused: {why}")
                entry["darts"] = {"runs": [], "error": why}
            entry["training_speed"] = time_to_reach(entry)
            found[name] = entry
            say(f"[assemble] {name}: this model from {came_from.name}" + (", Darts reused" if darts else ""))
    if replacing:
        raise SystemExit(f"assemble: --replace-with holds {', '.join(replacing)}, which no --runs file has")
    order = [*source.get("datasets", {}), *found]  # the suite's order, then any set it lacks
    out["datasets"] = {name: found[name] for name in dict.fromkeys(order) if name in found}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", type=Path, required=True, help="tagged accuracy results files")
    parser.add_argument(
        "--replace-with",
        nargs="+",
        type=Path,
        default=[],
        help="accuracy results files whose sets replace those of --runs (a set's seeds may come "
        "from several files, e.g. one per seed, and are merged)",
    )
    parser.add_argument(
        "--darts-from",
        type=Path,
        default=RESULTS / "accuracy.json",
        help="the results file whose Darts runs are kept (default: results/accuracy.json)",
    )
    args = parser.parse_args(argv)
    common.CODE_AT_START = common.code_version()
    for p in [*args.runs, *args.replace_with, args.darts_from]:
        if not p.is_file():
            parser.error(f"{p}: no such results file")
    payload = assemble(
        [p.resolve() for p in args.runs], args.darts_from.resolve(), [p.resolve() for p in args.replace_with]
    )
    path = write_result("accuracy", False, payload)
    say(f"wrote {path.relative_to(common.ROOT)}; render RESULTS.md with `python benchmarks/run.py --report`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
