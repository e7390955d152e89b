#!/usr/bin/env bash
# The adaptation recipes over seeds: each configs/NAME.json in $CONFIGS is trained once per seed in $SEEDS
# (trainer:train, one process each, $JOBS at a time: wasm uses one thread), then every run's last model (for
# mean-teacher, the teacher) is evaluated on the full source and target test sets (tools:evaluate --checkpoint
# last: no target labels choose anything), and a mean ± std table is written to $OUT/summary.md.
# A run whose log ends with "done:" is skipped, so an interrupted script can be rerun.
#
# usage: bash scripts/adaptation-experiments.sh     (OUT=runs/adapt SEEDS="1 2 3" JOBS=2
#                                                      CONFIGS="usps-mnist mnist-usps synth-mnist mnist-mnistm" EXTRA=)
set -euo pipefail
OUT=${OUT:-runs/adapt}
SEEDS=${SEEDS:-1 2 3}
JOBS=${JOBS:-2}
CONFIGS=${CONFIGS:-usps-mnist mnist-usps synth-mnist mnist-mnistm}
# Options added to every run (e.g. --eval-limit 10000).
EXTRA=${EXTRA:-}
mkdir -p "$OUT/logs"

for config in $CONFIGS; do
  [ -f "configs/$config.json" ] || { echo "configs/$config.json does not exist" >&2; exit 1; }
  for seed in $SEEDS; do echo "$config-$seed configs/$config.json $seed"; done
done | xargs -P "$JOBS" -L 1 bash -c '
  name=$0; log='"$OUT"'/logs/$name.log
  if [ -f "$log" ] && grep -q "^done:" "$log"; then echo "skip $name (done)"; exit 0; fi
  echo "train $name"
  npx tsx apps/trainer/src/train.ts --backend wasm --config "$1" --seed "$2" --out '"$OUT"'/$name '"$EXTRA"' > "$log" 2>&1 || { echo "FAILED $name: see $log"; exit 1; }'

runs=$(for config in $CONFIGS; do for seed in $SEEDS; do echo "$OUT/$config-$seed"; done; done)
npx tsx tools/src/evaluate.ts --checkpoint last $runs | tee "$OUT/results-table.md"
npx tsx tools/src/experiment-summary.ts $runs | tee "$OUT/summary.md"
