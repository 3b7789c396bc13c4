#!/usr/bin/env bash
# The recorded GPU run of the benchmark suites: the default GPU matrix of bench/ in parts, each part its
# own --benchmark-json file (python -m harness.report reads them together); pytest's output goes to
# OUTDIR/run.log.  A part that would outlast
# the time it is given is stopped and says so; the others still run.
#
#   bash tools/record_gpu_run.sh OUTDIR PART...     PART: check stages e2e:... inference inference-options sample repeat
#
#   check      the GPU tests of the ops engines (CV-CUDA and torch-cuda against the CPU reference)
#   stages     bench/test_stages.py except inference: every stage of every engine, the pre- and
#              post-processing chains against their bandwidth floors, the copy bandwidth
#   e2e:PRECISION[:ENGINE[:SOURCE]]
#              bench/test_end_to_end.py at one precision (and engine, source size): per batch with the stage
#              breakdown, uninstrumented, and throughput over 10 consecutive batches.  On an H100 e2e:fp16
#              takes 4.5 minutes; IEEE fp32 is 5x slower at 520: run e2e:fp32:cvcuda:640x480,
#              e2e:fp32:cvcuda:1920x1080, e2e:fp32:torch-cuda:640x480 and e2e:fp32:torch-cuda:1920x1080
#              as separate device calls
#   inference  inference alone, DeepLabV3 and FCN, fp32 and fp16 (3 minutes)
#   inference-options  the same at batch 32, fp16 and tf32, channels-last and without cuDNN autotuning
#   sample     bench/test_sample_workload.py: the work CV-CUDA's sample was measured on
#   repeat     one end-to-end slice twice in a row (repeat-1.json, repeat-2.json): repeatability
#   compare:NAME  the recording that GPUs are compared on (NAME.json, NAME-inference.json; about 5 minutes on
#              an H100): the gate's slice of every kind of case, the pre- and post-processing chains and the copy
#              bandwidth at b32/520 from 1920x1080 in 3 fresh processes (python -m harness.repeats), then
#              inference alone per precision (fp32, tf32, fp16) for both models in one process
#
# Set HARNESS_GIT_COMMIT where the copy has no .git or a stale one (the fingerprint then names that commit).
set -uo pipefail
out=${1:?usage: record_gpu_run.sh OUTDIR PART...}
shift
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The gate's slice (tools/gate_check.sh) and the cases that explain a difference between GPUs.
COMPARE_SLICE="((test_stage_at or test_stage_on or test_blur) and cvcuda) or (test_decode and not 1920x1080-cpu) \
or (test_inference and default) or (test_end_to_end and cvcuda and not throughput) \
or (test_throughput and cvcuda and not from_files) \
or (test_sample_workload and b32-m520-sample-work and not nchw and not compiled) \
or test_preprocess_chain or test_postprocess_chain or test_copy_bandwidth"
bench() {  # name, seconds, pytest arguments...
    local name=$1 seconds=$2
    shift 2
    echo "== $name ($(date -u +%T), at most ${seconds}s)"
    echo "== $name: pytest $*" >> "$out/run.log"
    timeout "$seconds" python3 -m pytest -q -p no:cacheprovider -rs --durations=5 --benchmark-json "$out/$name.json" \
        "$@" >> "$out/run.log" 2>&1
    local rc=$?
    [ $rc -eq 124 ] && { echo "   stopped after ${seconds}s: $name.json was not written"; rm -f "$out/$name.json"; }
    tail -1 "$out/run.log"
}
for part in "$@"; do
    case $part in
        check) timeout 240 python3 -m pytest -q -p no:cacheprovider tests/test_ops.py -m gpu 2>&1 | tail -3 ;;
        stages) bench stages 470 bench/test_stages.py -k "not inference" ;;
        e2e:*)  # e2e:PRECISION[:ENGINE[:SOURCE]]
            IFS=: read -r _ precision engine source <<< "$part"
            args=(--bench-precisions "$precision")
            [ -n "$engine" ] && args+=(--bench-engines "$engine")
            [ -n "$source" ] && args+=(--bench-sources "$source")
            bench "e2e-$precision${engine:+-$engine}${source:+-$source}" 560 bench/test_end_to_end.py "${args[@]}" ;;
        inference) bench inference 240 bench/test_stages.py -k "inference and default" \
                       --bench-models deeplabv3_resnet101,fcn_resnet101 ;;
        inference-options) bench inference-options 240 bench/test_stages.py -k "inference and not default" \
                       --bench-models deeplabv3_resnet101,fcn_resnet101 --bench-batches 32 --bench-precisions fp16,tf32 ;;
        sample) bench sample 240 bench/test_sample_workload.py ;;
        repeat)
            for i in 1 2; do
                bench "repeat-$i" 100 bench/test_end_to_end.py -k "test_end_to_end and not uninstrumented" \
                    --bench-engines cvcuda --bench-batches 32 --bench-model-sizes 520 --bench-sources 1920x1080 \
                    --bench-precisions fp16
            done ;;
        compare:*)
            name=${part#compare:}
            echo "== $name ($(date -u +%T))"
            timeout "${COMPARE_BUDGET:-330}" bash tools/ci_bench.sh "$out" -n 3 --side "$name=." -- -q --bench-budget-s 0.3 \
                -k "$COMPARE_SLICE" >> "$out/run.log" 2>&1 || echo "   $name: exit $?"
            timeout "${INFERENCE_BUDGET:-150}" python3 -m harness.repeats -o "$out" -n 1 --side "$name-inference=." -- -q \
                --bench-budget-s 0.4 -k "test_inference and default" --bench-models deeplabv3_resnet101,fcn_resnet101 \
                --bench-batches 32 --bench-model-sizes 520 --bench-precisions fp32,tf32,fp16 >> "$out/run.log" 2>&1 \
                || echo "   $name-inference: exit $?"
            tail -1 "$out/run.log" ;;
        *) echo "unknown part $part"; exit 2 ;;
    esac
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active \
    --format=csv > "$out/gpu-after.csv" 2>&1
