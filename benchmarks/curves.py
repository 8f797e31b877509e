"""Cost curves: forecast time (and peak memory) against the number of specimens, the series
length (warm-up rows) and the horizon, with the fitted log-log exponent of each.

Each curve runs in its own process (``python benchmarks/curves.py NAME [--quick]``), its points in
increasing size, so the process's peak resident memory after a point is that point's peak.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

if __name__ == "__main__":  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import header, loglog_exponent, run_python, say

# curve -> (what varies, points, fixed specimens, warm-up, horizon); None marks the varying one
FULL = {
    "specimens": ("specimens", [250, 1000, 4000, 16000], None, 20, 100),
    "series_length": ("warm-up rows", [50, 200, 800, 3200], 1000, None, 50),
    "horizon": ("horizon steps", [25, 100, 400, 1600], 1000, 20, None),
}
QUICK = {
    "specimens": ("specimens", [100, 300, 1000, 3000], None, 20, 50),
    "series_length": ("warm-up rows", [25, 100, 400, 1600], 200, None, 25),
    "horizon": ("horizon steps", [25, 100, 400, 1600], 200, 20, None),
}


def measure(curve: str, quick: bool) -> dict:
    from benchmarks.common import one_thread, timed

    one_thread()
    from benchmarks.load_probe import vm_hwm_mib
    from benchmarks.workloads import dataset, random_walk_table, tiny_bundle
    from durability_cli.forecasting import ForecastConfig, forecast

    label, points, n_fixed, w_fixed, h_fixed = (QUICK if quick else FULL)[curve]
    bundle = tiny_bundle()
    forecast(bundle, dataset(random_walk_table(10, 30, warmup=10)), ForecastConfig(samples=0))  # warm
    out = {"curve": curve, "varies": label, "points": []}
    for x in points:
        n = x if n_fixed is None else n_fixed
        w = x if w_fixed is None else w_fixed
        h = x if h_fixed is None else h_fixed
        ds = dataset(random_walk_table(n, w + h, warmup=w))
        t = timed(lambda ds=ds: forecast(bundle, ds, ForecastConfig(samples=0)), repeat=2)
        peak = vm_hwm_mib()
        out["points"].append(
            {"x": x, "specimens": n, "warmup": w, "horizon": h, "seconds": t["min"], "peak_mib": peak}
        )
    xs = [p["x"] for p in out["points"]]
    out["exponent"] = loglog_exponent(xs, [p["seconds"] for p in out["points"]])
    out["exponent_upper_half"] = loglog_exponent(xs[-2:], [p["seconds"] for p in out["points"][-2:]])
    return out


def run(quick: bool) -> dict:
    out = header("curves", quick) | {"curves": {}}
    me = str(Path(__file__).resolve())
    for curve in FULL:
        t0 = time.perf_counter()
        args = [me, curve] + (["--quick"] if quick else [])
        out["curves"][curve] = run_python(args, timeout=1200)
        c = out["curves"][curve]
        say(f"[curves] {curve}: exponent {c['exponent']:.2f} ({time.perf_counter() - t0:.0f} s)")
    return out


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], "--quick" in sys.argv[2:])))
