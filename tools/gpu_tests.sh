#!/usr/bin/env bash
# Runs the GPU tests, the fault tests and the command-line tests (which run on the GPU's default engines
# there), and a GPU command-line run, on the device machine.
# Usage there: source .dev/setup.sh && bash tools/gpu_tests.sh [PYTEST ARGS]   (writes logs under $OUT)
# Without arguments: every `gpu` test, then tests/test_faults.py and tests/test_cli.py whole.
set -uo pipefail
OUT=${OUT:-/tmp/harness-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import platform, torch, torchvision, cv2
print("python", platform.python_version(), "torch", torch.__version__, "torchvision", torchvision.__version__, "opencv", cv2.__version__)
print("gpu", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0), "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
for name in ("cvcuda", "nvidia.nvimgcodec", "simplejpeg"):
    try:
        module = __import__(name, fromlist=["_"]); print(name, module.__version__)
    except Exception as e: print(name, "missing:", e)
PY
if [ $# -gt 0 ]; then
  python3 -m pytest tests -v -rs -p no:cacheprovider --junitxml="$OUT/junit.xml" "$@" 2>&1 | tee "$OUT/pytest.log" | grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed" | tail -150
else
  python3 -m pytest tests -m gpu -v -rs -p no:cacheprovider --junitxml="$OUT/junit-gpu.xml" 2>&1 | tee "$OUT/pytest-gpu.log" | grep -E "FAILED|ERROR|passed|failed" | tail -60
  python3 -m pytest tests/test_faults.py tests/test_cli.py -m "not gpu" -v -rs -p no:cacheprovider --junitxml="$OUT/junit-faults.xml" 2>&1 | tee "$OUT/pytest-faults.log" | grep -E "FAILED|ERROR|passed|failed" | tail -60
fi
python3 -m harness -o "$OUT/overlays" -b 5 --weights synthetic -c bicycle 2>&1 | tail -4
