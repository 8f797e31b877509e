#!/usr/bin/env bash
# One short end-to-end check on an accelerator: train, evaluate and forecast on the bundled
# coating sample with --device (default cuda), then the same in mixed precision (--amp) and a
# training run read in groups (--chunk-specimens), and print the wall time of each step.
#   bash benchmarks/gpu_check.sh            # on a machine with a CUDA GPU
#   bash benchmarks/gpu_check.sh cpu        # the same script on the CPU, for comparison
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${1:-cuda}"
OUT="${OUT:-out/gpu_check}"
mkdir -p "$OUT"
python -c "import torch; print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available())"
t() { local start=$SECONDS; "$@"; echo "  ($((SECONDS - start)) s: $*)" >&2; }
t durability train sample_data/coating.csv --static material --epochs 20 --device "$DEVICE" \
  -o "$OUT/coating.safetensors" --quiet
t durability evaluate sample_data/coating.csv -m "$OUT/coating.safetensors" --context 40 --threshold 0.6 \
  --device "$DEVICE" -o "$OUT/metrics.json" --quiet
python - "$OUT" <<'PY'
import sys, numpy as np, pandas as pd
out = sys.argv[1]
df = pd.read_csv("sample_data/coating.csv")
df.loc[df.groupby("specimen_id").cumcount() >= 40, "durability"] = np.nan
df.to_csv(f"{out}/plan.csv", index=False)
PY
t durability forecast "$OUT/plan.csv" -m "$OUT/coating.safetensors" --samples 200 --threshold 0.6 \
  --device "$DEVICE" --eol-out "$OUT/eol.csv" -o "$OUT/forecast.csv" --quiet
t durability train sample_data/coating.csv --static material --epochs 20 --device "$DEVICE" --amp \
  -o "$OUT/coating_amp.safetensors" --quiet
t durability evaluate sample_data/coating.csv -m "$OUT/coating_amp.safetensors" --context 40 --threshold 0.6 \
  --device "$DEVICE" --amp -o "$OUT/metrics_amp.json" --quiet
t durability forecast "$OUT/plan.csv" -m "$OUT/coating.safetensors" --samples 200 --threshold 0.6 \
  --device "$DEVICE" --amp -o "$OUT/forecast_amp.csv" --quiet
t durability train sample_data/coating.csv --static material --epochs 5 --device "$DEVICE" \
  --chunk-specimens 16 -o "$OUT/coating_chunks.safetensors" --quiet
python - "$OUT" <<'PY'
import json, sys, pandas as pd
out = sys.argv[1]
for name in ("metrics", "metrics_amp"):
    print(name, "model RMSE", json.load(open(f"{out}/{name}.json"))["models"]["model"]["rmse"])
a, b = pd.read_csv(f"{out}/forecast.csv"), pd.read_csv(f"{out}/forecast_amp.csv")
print("forecast --amp vs float32: max |mean difference|", float((a.durability_mean - b.durability_mean).abs().max()))
PY
echo "outputs in $OUT"
