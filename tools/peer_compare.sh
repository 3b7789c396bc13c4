#!/usr/bin/env bash
# Side by side with CV-CUDA's own segmentation sample (.dev/peer), in one device call, on one image
# folder: for each case the sample runs, then this project (like for like, then its fastest options), then
# the sample again.  Writes the sample's PEER_JSON files and harness.distributed's JSON under $OUT/peer.
# Usage there: source .dev/setup.sh && bash tools/peer_compare.sh ["32 224" "32 520" "4 224"]
# This project's runs are presets (harness/presets.py, the sample-workload benchmark's names): by default
# sample-work (like for like: the sample's model with its auxiliary head, TF32, eager), sample-work-compiled-
# fused (the same work compiled) and fastest-fused (fp16, compiled, the downscaled blur).
# PEER_OURS="sample-work fastest-fused" runs only those, in that order.  An entry PRESET-lenient runs PRESET
# without the libjpeg check of every file (which the sample does not make); PRESET-threads with its files
# read in threads of the pipeline's process (HARNESS_READERS=threads), as before harness.reading;
# PRESET-writethreads with its overlays written by the pipeline's process (HARNESS_WRITERS=threads);
# PRESET-readersN with N reader threads (HARNESS_READ_WORKERS=N); PRESET-codecN with N CPU threads in each
# nvImageCodec decoder and encoder (HARNESS_CODEC_THREADS=N); PRESET-switchMS with the interpreter's switch
# interval set to MS milliseconds in every process (a sitecustomize.py); PRESET-atREV from a git worktree of
# commit REV instead of the working tree (HEAD on the device is the landed main: a change against it, in the
# same call).  Suffixes combine, in any order; every name is checked before the first run.
# PEER_DEPTHS=1 adds depths 1 and 3 and the sequential executor, like for like, at the first case.
# PEER_REPEAT=N runs each of them N times in a row (files named <name>_<n>): the spread between runs.
# PEER_TRACE=1 writes each of this project's runs' timelines (--trace) beside their JSON.
set -uo pipefail
OUT=${OUT:-/tmp/harness-peer}
mkdir -p "$OUT/peer"
IMAGES=/tmp/peer_imgs
[ -d "$IMAGES" ] || python3 .dev/peer/make_images.py "$IMAGES" -n 256 --noise 2 >/dev/null
LIKE=($(python3 -m harness.presets sample-work)) || exit 2
peer() {  # batch size suffix
  PEER_TIMED_RUNS=2 PEER_JSON="$OUT/peer/peer_b$1_s$2$3.json" \
    bash .dev/peer/cvcuda_sample/run_peer.sh "$IMAGES" "$1" "$2" /tmp/peer_out 2>/dev/null | grep "^PEER " | sed "s/^/b$1 s$2$3 /"
}
ours() {  # name batch size [options]
  local name=$1 b=$2 s=$3; shift 3
  rm -rf /tmp/harness_out
  echo "   load average before $name: $(cut -d' ' -f1-3 /proc/loadavg)"
  local trace=()
  [ "${PEER_TRACE:-0}" = 1 ] && trace=(--trace "$OUT/peer/trace_${name}_b${b}_s${s}.json")
  (cd "${tree:-.}" && python3 -m harness.distributed -i "$IMAGES" -o /tmp/harness_out --json "$OUT/peer/harness_${name}_b${b}_s${s}.json" "${trace[@]}" \
    -b "$b" -th "$s" -tw "$s" --model fcn_resnet101 --weights synthetic --warmup_batches 2 "$@") 2>&1 | tail -1 | sed "s/^/$name b$b s$s: /"
  python3 - "$OUT/peer/harness_${name}_b${b}_s${s}.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["benchmarks"][0]["extra_info"]  # rank 0: its lanes
print(f"   steady {e['steady_images_per_s']:.1f} images/s, bound {e['bound_images_per_s'] or 0:.1f}, "
      f"lanes {({k: round(v, 3) for k, v in e['lane_seconds'].items()} if e['lane_seconds'] else None)}")
if e.get("lane_cpu_seconds"):  # the lanes' threads' CPU time: near the run's seconds, they take turns
    print(f"   lanes' CPU {({k: round(v, 3) for k, v in e['lane_cpu_seconds'].items()})} of {e['seconds']:.3f} s, "
          f"process CPU {e['process_cpu_seconds']:.3f} s")
PY
}
parse() {  # NAME: its preset's options, with its suffixes (-lenient, -threads, -writethreads, -readersN, ...)
  local preset=$1
  readers=process writers=process workers= codec= switch= at= extra=()
  while :; do
    case $preset in
      *-lenient) extra=(--lenient) preset=${preset%-lenient} ;;  # no libjpeg check
      *-writethreads) writers=threads preset=${preset%-writethreads} ;;  # written by the pipeline's process
      *-threads) readers=threads preset=${preset%-threads} ;;  # read in threads of the pipeline's process
      *) if [[ $preset =~ ^(.*)-readers([0-9]+)$ ]]; then  # N reader threads
           preset=${BASH_REMATCH[1]} workers=${BASH_REMATCH[2]}
         elif [[ $preset =~ ^(.*)-codec([0-9]+)$ ]]; then  # N threads in each nvImageCodec decoder and encoder
           preset=${BASH_REMATCH[1]} codec=${BASH_REMATCH[2]}
         elif [[ $preset =~ ^(.*)-switch([0-9.]+)$ ]]; then  # the interpreter's switch interval, in ms
           preset=${BASH_REMATCH[1]} switch=${BASH_REMATCH[2]}
         elif [[ $preset =~ ^(.*)-at([0-9a-fA-F]{4,40}|HEAD)$ ]]; then  # another commit's tree
           preset=${BASH_REMATCH[1]} at=${BASH_REMATCH[2]}
           git rev-parse -q --verify "$at^{commit}" >/dev/null || { echo "no commit $at here" >&2; return 2; }
         else break; fi ;;
    esac
  done
  options=($(python3 -m harness.presets "$preset")) || return 2
  options+=("${extra[@]}")
}
# a sitecustomize.py, first on the path for the -switchMS runs: every Python process of the run imports it
SWITCH=$(mktemp -d)
trap 'rm -rf "$SWITCH"' EXIT
echo 'import os, sys; sys.setswitchinterval(float(os.environ["PEER_SWITCH_MS"]) / 1000)' > "$SWITCH/sitecustomize.py"
BASE_PYTHONPATH=${PYTHONPATH:-} BASE_COMMIT=${HARNESS_GIT_COMMIT:-}
plain() {  # the settings of a run without suffixes
  export HARNESS_READERS=process HARNESS_WRITERS=process PYTHONPATH=$BASE_PYTHONPATH HARNESS_GIT_COMMIT=$BASE_COMMIT
  tree=
  unset HARNESS_READ_WORKERS HARNESS_CODEC_THREADS PEER_SWITCH_MS
}
names=${PEER_OURS:-sample-work sample-work-compiled-fused fastest-fused}
for name in $names; do parse "$name" >/dev/null || exit 2; done  # every name, before the first run
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("32 224" "32 520" "4 224")
for case in "${cases[@]}"; do
  set -- $case
  peer "$1" "$2" ""
  for name in $names; do
    parse "$name"
    export HARNESS_READERS=$readers HARNESS_WRITERS=$writers
    if [ -n "$workers" ]; then export HARNESS_READ_WORKERS=$workers; else unset HARNESS_READ_WORKERS; fi
    if [ -n "$codec" ]; then export HARNESS_CODEC_THREADS=$codec; else unset HARNESS_CODEC_THREADS; fi
    if [ -n "$switch" ]; then export PEER_SWITCH_MS=$switch PYTHONPATH="$SWITCH${BASE_PYTHONPATH:+:$BASE_PYTHONPATH}"
    else unset PEER_SWITCH_MS; export PYTHONPATH=$BASE_PYTHONPATH; fi
    tree= HARNESS_GIT_COMMIT=$BASE_COMMIT
    if [ -n "$at" ]; then  # its own commit in its records
      tree=/tmp/peer-at-$at HARNESS_GIT_COMMIT=$(git rev-parse "$at")
      [ -d "$tree" ] || git worktree add -q --detach "$tree" "$at" || exit 2
    fi
    export HARNESS_GIT_COMMIT
    if [ -z "${PEER_REPEAT:-}" ]; then ours "$name" "$1" "$2" "${options[@]}"; continue; fi
    for n in $(seq "$PEER_REPEAT"); do ours "${name}_$n" "$1" "$2" "${options[@]}"; done
  done
  plain
  peer "$1" "$2" "_after"
done
# The executor's depth and the sequential executor, like for like at the first case's batch and size
set -- ${cases[0]}
if [ "${PEER_DEPTHS:-0}" = 1 ]; then
  for option in "--depth 1" "--depth 3" "--executor sequential"; do
    ours "sample-work-$(echo "$option" | tr -d ' -')" "$1" "$2" "${LIKE[@]}" $option
  done
fi
python3 tools/peer_table.py "$OUT/peer"  # steady against steady: the sample's headline counts its set-up
tar -czf "$OUT/peer.tar.gz" -C "$OUT" peer  # one file: the device tool brings back only a few
