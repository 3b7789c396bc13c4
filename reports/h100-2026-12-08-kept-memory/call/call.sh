#!/usr/bin/env bash
# Call 5: the reading and writing processes keep their map of the shared memory and glibc keeps freed
# memory (working tree) against the landed ba2635d: the read lane's check alone, the runner's GPU tests,
# fastest-fused b32/224 with and without the check beside the sample.
export HARNESS_GIT_COMMIT=ba2635d
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Model:|family"; date -u; git log --oneline -1; git status --short | head; } > $OUT/machine.txt 2>&1
mkdir -p $OUT/c5
python3 .dev/peer/make_images.py /tmp/peer_imgs -n 256 --noise 2 >/dev/null
git add -A && git -c user.name=d -c user.email=d@d commit -qm "kept memory" || exit 1
T0=$(git rev-parse --short HEAD)
git worktree add -q /tmp/old ba2635d || exit 1
echo "tree $T0 (ba2635d with the kept memory), old ba2635d" | tee $OUT/c5/trees.txt
timeout 45 python3 tools/read_lane_check.py 0 --images /tmp/peer_imgs --files 256 --workers 14,16 --modes process --ceiling --json $OUT/c5/read_lane_new.json 2>&1 | tee $OUT/c5/read_lane_new.log
(cd /tmp/old && PYTHONPATH=/tmp/site:/tmp/old HARNESS_GIT_COMMIT=ba2635d timeout 30 python3 tools/read_lane_check.py 0 --images /tmp/peer_imgs --files 256 --workers 14,16 --modes process --json $OUT/c5/read_lane_old.json) 2>&1 | tee $OUT/c5/read_lane_old.log
echo "elapsed $SECONDS s"
timeout 70 python3 -m pytest tests/test_runner.py -m gpu -v -rs -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|Error" > $OUT/c5/gpu_runner_tests.log
tail -2 $OUT/c5/gpu_runner_tests.log
echo "elapsed $SECONDS s"
left=$((370 - SECONDS))
PEER_REPEAT=2 PEER_TRACE=1 PEER_OURS="fastest-fused-atba2635d fastest-fused fastest-fused-lenient-atba2635d fastest-fused-lenient" OUT=$OUT/c5 timeout $left bash tools/peer_compare.sh "32 224" 2>&1 | tee $OUT/c5/peer.log | tail -10
echo "elapsed $SECONDS s"
tar -czf $OUT/c5.tar.gz -C $OUT c5
