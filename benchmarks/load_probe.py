"""One loading measurement in a fresh process, so that its peak memory (ru_maxrss) is its own.

    python benchmarks/load_probe.py {durability|pyarrow|none} PATH

Prints one JSON line: seconds (wall time of the load; the modules it needs are imported before
the clock starts, for both kinds), the peak resident set
size (VmHWM) before and after the load, and for ``durability`` the time of each stage.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def peak_mib() -> float:
    """Peak resident memory of this process, MiB. VmHWM belongs to this program's own address
    space; ru_maxrss would also count the parent's memory at fork time (Linux carries it over exec)."""
    return vm_hwm_mib()


def vm_hwm_mib() -> float:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(kind: str, path: str) -> dict:
    stages = {}
    if kind == "durability":
        import pyarrow.csv  # noqa: F401  imported before the clock starts, as for pyarrow below
        import pyarrow.parquet  # noqa: F401
        import torch

        torch.set_num_threads(1)
        from durability_cli.data import fit_scaler, to_series, to_tensors
        from durability_cli.schema import load_dataset

        before = peak_mib()
        t0 = time.perf_counter()
        ds = load_dataset(path, covariates=["temperature", "humidity"])
        stages["load_dataset"] = time.perf_counter() - t0
        t = time.perf_counter()
        series = to_series(ds)
        stages["to_series"] = time.perf_counter() - t
        t = time.perf_counter()
        scaler = fit_scaler(series, [], [])
        stages["fit_scaler"] = time.perf_counter() - t
        t = time.perf_counter()
        tensors = to_tensors(series, scaler)
        stages["to_tensors"] = time.perf_counter() - t
        seconds = time.perf_counter() - t0
        rows = len(ds.frame)
        del tensors
    elif kind == "pyarrow":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        before = peak_mib()
        t0 = time.perf_counter()
        table = pq.read_table(path) if path.endswith(".parquet") else pacsv.read_csv(path)
        seconds = time.perf_counter() - t0
        rows = table.num_rows
    else:  # the interpreter alone
        before, seconds, rows = peak_mib(), 0.0, 0
    return {
        "kind": kind,
        "seconds": seconds,
        "rows": rows,
        "peak_mib_before": before,
        "peak_mib": peak_mib(),
        "stages": stages,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
