"""Peak memory of ``durability forecast --chunk-specimens N`` and ``durability train
--chunk-specimens N`` as the specimens grow.

For S and 10 x S specimens of a Parquet table (random walks; for the forecast a warm-up then
future rows), each point runs the real command in a fresh process and reads its peak resident
memory (VmHWM, from the child's own /proc/self/status at exit). The target: 10x the specimens
within 1.5x the peak. The whole-table command (no --chunk-specimens) is measured next to it for
time and memory. Training runs one epoch of a small network (the memory of an epoch does not
grow with more epochs).

    python benchmarks/streaming.py [--quick]

Writes benchmarks/results/streaming.json; also run by `python benchmarks/run.py` (suite `streaming`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PYTHON, THREAD_ENV, header, say, write_result  # noqa: E402
from benchmarks.workloads import random_walk_table, tiny_bundle  # noqa: E402
from durability_cli.artifact import save_bundle  # noqa: E402

FULL = {"specimens": 2_000, "rows": 120, "warmup": 40, "samples": 100, "chunk": 500}
QUICK = {"specimens": 500, "rows": 60, "warmup": 20, "samples": 50, "chunk": 250}
# one epoch, a small network, large batches: the data path, not the arithmetic, is measured
TRAIN_ARGS = ["--epochs", "1", "--hidden", "16", "--layers", "1", "--batch-size", "64", "-q"]
TARGET = 1.5  # 10x the specimens within this factor of the peak


# Runs the CLI in the child and, at exit, copies its own /proc/self/status (VmHWM) to a file. The
# child's rusage would not do: Linux keeps the parent's high-water mark across fork + exec, so a
# parent that built a large table would inflate every child's peak.
_CHILD = (
    "import atexit, sys\n"
    "out = sys.argv[1]\n"
    "atexit.register(lambda: open(out, 'w').write(open('/proc/self/status').read()))\n"
    "sys.argv = ['durability', *sys.argv[2:]]\n"
    "from durability_cli.cli import main\n"
    "main()\n"
)


def _run(args: list[str], work: Path) -> dict:
    """Seconds and peak resident memory (VmHWM) of ``durability ARGS`` in a fresh process."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ} | THREAD_ENV
    status = work / "status.txt"
    start = time.perf_counter()
    proc = subprocess.run([PYTHON, "-c", _CHILD, str(status), *args], env=env, capture_output=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(
            f"durability {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
        )
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
    return {"seconds": round(seconds, 2), "peak_mib": round(int(line.split()[1]) / 1024, 1)}


def run(quick: bool) -> dict:
    """Both points, chunked and whole-table; the result payload (without the file write)."""
    s = QUICK if quick else FULL
    work = Path(tempfile.mkdtemp(prefix="durability-streaming-"))
    model = work / "m.safetensors"
    save_bundle(tiny_bundle(), str(model))

    def measure(label: str, make_table, command: list[str], suffix: str) -> list[dict]:
        """``durability COMMAND TABLE`` with and without --chunk-specimens, at S and 10 x S."""
        points = []
        for n in (s["specimens"], 10 * s["specimens"]):
            table = work / f"{label}{n}.parquet"
            make_table(n).to_parquet(table, index=False, row_group_size=50_000)
            base = [command[0], str(table), *command[1:]]
            chunk = ["--chunk-specimens", str(s["chunk"])]
            chunked = _run([*base, *chunk, "-o", str(work / f"c.{suffix}")], work)
            whole = _run([*base, "-o", str(work / f"w.{suffix}")], work)
            rows = n * s["rows"]
            points.append({"specimens": n, "rows": rows, "chunked": chunked, "whole": whole})
            say(
                f"[streaming] {label} {n:>7} specimens ({rows:,} rows): chunked {chunked['peak_mib']:.0f} MiB "
                f"{chunked['seconds']:.1f} s | whole {whole['peak_mib']:.0f} MiB {whole['seconds']:.1f} s"
            )
            table.unlink()
        return points

    forecast_args = ["forecast", "-m", str(model), "--samples", str(s["samples"]), "--threshold", "0.6", "-q"]
    points = measure(
        "forecast",
        lambda n: random_walk_table(n, s["rows"], warmup=s["warmup"], seed=2),
        forecast_args,
        "parquet",
    )
    train_points = measure(
        "train", lambda n: random_walk_table(n, s["rows"], seed=3), ["train", *TRAIN_ARGS], "safetensors"
    )

    def growth(pts, kind):
        return round(pts[1][kind]["peak_mib"] / pts[0][kind]["peak_mib"], 2)

    ratio, train_ratio = growth(points, "chunked"), growth(train_points, "chunked")
    return header("streaming", quick) | {
        "settings": s,
        "points": points,
        "peak_ratio_10x": ratio,
        "whole_peak_ratio_10x": growth(points, "whole"),
        "train_args": TRAIN_ARGS,
        "train_points": train_points,
        "train_peak_ratio_10x": train_ratio,
        "train_whole_peak_ratio_10x": growth(train_points, "whole"),
        "target": TARGET,
        "met": ratio <= TARGET and train_ratio <= TARGET,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller tables (a minute or two)")
    args = parser.parse_args()
    result = run(args.quick)
    result["command"] = "python benchmarks/streaming.py" + (" --quick" if args.quick else "")
    path = write_result("streaming", args.quick, result)
    say(
        f"10x specimens: forecast peak x{result['peak_ratio_10x']:.2f}, training peak "
        f"x{result['train_peak_ratio_10x']:.2f} (target <= {TARGET}); wrote {path}"
    )


if __name__ == "__main__":
    main()
