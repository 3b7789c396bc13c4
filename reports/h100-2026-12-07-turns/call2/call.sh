#!/usr/bin/env bash
# Call 3, at the landed HEAD ba2635d: the runner's GPU tests (the codec turns, both executors, compiled
# included); threads against processes reading and checking the peer files; fastest-fused-lenient b32/224
# with and without the codec turns beside the sample, as far as the call's time goes.
export HARNESS_GIT_COMMIT=ba2635d
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.."
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader; lscpu | grep -E "Model name|^CPU\(s\)|Thread|Model:|family"; date -u; git log --oneline -1; git status --short | head; } > $OUT/machine.txt 2>&1
mkdir -p $OUT/c3
timeout 110 python3 -m pytest tests/test_runner.py -m gpu -v -rs -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|Error" > $OUT/c3/gpu_runner_tests.log
tail -3 $OUT/c3/gpu_runner_tests.log
echo "elapsed $SECONDS s"
python3 .dev/peer/make_images.py /tmp/peer_imgs -n 256 --noise 2 >/dev/null
timeout 60 python3 tools/read_lane_check.py 0 --images /tmp/peer_imgs --files 256 --workers 1,4,8,16 --modes process --ceiling --json $OUT/c3/read_lane.json 2>&1 | tee $OUT/c3/read_lane.log
echo "elapsed $SECONDS s"
names="fastest-fused-lenient"
if git add -A && git -c user.name=d -c user.email=d@d commit -qm "working tree"; then
  T0=$(git rev-parse --short HEAD)
  if git apply .dev/exp-no-turns.patch && git -c user.name=d -c user.email=d@d commit -qam "no turns"; then
    T1=$(git rev-parse --short HEAD); git checkout -q "$T0"
    names="fastest-fused-lenient fastest-fused-lenient-at$T1"
  fi
  echo "tree $T0 (landed ba2635d), without the turns ${T1:-none}" | tee $OUT/c3/trees.txt
fi
left=$((470 - SECONDS))
[ $left -gt 60 ] && PEER_REPEAT=2 PEER_TRACE=1 PEER_OURS="$names" OUT=$OUT/c3 timeout $left bash tools/peer_compare.sh "32 224" 2>&1 | tee $OUT/c3/peer.log | tail -8
echo "elapsed $SECONDS s"
left=$((575 - SECONDS))
[ $left -gt 30 ] && timeout $left python3 -m pytest tests/test_gpu.py tests/test_faults.py tests/test_trace.py tests/test_strict_check.py tests/test_reading.py -m gpu -k "not compil and not graph" -v -rs -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|Error" > $OUT/c3/gpu_other_tests.log
tail -3 $OUT/c3/gpu_other_tests.log
echo "elapsed $SECONDS s"
tar -czf $OUT/c3.tar.gz -C $OUT c3
