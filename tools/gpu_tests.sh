#!/usr/bin/env bash
# Runs the whole test suite (GPU tests included) and a GPU command-line run on the device machine.
# Usage there: source .dev/setup.sh && bash tools/gpu_tests.sh   (writes logs under $OUT)
set -uo pipefail
OUT=${OUT:-/tmp/harness-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import platform, torch, torchvision, cv2
print("python", platform.python_version(), "torch", torch.__version__, "torchvision", torchvision.__version__, "opencv", cv2.__version__)
print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0), "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
try:
    import cvcuda; print("cvcuda", cvcuda.__version__)
except Exception as e: print("cvcuda missing:", e)
try:
    from nvidia import nvimgcodec; print("nvimgcodec", nvimgcodec.__version__)
except Exception as e: print("nvimgcodec missing:", e)
PY
python3 -m pytest tests -v -rs -p no:cacheprovider --junitxml="$OUT/junit.xml" "$@" 2>&1 | tee "$OUT/pytest.log" | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|mask agreement" | tail -120
python3 -m harness -o "$OUT/overlays" -b 5 --weights synthetic -c bicycle 2>&1 | tail -4
