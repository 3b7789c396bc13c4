"""Environment fingerprint: what a benchmark number depends on, recorded next to it.

Library versions are read without importing the heavy GPU packages where a distribution lookup is
enough.  GPU state (clocks, temperature, power, throttle reasons) comes from NVML through nvidia-ml-py;
where there is no GPU or no NVML each field is None and `nvml_error` says why.  CPU numbers depend on the
thread pools and on what else the machine runs, so those are recorded too (cpu_state, load_average).
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

PACKAGES = {
    "torch": ("torch",), "torchvision": ("torchvision",),
    "cvcuda": ("cvcuda-cu13", "cvcuda-cu12", "cvcuda"),
    "nvimgcodec": ("nvidia-nvimgcodec-cu13", "nvidia-nvimgcodec-cu12", "nvidia-nvimgcodec"),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime"), "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu13"),
    "opencv": ("opencv-python-headless", "opencv-python"), "numpy": ("numpy",),
    "pytest-benchmark": ("pytest-benchmark",),
}


def package_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def git_state(root: Path | None = None) -> dict:
    """The checkout's commit and dirty flag; HARNESS_GIT_COMMIT, where set, names the commit instead (a GPU
    runner's copy may have no .git, or a stale one), and then the dirty flag is unknown (None)."""
    if os.environ.get("HARNESS_GIT_COMMIT"):
        return {"git_commit": os.environ["HARNESS_GIT_COMMIT"], "git_dirty": None}
    root = root or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        commit = None
    if commit is None or commit.returncode != 0:  # not a git checkout
        return {"git_commit": None, "git_dirty": None}
    return {"git_commit": commit.stdout.strip(), "git_dirty": bool(status.stdout.strip())}


def cpu_name() -> str | None:
    """The host CPU's model name with its family and model numbers, which tell two hosts apart where a
    virtual machine names every CPU "Intel(R) Xeon(R) Processor"; the architecture where /proc/cpuinfo is
    missing."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            fields = dict(line.split(":", 1) for line in cpuinfo.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return platform.processor() or None
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    name = fields.get("model name") or platform.processor() or None
    if name and fields.get("cpu family") and fields.get("model"):
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def fingerprint(device_index: int = 0) -> dict:
    """Software and hardware identity of this run (no GPU state: see gpu_state)."""
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpu": cpu_name(),
            "cpu_count": os.cpu_count()}
    info.update({name: package_version(names) for name, names in PACKAGES.items()})
    info["cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(device_index)
        info.update(gpu_name=props.name, gpu_compute_capability=f"{props.major}.{props.minor}",
                    gpu_memory_bytes=props.total_memory, gpu_multiprocessors=props.multi_processor_count,
                    gpu_l2_bytes=getattr(props, "L2_cache_size", None),
                    gpu_uuid=str(getattr(props, "uuid", "")) or None)
    else:
        info.update(gpu_name=None, gpu_compute_capability=None, gpu_memory_bytes=None, gpu_multiprocessors=None,
                    gpu_l2_bytes=None, gpu_uuid=None)
    info["driver"] = _driver()
    info.update(git_state())
    info.update(cpu_state())
    return info


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def cpu_state() -> dict:
    """The thread settings in force and the cores this process may use: a CPU case's time depends on them
    as much as on the code.  threadpools is threadpoolctl's view where it is installed, else None."""
    import cv2

    state = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
             "opencv_threads": cv2.getNumThreads()}
    state.update({name.lower(): os.environ.get(name) for name in THREAD_VARIABLES})
    state["cpu_usable"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        state["cpu_governor"] = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip()
    except OSError:
        state["cpu_governor"] = None
    try:
        from threadpoolctl import threadpool_info

        state["threadpools"] = threadpool_info()
    except ImportError:
        state["threadpools"] = None
    return state


def load_average() -> float | None:
    """The 1-minute load average, None where the system has none (Windows)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


_STATE_KEYS = ("sm_clock_mhz", "mem_clock_mhz", "max_sm_clock_mhz", "temperature_c", "power_w",
               "power_limit_w", "throttle_reasons", "nvml_error")


def gpu_state(device_index: int = 0, uuid: str | None = None) -> dict:
    """Clocks, temperature, power and active throttle reasons now, through NVML.  `uuid` (torch's, without
    NVML's "GPU-" prefix) names the GPU where CUDA_VISIBLE_DEVICES makes CUDA's index differ from NVML's."""
    state: dict = {key: None for key in _STATE_KEYS}
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = (pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}") if uuid
                      else pynvml.nvmlDeviceGetHandleByIndex(device_index))
            state.update(
                sm_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM),
                mem_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
                max_sm_clock_mhz=pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM),
                temperature_c=pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
                power_w=pynvml.nvmlDeviceGetPowerUsage(handle) / 1000,
                power_limit_w=pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000,
                throttle_reasons=throttle_names(_reasons_mask(pynvml, handle)),
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception as error:  # no NVML library, no GPU, or a driver that refuses a query
        state["nvml_error"] = f"{type(error).__name__}: {error}"
    return state


# Reasons that mean the clocks were pulled down by something other than idleness or the application.
BAD_THROTTLES = ("hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake", "sw_power_cap")


def bad_throttles(*states: dict | None) -> list[str]:
    """The BAD_THROTTLES among the reasons of NVML states (gpu_state's), sorted; [] for none or no GPU."""
    return sorted({r for s in states if s for r in (s.get("throttle_reasons") or []) if r in BAD_THROTTLES})


_REASONS = {  # our name: NVML's constant suffix (nvmlClocksEventReason* now, nvmlClocksThrottleReason* before)
    "gpu_idle": "GpuIdle", "applications_clocks": "ApplicationsClocksSetting", "sw_power_cap": "SwPowerCap",
    "hw_slowdown": "HwSlowdown", "sync_boost": "SyncBoost", "sw_thermal": "SwThermalSlowdown",
    "hw_thermal": "HwThermalSlowdown", "hw_power_brake": "HwPowerBrakeSlowdown",
}


def throttle_names(mask: int) -> list[str]:
    import pynvml

    out = []
    for name, suffix in _REASONS.items():
        bit = (getattr(pynvml, f"nvmlClocksEventReason{suffix}", None)
               or getattr(pynvml, f"nvmlClocksThrottleReason{suffix}", 0))  # the name before NVML 12
        if mask & bit:
            out.append(name)
    return out


def _reasons_mask(pynvml, handle) -> int:
    query = (getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
             or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    return query(handle)


def _driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None
