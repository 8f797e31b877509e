"""Shared helpers of the benchmark suites: machine description, timers, JSON results, subprocesses."""

from __future__ import annotations

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


def member_rows(member, table, key: str = "val_specimens"):
    """The rows of ``table`` (a frame with ``specimen_id``) of the specimens an ensemble member's
    training summary lists under ``key``: its validation specimens, or ``train_specimens``."""
    wanted = {str(i) for i in member.summary[key]}
    return table[table["specimen_id"].astype(str).isin(wanted)]


def recorded_args(args: list[str]) -> list[str]:
    """``args`` with each folder option's value (``--opt DIR`` or ``--opt=DIR``) given as DIR."""
    out = []
    for i, a in enumerate(args):
        opt = a.partition("=")[0]
        if "=" in a and opt in FOLDER_OPTIONS:
            out.append(f"{opt}=DIR")
        elif i > 0 and args[i - 1] in FOLDER_OPTIONS:
            out.append("DIR")
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
