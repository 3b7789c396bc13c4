#!/usr/bin/env bash
# The regression gate's own figures on a GPU (false alarms between two runs of one commit, a real slowdown
# caught), as recorded in reports/: each step writes under $OUT.
#   bash tools/gate_check.sh run NAME      the gate's suites (tools/ci_bench.sh) into $OUT/NAME.json
#   bash tools/gate_check.sh loaded NAME   the whole-pipeline cases of those suites (end to end, throughput,
#                                          sample workload) while a second process keeps the GPU busy with
#                                          fp16 matrix products: the same cases, really slower
#   bash tools/gate_check.sh gate A B      python -m harness.report gate $OUT/A.json $OUT/B.json (+ .md, .xml)
set -uo pipefail
OUT=${OUT:-/tmp/harness-gate}
mkdir -p "$OUT"
case $1 in
  run)
    bash tools/ci_bench.sh "$OUT/$2.json" -q > "$OUT/$2.log" 2>&1; echo "$2: pytest rc $?"; tail -n 3 "$OUT/$2.log" ;;
  loaded)
    python3 -c "
import torch
x = torch.randn(8192, 8192, device='cuda', dtype=torch.float16)
while True:
    y = x @ x" &
    hog=$!
    bash tools/ci_bench.sh "$OUT/$2.json" -q -k "test_end_to_end or test_throughput or test_sample_workload" \
      > "$OUT/$2.log" 2>&1; echo "$2: pytest rc $?"; tail -n 3 "$OUT/$2.log"
    kill "$hog"; wait "$hog" 2>/dev/null ;;
  gate)
    python3 -m harness.report gate "$OUT/$2.json" "$OUT/$3.json" "${@:4}" --markdown "$OUT/gate-$2-$3.md" \
      --junit "$OUT/gate-$2-$3.xml"; echo "gate $2 $3: exit $?"; grep -m 3 -E "^(\*\*|#|[0-9])" "$OUT/gate-$2-$3.md" ;;
esac
