#!/usr/bin/env bash
# The regression gate's suites, run the way the gate needs them: each side in K fresh processes, interleaved
# (python -m harness.repeats), every suite at batch 32, model size 520, 1920x1080 sources, fp16 and the GPU
# engines (the sample-workload cases at the sample's b32/520, in tf32 like for like and with the faster
# options), adaptive rounds at the suites' defaults.  .github/workflows/gpu-benchmarks.yml runs it; one process
# of the whole takes about 8 minutes on an H100.
# Usage: bash tools/ci_bench.sh OUT_DIR [REPEATS OPTIONS: -n K, --side NAME=CHECKOUT ...] [-- PYTEST ARGS]
#   writes OUT_DIR/NAME.json for each side (default: one side, run=.), the processes' files in OUT_DIR/processes
set -euo pipefail
out=$1; shift
own=() pytest_args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; pytest_args=("$@"); break; fi
  own+=("$1"); shift
done
exec "${PYTHON:-python3}" -m harness.repeats -o "$out" "${own[@]}" -- \
  --bench-batches 32 --bench-model-sizes 520 --bench-sources 1920x1080 --bench-precisions fp16 \
  --bench-engines cvcuda,torch-cuda "${pytest_args[@]}"
