#!/usr/bin/env bash
# The read lane in a process of its own (harness.reading) against threads of the pipeline's process, on the
# device machine: tools/read_lane_check.py, then CV-CUDA's sample beside this project's runs read both
# ways, alternating, with their timelines (tools/peer_compare.sh, PEER_TRACE=1).
# Usage there: source .dev/setup.sh && bash tools/readers_compare.sh ["32 224" "32 520"]   (writes under $OUT)
set -uo pipefail
OUT=${OUT:-/tmp/harness-readers}
mkdir -p "$OUT"
export OUT
python3 tools/read_lane_check.py 3 --json "$OUT/read_lane.json" 2>&1 | tee "$OUT/read_lane.log"
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("32 224" "32 520")
PEER_TRACE=1 PEER_OURS="${PEER_OURS:-sample-work-compiled-fused sample-work-compiled-fused-threads fastest-fused fastest-fused-threads}" \
  timeout "${READERS_BUDGET:-480}" bash tools/peer_compare.sh "${cases[@]}" 2>&1 | tee "$OUT/peer.log"
tar -czf "$OUT/peer.tar.gz" -C "$OUT" peer  # again: a run cut short by the budget has not tarred it
