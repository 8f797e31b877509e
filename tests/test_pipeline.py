"""A true shell pipeline through real processes: stdin in, stdout out, nothing mixed in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _durability() -> str:
    """The installed console script next to this Python, else `python -m durability_cli`."""
    exe = Path(sys.executable).with_name("durability")
    return str(exe) if exe.exists() else f"{sys.executable} -m durability_cli"


def test_train_then_forecast_from_stdin_into_a_second_command(tmp_path):
    df = pd.read_csv(SAMPLE / "coating.csv")
    keep = sorted(df.specimen_id.unique())[:8]
    df = df[df.specimen_id.isin(keep) & (df.groupby("specimen_id").cumcount() < 40)]
    df.to_csv(tmp_path / "data.csv", index=False)
    plan = df.copy()
    plan.loc[plan.groupby("specimen_id").cumcount() >= 30, "durability"] = np.nan
    plan.to_csv(tmp_path / "plan.csv", index=False)
    d = _durability()
    script = (
        f"set -o pipefail; cat data.csv | {d} train - -o m.safetensors --epochs 2 --hidden 8 --layers 1 --quiet"
        f" && cat plan.csv | {d} forecast - --model m.safetensors --samples 20 --quiet"
        f" | {d} schema - --target durability_mean --json"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)  # stdout is pure JSON: no progress or notes mixed in
    assert info["n_rows"] == 8 * 10
    assert info["n_specimens"] == 8
    assert info["roles"]["target"] == "durability_mean"
    assert "Traceback" not in done.stderr


def test_dev_stdout_counts_as_stdout(tmp_path, small, model):
    """`--eol-out /dev/stdout` got past the one-table-on-stdout check (only `-` was counted): the
    end-of-life table ran on after the forecast's rows, exit 0; and `-o /dev/stdout > f.csv` was
    refused for the name of the file behind it."""
    d = _durability()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    plan = f"{d} forecast {small} -m {model} --horizon 3 --hold-conditions --samples 20 -q"

    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300
        )

    both = run(f"set -o pipefail; {plan} --threshold 0.6 --eol-out /dev/stdout | cat")
    assert both.returncode == 2 and both.stdout == ""
    assert "-o/--output and --eol-out both write to stdout" in both.stderr
    # /dev/null (or /dev/stderr) is not stdout, even where stdout is /dev/null too: both may go there
    null = run(f"{plan} --threshold 0.6 -o /dev/null --eol-out /dev/null > /dev/null")
    assert null.returncode == 0, null.stderr
    one = run(f"{plan} -o /dev/stdout > into.csv")  # the file behind it has no table extension
    assert one.returncode == 0, one.stderr
    rows = pd.read_csv(tmp_path / "into.csv")
    assert len(rows) == 10 * 3 and "durability_mean" in rows.columns
    # evaluate: the per-series table on /dev/stdout, and no metrics JSON run on after it
    scored = run(
        f"{d} evaluate {small} -m {model} --context 30 --samples 0 -q --per-series /dev/stdout | cat"
    )
    assert scored.returncode == 0, scored.stderr
    assert scored.stdout.startswith("model,specimen_id,") and "{" not in scored.stdout
