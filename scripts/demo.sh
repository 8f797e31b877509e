#!/usr/bin/env bash
# The main job, end to end, on the bundled coating data: describe the table, train, calibrate the
# band on specimens the model never saw, backtest on others, forecast their future with end of
# life, and draw the results.
#
#   make demo                          # what you normally run (sets up .venv first)
#   bash scripts/demo.sh --epochs 5    # extra arguments go to `durability train` (a quick try)
#   DEMO_OUT=/tmp/d bash scripts/demo.sh   # write somewhere else than out/
#
# Needs `durability` and the project's `python` on PATH (make demo puts .venv/bin first).
# Writes only under out/ (or $DEMO_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${DEMO_OUT:-out}
mkdir -p "$OUT"
step() { printf '\n== %s\n' "$*" >&2; }

step "1/8  What is in the table?"
durability schema sample_data/coating.csv

step "2/8  Train on 48 coating specimens (a few minutes on a laptop CPU)"
durability train sample_data/coating.csv --static material -o "$OUT/coating.safetensors" "$@"

step "3/8  Make 48 new specimens the model has never seen (same physics, seed 1)"
python -c '
import sys
from durability_cli.synthetic import make_coating
noisy, _clean = make_coating(seed=1)
noisy["specimen_id"] = "T" + noisy["specimen_id"]  # not the training names (evaluate would warn)
noisy.to_csv(sys.argv[1], index=False)
' "$OUT/coating_test.csv"

step "4/8  Calibrate the band and the end-of-life interval on 48 other new specimens (seed 2)"
python -c '
import sys
from durability_cli.synthetic import make_coating
noisy, _clean = make_coating(seed=2)
noisy["specimen_id"] = "K" + noisy["specimen_id"]  # not the names C001... of the training table
noisy.to_csv(sys.argv[1], index=False)
' "$OUT/coating_calibration.csv"
durability calibrate "$OUT/coating_calibration.csv" -m "$OUT/coating.safetensors" --context 40 --bins 4 \
    --threshold 0.6 --eol-interval -o "$OUT/coating.safetensors"

step "5/8  A plan: keep the first 40 rows of each new specimen, hide durability after that"
python -c '
import sys
import pandas as pd
plan = pd.read_csv(sys.argv[1])
row = plan.groupby("specimen_id").cumcount()  # 0, 1, 2, ... within each specimen
plan.loc[row >= 40, "durability"] = float("nan")  # written as an empty field: the future
plan.to_csv(sys.argv[2], index=False)
' "$OUT/coating_test.csv" "$OUT/plan.csv"

step "6/8  Backtest: forecast after 40 rows, score against the truth and the baselines"
durability evaluate "$OUT/coating_test.csv" -m "$OUT/coating.safetensors" --context 40 --threshold 0.6 \
    -o "$OUT/metrics.json" --plot "$OUT/errors.png" --time-unit days

step "7/8  Forecast the plan, with end of life at durability 0.6"
durability forecast "$OUT/plan.csv" -m "$OUT/coating.safetensors" --threshold 0.6 \
    --eol-out "$OUT/eol.csv" -o "$OUT/forecast.csv"

step "8/8  Pictures"
durability plot forecast "$OUT/plan.csv" -m "$OUT/coating.safetensors" --truth "$OUT/coating_test.csv" \
    --threshold 0.6 --max 6 --time-unit days -o "$OUT/forecast.png"
durability plot calibration "$OUT/coating_test.csv" -m "$OUT/coating.safetensors" --context 40 \
    --time-unit days -o "$OUT/calibration.png"
durability plot eol "$OUT/coating_test.csv" -m "$OUT/coating.safetensors" --threshold 0.6 --context 40 \
    --time-unit days -o "$OUT/eol.png"
durability plot history "$OUT/coating.safetensors" -o "$OUT/history.png"

cat >&2 <<EOF

Done. Outputs in $OUT/:
  coating.safetensors  the trained model, its band calibrated   (durability inspect $OUT/coating.safetensors)
  coating_calibration.csv  48 other unseen specimens the band was calibrated on
  coating_test.csv     48 unseen specimens, the truth
  plan.csv             the same with durability hidden after 40 rows per specimen
  metrics.json         backtest scores           (jq .models.model.rmse $OUT/metrics.json)
  errors.png           RMSE by days ahead, model vs baselines, specimens per step
  forecast.csv         mean and p10/p50/p90 per future row
  eol.csv              end of life per specimen: time, probability, p10/p50/p90, remaining life
  forecast.png         six specimens: history, forecast band, hidden truth, threshold, end of life
  calibration.png      can the intervals be trusted: observed vs nominal quantiles, 80 % coverage by horizon
  eol.png              predicted (median, p10-p90) vs true end of life per unseen specimen
  history.png          training loss, free-running validation RMSE, teacher forcing per epoch
EOF
