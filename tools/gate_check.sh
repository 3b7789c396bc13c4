#!/usr/bin/env bash
# The regression gate's protocol checked on a GPU (reports/h100-2026-12-06-repeats): every kind of case
# of the gate's suites (per stage, inference, end to end, throughput, sample workload) in a slice that fits
# a device call, sides interleaved in fresh processes by tools/ci_bench.sh (python -m harness.repeats).
#   bash tools/gate_check.sh protocol SIDE...   each SIDE is a name; a name starting with "slow" runs with
#                                               HARNESS_BENCH_SLOWDOWN=cvcuda:0.1 (10% more work in the
#                                               CV-CUDA end-to-end case); then gates every side against the first
#   bash tools/gate_check.sh causes             the per-stage CV-CUDA cases, 3 processes with the blocking
#                                               kernel and 3 without (HARNESS_BENCH_BLOCK=0): what it changes
# N (default 3) processes per side; BUDGET (default 0.5) seconds of rounds per case; output under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/harness-gate}
N=${N:-3}
BUDGET=${BUDGET:-0.5}
mkdir -p "$OUT"
SLICE="((test_stage_at or test_stage_on or test_blur) and cvcuda) or (test_decode and not 1920x1080-cpu) \
or (test_inference and default) or (test_end_to_end and cvcuda and not throughput) \
or (test_throughput and cvcuda and not from_files) \
or (test_sample_workload and b32-m520-sample-work and not nchw and not compiled)"
gate() {  # baseline candidate
  python3 -m harness.report gate "$OUT/$1.json" "$OUT/$2.json" --markdown "$OUT/gate-$1-$2.md" \
    --junit "$OUT/gate-$1-$2.xml"; echo "gate $1 $2: exit $?"; sed -n 3p "$OUT/gate-$1-$2.md"
  grep -F "**slower**" "$OUT/gate-$1-$2.md" || true
}
case $1 in
  protocol)
    shift
    sides=()
    for name in "$@"; do
      if [[ $name == slow* ]]; then sides+=(--side "$name=.,HARNESS_BENCH_SLOWDOWN=cvcuda:0.1"); else sides+=(--side "$name=."); fi
    done
    start=$(date +%s)
    bash tools/ci_bench.sh "$OUT" -n "$N" "${sides[@]}" -- -q --bench-budget-s "$BUDGET" -k "$SLICE" \
      > "$OUT/protocol.log" 2>&1; echo "repeats: exit $?, $(( $(date +%s) - start )) s for ${#sides[@]} sides x $N processes"
    tail -n 3 "$OUT/protocol.log"
    for name in "${@:2}"; do gate "$1" "$name"; done ;;
  causes)
    start=$(date +%s)
    bash tools/ci_bench.sh "$OUT/causes" -n "$N" --side "launched=.,HARNESS_BENCH_BLOCK=0" --side blocked=. -- -q \
      --bench-budget-s 1 -k "(test_stage_at_model_size or test_stage_on_logits or test_stage_at_source_size) and cvcuda" \
      > "$OUT/causes.log" 2>&1; echo "causes: exit $?, $(( $(date +%s) - start )) s"
    python3 - "$OUT/causes" <<'PY'
import json, sys
import numpy as np
for side in ("launched", "blocked"):
    data = json.load(open(f"{sys.argv[1]}/{side}.json"))
    for b in data["benchmarks"]:
        i = b["extra_info"]
        per = [f"{m * 1e3:.4f}" for m in i["process_medians_s"]]
        print(f"{side:8s} {i['stage']:13s} median {b['stats']['median'] * 1e3:.4f} ms  processes {' '.join(per)}  "
              f"noise {i['noise_rel_iqr']:.3f}  host {i['host_median_s'] * 1e3:.3f} ms")
PY
    ;;
esac
