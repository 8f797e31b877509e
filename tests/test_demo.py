"""`make demo` (scripts/demo.sh), the README's main job, run end to end but cut short."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from durability_cli.artifact import load_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_demo_writes_every_output_it_lists(tmp_path):
    """Two epochs of one model (without the line's second candidate) instead of the demo's full
    run; every file the closing list names is written, the model is the calibrated one, and
    nothing goes to the repository's out/."""
    out = tmp_path / "demo"
    bin_dir = Path(sys.executable).parent  # the venv's durability and python, as make demo puts first
    env = os.environ | {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DEMO_OUT": str(out),
        "OMP_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    before = sorted((ROOT / "out").iterdir()) if (ROOT / "out").exists() else None
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), "--epochs", "2", "--ensemble", "1", "--no-trend-line"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    listed = re.findall(r"^  (\S+\.(?:safetensors|csv|json|png))\s", r.stderr, flags=re.M)
    assert len(listed) == 12, listed
    for name in listed:
        assert (out / name).stat().st_size > 0, name
    assert "model" in json.loads((out / "metrics.json").read_text())["models"]
    # step 4: calibrated in place on the other specimens
    calibration = load_bundle(out / "coating.safetensors").summary["calibration"]
    assert calibration["bins"] == 4 and calibration["specimens"] == 48, calibration
    assert calibration["source"].endswith("coating_calibration.csv")
    after = sorted((ROOT / "out").iterdir()) if (ROOT / "out").exists() else None
    assert after == before
