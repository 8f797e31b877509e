"""The mixed-effects path, the reliability textbooks' baseline, on every set of the suite.

Persistence, linear and exponential read one specimen's warm-up alone. The mixed-effects path
(durability_cli/mixed_effects.py; Lu & Meeker 1993) also learns from the training specimens: a
polynomial path per specimen whose coefficients vary around the population's, each test
specimen's own estimated from its warm-up. No model is trained here: for each set and test split
(``realdata.split(name, seed=split)`` or ``make_split(name, 32, 16, seed=split)``; split 0 is
section 1's) it fits the path on the training specimens (degree 1-3 chosen over 5 folds of them,
each forecast from the set's validation warm-up) and scores it on the test specimens as the
suite scores its baselines (accuracy.mixed_effects_baseline), beside the linear baseline.

    python benchmarks/mixed_effects.py --sets laser,alloy_a --splits 0,1,2,3,4

Writes results/mixed-effects.json, which ``run.py --report`` adds to section 1 (split 0) and to
section 5 (every split of the measured sets) as one more baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import accuracy  # noqa: E402
from benchmarks.common import RESULTS, header, one_thread  # noqa: E402
from benchmarks.splits import SETS, prepared  # noqa: E402

OUT = RESULTS / "mixed-effects.json"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default=",".join(SETS), help="sets of the accuracy suite, comma-separated")
    p.add_argument("--splits", default="0,1,2,3,4", help="test-split seeds (0 is the suite's)")
    p.add_argument("--out", type=Path, default=OUT, help="the JSON file to write")
    args = p.parse_args(argv)
    one_thread()
    out = header("mixed-effects", False) | {"sets": {}}
    for name in args.sets.split(","):
        rows_out = []
        for split in (int(s) for s in args.splits.split(",")):
            info, ds, test, clean, warmup, rows = prepared(name, split)
            found = accuracy.run_baselines(test, rows, warmup, info, ds)
            me = found.get("mixed_effects")
            rows_out.append({"split": split, "baselines": found})
            line = f"{name} split {split}: linear {found['linear']['rmse']:.4g}"
            if me:
                line += f", mixed_effects {me['rmse']:.4g} (degree {me['degree']})"
            print(line, flush=True)
        out["sets"][name] = {"splits": rows_out}
    args.out.write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
