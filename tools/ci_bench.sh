#!/usr/bin/env bash
# The benchmark suites the regression gate runs (.github/workflows/gpu-benchmarks.yml; the committed
# baselines in reports/baselines/ come from this script): every suite at batch 32, model size 520, 1920x1080
# sources, fp16 and the GPU engines (the sample-workload cases at the sample's b32/520, in tf32 like for like
# and with the faster options), adaptive rounds at the suites' defaults.  About 8 minutes on an H100.
# Usage: bash tools/ci_bench.sh OUT.json [PYTEST ARGS]
set -euo pipefail
out=$1; shift
exec "${PYTHON:-python3}" -m pytest bench/ -p no:cacheprovider --benchmark-json "$out" \
  --bench-batches 32 --bench-model-sizes 520 --bench-sources 1920x1080 --bench-precisions fp16 \
  --bench-engines cvcuda,torch-cuda "$@"
