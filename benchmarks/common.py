"""Shared helpers of the benchmark suites: machine description, timers, JSON results, subprocesses."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"
VENV_PY = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PY) if VENV_PY.exists() else sys.executable
# One thread per process: the machine has 2 cores and is shared; ratios stay comparable.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _script() -> str:
    """The script this process runs, relative to the repository (run.py when it cannot tell)."""
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    if here is None or not here.is_relative_to(ROOT) or here.suffix != ".py":
        return "benchmarks/run.py"
    return str(here.relative_to(ROOT))


# options whose value is a folder of this machine: the recorded command names it DIR
FOLDER_OPTIONS = ("--save-models", "--member-paths", "--models", "--refitted")
# ... and a file of this machine (a model file made elsewhere): named FILE
FILE_OPTIONS = ("--model",)


def member_rows(member, table, key: str = "val_specimens"):
    """The rows of ``table`` (a frame with ``specimen_id``) of the specimens an ensemble member's
    training summary lists under ``key``: its validation specimens, or ``train_specimens``."""
    wanted = {str(i) for i in member.summary[key]}
    return table[table["specimen_id"].astype(str).isin(wanted)]


def recorded_args(args: list[str]) -> list[str]:
    """``args`` with each folder option's value (``--opt DIR`` or ``--opt=DIR``) given as DIR, and
    each file option's as FILE."""
    out = []
    for i, a in enumerate(args):
        opt = a.partition("=")[0]
        if "=" in a and opt in FOLDER_OPTIONS + FILE_OPTIONS:
            out.append(f"{opt}={'DIR' if opt in FOLDER_OPTIONS else 'FILE'}")
        elif i > 0 and args[i - 1] in FOLDER_OPTIONS + FILE_OPTIONS:
            out.append("DIR" if args[i - 1] in FOLDER_OPTIONS else "FILE")
        else:
            out.append(a)
    return out


COMMAND = " ".join(["python", _script(), *map(shlex.quote, recorded_args(sys.argv[1:]))])


def config_fields(items: list[str], *, source: str, plus_is_comma: bool = False) -> tuple[dict, dict]:
    """["cell=gru", "batch_size=16"] -> ({"cell": "gru"}, {"batch_size": 16}): ModelConfig and
    TrainConfig fields for a benchmark's variant or option. Each value is read as a TOML value (a
    bare word is text; with ``plus_is_comma`` a text's own commas are written as +), then typed and
    checked as `train --config` does (api.configs), so its messages are the config file's. Raises
    ValueError, in one line, for an item without '=', an unknown field or a refused value."""
    import tomllib

    from durability_cli.api import MODEL_OPTIONS, configs
    from durability_cli.errors import InputError

    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"{source} {item}: expected FIELD=VALUE with a ModelConfig/TrainConfig field")
        try:
            values[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:  # a bare word: text (cell=gru)
            values[key] = raw.replace("+", ",") if plus_is_comma else raw
    try:
        model_cfg, train_cfg = configs(values, source=source)
    except InputError as e:
        raise ValueError(str(e)) from None
    model = {k: getattr(model_cfg, k) for k in values if k in MODEL_OPTIONS}
    return model, {k: getattr(train_cfg, k) for k in values if k not in MODEL_OPTIONS}


def one_thread() -> None:
    import warnings

    import torch

    # the library's step loop toggles oneDNN per call, and torch warns each time; the warning
    # is about Intel GPUs and says nothing about these runs
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed before any parallel work has started
        pass


def machine() -> dict:
    import torch

    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan,) * 3
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def header(suite: str, quick: bool) -> dict:
    return {
        "suite": suite,
        "mode": "quick" if quick else "full",
        "command": COMMAND,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        # the library as this process imported it (run.py records it before the first import)
        "code": CODE_AT_START or code_version(),
    }


CODE_AT_START: dict | None = None


def code_version() -> dict:
    """The commit measured, and whether the library had uncommitted changes (it is a moving target)."""

    def git(*args):
        try:
            proc = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    changed = git("status", "--porcelain", "--", "durability_cli")
    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "library_changes": changed.splitlines() if changed else [],
    }


def dataset_run(result: dict, entry: dict) -> dict:
    """The run an accuracy dataset's ``entry`` came from: its own stamp if it was merged in from
    an earlier file, else the command, date, commit and settings of ``result``, its file."""
    if entry.get("run"):
        return entry["run"]
    run = {k: result.get(k) for k in ("command", "date", "code", "settings", "darts_status")}
    if result.get("rescored_from"):  # benchmarks/rescore.py: the training run, then the scoring
        run["command"] = f"{result['rescored_from']['command']} ; then {result['command']}"
    return run


