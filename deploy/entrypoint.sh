#!/bin/sh
# The image's one entry point: `coordinator [serve options]` or `trainer [start options]`, the same commands as
# `npx nx run coordinator:serve` and `npx nx run trainer:start`, run by Node directly (one process, PID 1, so
# Kubernetes' SIGTERM reaches it).
set -eu
cd "$(dirname "$0")/.."
role=${1:-}
[ $# -gt 0 ] && shift
case "$role" in
  coordinator)
    # The run folder lives on a volume: a coordinator that restarts continues from its last checkpoint.
    out=${DANN_OUT:-runs/distributed}
    if [ -f "$out/accounting.json" ]; then
      echo "the run in $out has finished (its model: $out/model.onnx); to train again, point DANN_OUT at a new folder." >&2
      exec sleep infinity
    fi
    if [ -f "$out/checkpoint.bin" ]; then set -- --resume "$@"; fi
    exec node --import tsx apps/coordinator/src/serve.ts --out "$out" "$@"
    ;;
  trainer)
    exec node --import tsx apps/trainer/src/start.ts "$@"
    ;;
  *)
    echo "usage: deploy/entrypoint.sh coordinator|trainer [options] (--usage lists each one's options)" >&2
    exit 2
    ;;
esac
