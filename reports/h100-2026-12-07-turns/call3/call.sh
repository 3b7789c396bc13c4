#!/usr/bin/env bash
# Call 4, at the landed HEAD ba2635d: the turns' effect again, order reversed (without first), lenient and
# strict, b32/224; then b32/520 lenient with and without, as far as the call's time goes.
export HARNESS_GIT_COMMIT=ba2635d
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Model:|family"; date -u; git log --oneline -1; git status --short | head; } > $OUT/machine.txt 2>&1
mkdir -p $OUT/c4
python3 .dev/peer/make_images.py /tmp/peer_imgs -n 256 --noise 2 >/dev/null
git add -A && git -c user.name=d -c user.email=d@d commit -qm "working tree"
T0=$(git rev-parse --short HEAD)
git apply .dev/exp-no-turns.patch && git -c user.name=d -c user.email=d@d commit -qam "no turns"
T1=$(git rev-parse --short HEAD); git checkout -q "$T0"
echo "tree $T0 (landed ba2635d), without the turns $T1" | tee $OUT/c4/trees.txt
PEER_REPEAT=2 PEER_TRACE=1 PEER_OURS="fastest-fused-lenient-at$T1 fastest-fused-lenient fastest-fused-at$T1 fastest-fused" OUT=$OUT/c4 timeout 360 bash tools/peer_compare.sh "32 224" 2>&1 | tee $OUT/c4/peer224.log | tail -10
echo "elapsed $SECONDS s"
left=$((560 - SECONDS))
[ $left -gt 90 ] && PEER_REPEAT=1 PEER_TRACE=1 PEER_OURS="fastest-fused-lenient-at$T1 fastest-fused-lenient" OUT=$OUT/c4 timeout $left bash tools/peer_compare.sh "32 520" 2>&1 | tee $OUT/c4/peer520.log | tail -6
echo "elapsed $SECONDS s"
tar -czf $OUT/c4.tar.gz -C $OUT c4