def result_path(suite: str, quick: bool) -> Path:
    return RESULTS / (f"{suite}-quick.json" if quick else f"{suite}.json")


def write_result(suite: str, quick: bool, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = result_path(suite, quick)
    payload["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    payload["code_at_end"] = code_version()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(jsonable(payload), indent=1, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


def jsonable(obj):
    """numpy -> Python; NaN/inf -> None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    return obj


def timed(fn: Callable, repeat: int = 3, warmup: int = 0) -> dict:
    """Run fn() warmup + repeat times; seconds of each timed run, their median and min."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"median": statistics.median(runs), "min": min(runs), "runs": runs}


def run_python(args: list[str], *, python: str = PYTHON, timeout: float = 900, cwd: Path = ROOT) -> dict:
    """Run a Python script in a fresh process (one thread); parse the JSON on its last stdout line."""
    env = os.environ | THREAD_ENV
    proc = subprocess.run([python, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loglog_exponent(x, y) -> float:
    """Slope of log(y) on log(x): time ~ x^slope."""
    x, y = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    return float(np.polyfit(x, y, 1)[0])


def say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- one library's command in a fresh interpreter ---------------------------------------------------
# Runs ``durability ARGS`` through the library on PYTHONPATH and prints, as one JSON line, where
# that library was imported from, whether torch._dynamo was imported, the seconds spent inside the
# process, and what the caller's ``prelude`` (run first; it may fill the dict EXTRA) measured.
_TIMED_CLI = """
import json, sys, time
t0 = time.perf_counter()
EXTRA = {}
import durability_cli
{prelude}
from durability_cli.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(json.dumps({"where": durability_cli.__file__, "dynamo": "torch._dynamo" in sys.modules,
                  "inside": time.perf_counter() - t0, **EXTRA}))
"""


def timed_command(tree: Path, command: list[str], work: Path, prelude: str = "") -> dict:
    """``durability COMMAND`` with the library of the checkout ``tree``, in ``work``, in a fresh
    interpreter with one thread: its wall time, the time inside the process, whether it imported
    torch._dynamo, and what ``prelude`` (Python run before the command) put in its dict EXTRA.
    Refuses a run that imported the library from anywhere else."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env |= {"PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "DURABILITY_JOBS": "1", "MPLBACKEND": "Agg"}
    script = _TIMED_CLI.replace("{prelude}", prelude)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", script, *command],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{command[0]} in {tree} failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(out.pop("where")).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"{tree}'s run imported the library from elsewhere")
    return {"wall_s": wall, "in_process_s": out.pop("inside"), "imported_dynamo": out.pop("dynamo"), **out}


@contextlib.contextmanager
def base_and_this(rev: str):
    """(scratch folder, {"base": a scratch git worktree of ``rev``, "this": the repository}),
    each with an empty ``scratch/NAME/work`` folder; the worktree is removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        base = scratch / "base"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), rev], cwd=ROOT, check=True)
        try:
            trees = {"base": base, "this": ROOT}
            for name in trees:
                (scratch / name / "work").mkdir(parents=True, exist_ok=True)
            yield scratch, trees
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)


def in_turn(
    trees: dict[str, Path], scratch: Path, commands: dict[str, list[str]], repeat: int, prelude: str = ""
) -> dict:
    """Each library's ``commands`` (timed_command, in ``scratch/NAME/work``), the libraries taken
    in turn ``repeat`` times: {library: {command: [runs]}}."""
    runs: dict = {name: {c: [] for c in commands} for name in trees}
    for round_ in range(repeat):
        for name, tree in trees.items():
            for command, argv in commands.items():
                runs[name][command].append(timed_command(tree, argv, scratch / name / "work", prelude))
            say(f"round {round_ + 1}: {name}", {c: round(r[-1]["wall_s"], 2) for c, r in runs[name].items()})
    return runs


def medians(runs: dict, commands) -> dict:
    """Per command of :func:`in_turn`'s ``runs``: each library's median wall time, this over base,
    and the seconds saved."""
    summary = {}
    for command in commands:
        med = {name: statistics.median(r["wall_s"] for r in runs[name][command]) for name in runs}
        summary[command] = {
            "median_wall_s": med,
            "ratio_this_over_base": med["this"] / med["base"],
            "saved_s": med["base"] - med["this"],
        }
        for key in sorted(set().union(*(r for name in runs for r in runs[name][command])) - set(RUN_KEYS)):
            part = {name: statistics.median(r[key] for r in runs[name][command]) for name in runs}
            summary[command][f"median_{key}"] = part
            summary[command][f"ratio_{key}"] = part["this"] / part["base"] if part["base"] else None
    return summary


RUN_KEYS = ("wall_s", "in_process_s", "imported_dynamo")  # what timed_command measures itself
