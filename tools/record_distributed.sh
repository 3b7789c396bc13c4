#!/usr/bin/env bash
# The recorded multi-GPU run of harness.distributed (torchrun): one process, one process per GPU, two
# processes per GPU, and the same GPUs as two torchrun "nodes" on this host (each node sees one GPU through
# CUDA_VISIBLE_DEVICES, rendezvous over localhost: the path a real two-node run takes).  Every run is
# checked to have written each input's overlay exactly once.  Writes OUTDIR/world*.json and OUTDIR/run.log.
#
#   bash tools/record_distributed.sh OUTDIR [IMAGES] [-- extra harness flags]     (IMAGES: 2048 by default)
set -uo pipefail
out=${1:?usage: record_distributed.sh OUTDIR [IMAGES] [-- harness flags]}
images=${2:-2048}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
flags=(--weights synthetic -b 32 -th 520 -tw 520 --precision fp16 --warmup_batches 2 "$@")
mkdir -p "$out"
log=$out/run.log
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())')
echo "== $(date -u +%T) $gpus GPU(s); $images 1920x1080 inputs; flags: ${flags[*]}" | tee -a "$log"
python3 - "$work/in" "$images" <<'PY'
import sys
from pathlib import Path
from harness.benchkit import photographs
folder, count = Path(sys.argv[1]), int(sys.argv[2])
folder.mkdir()
for index, data in enumerate(photographs("1920x1080", count)):
    (folder / f"image_{index:05d}.jpg").write_bytes(data)
PY

check_outputs() {  # name: every input written once, nothing else
    local written
    written=$(find "$work/out-$1" -name '*.jpg' | wc -l)
    if [ "$written" -eq "$images" ]; then echo "   $1: $written overlays for $images inputs" | tee -a "$log"
    else echo "   $1: FAILED, $written overlays for $images inputs" | tee -a "$log"; fi
}
launch() {  # name, seconds, processes per node, more harness flags...
    local name=$1 seconds=$2 procs=$3
    shift 3
    echo "== $(date -u +%T) $name: torchrun --standalone --nproc-per-node $procs -m harness.distributed $*" | tee -a "$log"
    timeout "$seconds" torchrun --standalone --nproc-per-node "$procs" -m harness.distributed -i "$work/in" \
        -o "$work/out-$name" --json "$out/$name.json" "${flags[@]}" "$@" ${baseline:+--baseline "$baseline"} \
        >> "$log" 2>&1
    echo "   exit $?: $(tail -1 "$log")"
    check_outputs "$name"
}
baseline=
launch world1 150 1
[ -f "$out/world1.json" ] && baseline=$out/world1.json
if [ "$gpus" -ge 2 ]; then
    launch "world$gpus" 150 "$gpus"
    launch "world$((2 * gpus))-2pergpu" 150 "$((2 * gpus))" --procs_per_gpu 2
    # two nodes of one GPU each, on this host: two torchrun agents meet at a c10d rendezvous on localhost
    name=world2-2nodes
    echo "== $(date -u +%T) $name: two torchrun agents, --nnodes 2, one GPU each" | tee -a "$log"
    for node in 1 0; do
        CUDA_VISIBLE_DEVICES=$node timeout 150 torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d \
            --rdzv-endpoint localhost:29477 --rdzv-id harness-2nodes -m harness.distributed -i "$work/in" \
            -o "$work/out-$name" --json "$out/$name.json" "${flags[@]}" ${baseline:+--baseline "$baseline"} \
            >> "$log.node$node" 2>&1 &
    done
    wait
    cat "$log.node0" "$log.node1" >> "$log"; rm -f "$log.node0" "$log.node1"
    echo "   $(grep -h 'process(es)' "$log" | tail -1)"
    check_outputs "$name"
fi
rm -rf "$work"
