"""Published peak arithmetic throughput of GPUs the report knows, for "fraction of peak" columns.

Dense (no structured sparsity) tensor-core TFLOPS from NVIDIA's data sheets; "fp32" is IEEE float32 on
the CUDA cores (what --precision fp32 runs: cuDNN's TF32 switched off), "tf32" and "fp16" are tensor
cores.  Keys are matched against the GPU name NVML reports; a GPU not listed gets no fraction.
"""

from __future__ import annotations

PEAK_TFLOPS = {
    "H100 80GB HBM3": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4},  # H100 SXM5
    "H200": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4},  # H200 SXM: the H100's compute
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0},
    "A100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0},
    "L40S": {"fp32": 91.6, "tf32": 183.0, "fp16": 362.0},
}


def peak_tflops(gpu_name: str | None, precision: str) -> float | None:
    for key, peaks in PEAK_TFLOPS.items():
        if gpu_name and key in gpu_name:
            return peaks.get(precision)
    return None
