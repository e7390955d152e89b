#!/usr/bin/env bash
# DANN against source-only on the wasm backend: SynDigits -> MNIST and MNIST -> MNIST-M-style, two seeds.
#
# For each pair and seed:
#   so-SEED    source-only from scratch (network $PRESET, default paper), $SO_EPOCHS epochs
#   dann-SEED  warm-started from so-SEED (as the reference project did), $MORE_EPOCHS epochs of DANN
#   so+-SEED   warm-started from so-SEED, $MORE_EPOCHS more epochs of source-only: the same total training
#              as dann-SEED without the domain-adversarial term, i.e. the fair baseline
#   abl-SEED   only with ABLATION_OPTS: dann-SEED with those options added
# then tools:evaluate on the full test sets and tools:plot. $JOBS runs at a time (one per core: wasm uses
# one thread). A run whose log ends with "done:" is skipped, so an interrupted script can be rerun.
#
# usage: bash scripts/dann-experiments.sh            (OUT=runs/exp LIMIT=20000 SEEDS="1 2" JOBS=2 PAIRS="synth:mnist mnist:mnistm"
#                                                      DANN_OPTS="--lambda-max 1 --clip-norm 5" PHASE2_OPTS= ABLATION_OPTS=)
set -euo pipefail
OUT=${OUT:-runs/exp}
LIMIT=${LIMIT:-20000}
SEEDS=${SEEDS:-1 2}
JOBS=${JOBS:-2}
SO_EPOCHS=${SO_EPOCHS:-3}
MORE_EPOCHS=${MORE_EPOCHS:-2}
DANN_OPTS=${DANN_OPTS:---lambda-max 1 --clip-norm 5}
# Options of both warm-started runs (dann and so+), e.g. --target-entropy 0.2: the comparison stays DANN against the same training without it.
PHASE2_OPTS=${PHASE2_OPTS:-}
# When set, also abl-SEED: the dann run with these options added (e.g. --lambda-max 0: everything but the
# adversarial term), to tell what the adversarial term itself contributes.
ABLATION_OPTS=${ABLATION_OPTS:-}
PRESET=${PRESET:-paper}
PAIRS=${PAIRS:-synth:mnist mnist:mnistm}
mkdir -p "$OUT/logs"

# One job per line: NAME then trainer options.
# (Trailing blanks are stripped: xargs -L would join a line ending in one with the next.)
run_jobs() {
  sed 's/[[:space:]]*$//' | xargs -P "$JOBS" -L 1 bash -c '
    name=$0; log='"$OUT"'/logs/$name.log
    if [ -f "$log" ] && grep -q "^done:" "$log"; then echo "skip $name (done)"; exit 0; fi
    echo "train $name"
    npx tsx apps/trainer/src/train.ts --backend wasm --preset '"$PRESET"' --limit '"$LIMIT"' --lr 0.0005 --lambda-max 1 --lambda-gamma 10 --clip-norm 0 --out '"$OUT"'/$name "$@" > "$log" 2>&1 || { echo "FAILED $name: see $log"; exit 1; }'
}

phase1() {
  for pair in $PAIRS; do for seed in $SEEDS; do
    s=${pair%%:*}; t=${pair##*:}
    echo "$s-$t-so-$seed --method source-only --source $s --target $t --epochs $SO_EPOCHS --seed $seed"
  done; done
}
phase2() {
  for pair in $PAIRS; do for seed in $SEEDS; do
    s=${pair%%:*}; t=${pair##*:}; from=$OUT/$s-$t-so-$seed
    echo "$s-$t-dann-$seed --method dann --source $s --target $t --epochs $MORE_EPOCHS --seed $seed --init-from $from $DANN_OPTS $PHASE2_OPTS"
    echo "$s-$t-so+-$seed --method source-only --source $s --target $t --epochs $MORE_EPOCHS --seed $seed --init-from $from --clip-norm 5 $PHASE2_OPTS"
  done; done
  # The ablations last: the main comparison is complete first.
  if [ -n "$ABLATION_OPTS" ]; then for pair in $PAIRS; do for seed in $SEEDS; do
    s=${pair%%:*}; t=${pair##*:}; from=$OUT/$s-$t-so-$seed
    echo "$s-$t-abl-$seed --method dann --source $s --target $t --epochs $MORE_EPOCHS --seed $seed --init-from $from $DANN_OPTS $PHASE2_OPTS $ABLATION_OPTS"
  done; done; fi
}

phase1 | run_jobs
phase2 | run_jobs
runs=$(for pair in $PAIRS; do for seed in $SEEDS; do s=${pair%%:*}; t=${pair##*:}; for k in so so+ dann ${ABLATION_OPTS:+abl}; do echo "$OUT/$s-$t-$k-$seed"; done; done; done)
npx tsx tools/src/evaluate.ts $runs | tee "$OUT/results-table.md"
npx tsx tools/src/plot.ts $runs > "$OUT/logs/plot.log"
npx tsx tools/src/experiment-summary.ts $runs | tee "$OUT/summary.md"
