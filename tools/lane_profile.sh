#!/usr/bin/env bash
# Where the overlapped executor's host time goes, on the sample's images: by default like for like compiled at
# b32/520 (the sample-work-compiled preset, harness/presets.py; LANE_PRESET, LANE_BATCH and LANE_SIZE choose
# another; LANE_MODES="gil" records only the first py-spy mode): the run as is, with --lenient (no libjpeg
# check in the read lane), then under py-spy twice: the threads holding the interpreter's lock (--gil), and
# every thread with native frames (--idle --native: who waits for the lock).  tools/pyspy_summary.py
# summarises each recording.  Writes $OUT/lanes.tar.gz.
# Usage there: source .dev/setup.sh && bash tools/lane_profile.sh   (py-spy on PATH, e.g. from a wheel)
set -uo pipefail
OUT=${OUT:-/tmp/harness-lanes}
mkdir -p "$OUT/lanes"
IMAGES=/tmp/peer_imgs
[ -d "$IMAGES" ] || python3 .dev/peer/make_images.py "$IMAGES" -n 256 --noise 2 >/dev/null
# the recordings take the whole process (imports, compile, warm-up): 8 copies of the 256 files make the
# run they are about most of it (256 files run in about 1 s, as long as the imports)
MANY=/tmp/peer_imgs_x8
if [ ! -d "$MANY" ]; then
  mkdir -p "$MANY"
  for copy in 1 2 3 4 5 6 7 8; do for f in "$IMAGES"/*.jpg; do ln -s "$f" "$MANY/${copy}_$(basename "$f")"; done; done
fi
PRESET=${LANE_PRESET:-sample-work-compiled} BATCH=${LANE_BATCH:-32} SIZE=${LANE_SIZE:-520}
RUN=(python3 -m harness.distributed -o /tmp/harness_out -b "$BATCH" -th "$SIZE" -tw "$SIZE" --model fcn_resnet101
     --weights synthetic --warmup_batches 2 $(python3 -m harness.presets "$PRESET"))
summary() {
  python3 - "$1" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["benchmarks"][0]["extra_info"]
print(f"   steady {e['steady_images_per_s']:.1f} images/s, bound {e['bound_images_per_s'] or 0:.1f}, "
      f"lanes {({k: round(v, 3) for k, v in e['lane_seconds'].items()} if e['lane_seconds'] else None)}")
PY
}
for name in as-is lenient; do
  options=()
  [ "$name" = lenient ] && options=(--lenient)
  rm -rf /tmp/harness_out
  "${RUN[@]}" -i "$IMAGES" --json "$OUT/lanes/$name.json" "${options[@]}" 2>&1 | tail -1 | sed "s/^/$name: /"
  summary "$OUT/lanes/$name.json"
done
for mode in ${LANE_MODES:-gil native}; do
  # --threads: each stack starts with its thread's name (harness-read_3), which pyspy_summary.py groups by;
  # --nonblocking: py-spy does not stop the process for each sample (stopping it made the first recording
  # outlast its call's time limit on the H100); native stacks need the stops, so that one samples rarely
  flags=(--threads --gil --nonblocking) rate=100
  [ "$mode" = native ] && flags=(--threads --idle --native) rate=20
  rm -rf /tmp/harness_out
  py-spy record "${flags[@]}" -r "$rate" -f raw -o "$OUT/lanes/pyspy-$mode.txt" -- \
    "${RUN[@]}" -i "$MANY" --json "$OUT/lanes/pyspy-$mode.json" > "$OUT/lanes/pyspy-$mode.log" 2>&1
  echo "py-spy --$mode (rc $?):"
  summary "$OUT/lanes/pyspy-$mode.json"
  python3 tools/pyspy_summary.py "$OUT/lanes/pyspy-$mode.txt" | tee "$OUT/lanes/pyspy-$mode-summary.txt"
done
tar -czf "$OUT/lanes.tar.gz" -C "$OUT" lanes
