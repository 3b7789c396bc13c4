"""What NVIDIA's data sheets promise for the GPUs the report knows: dense peak arithmetic throughput (for the
"fraction of peak" columns), HBM bandwidth and hardware JPEG decoders (for what a comparison of two GPUs should
find, harness.report.gpus).

TFLOPS are dense (no structured sparsity): "fp32" is IEEE float32 on the CUDA cores (what --precision fp32
runs: cuDNN's TF32 switched off), "tf32" and "fp16" are tensor cores.  Keys are matched against the GPU name
NVML reports; a GPU not listed, or a figure not given, gets no fraction and no prediction.
"""

from __future__ import annotations

SPECS = {
    # H100 SXM5: 3.35 TB/s HBM3, 7 NVJPG
    "H100 80GB HBM3": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "memory_tb_s": 3.35, "jpeg_decoders": 7},
    # H200 SXM: the H100's compute and JPEG decoders, 4.8 TB/s HBM3e
    "H200": {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "memory_tb_s": 4.8, "jpeg_decoders": 7},
    "H100 PCIe": {"fp32": 51.2, "tf32": 378.0, "fp16": 756.0, "memory_tb_s": 2.0, "jpeg_decoders": 7},
    "A100": {"fp32": 19.5, "tf32": 156.0, "fp16": 312.0},  # its 40 and 80 GB cards differ in bandwidth
    "L40S": {"fp32": 91.6, "tf32": 183.0, "fp16": 362.0, "memory_tb_s": 0.864},
}


def spec(gpu_name: str | None, figure: str) -> float | None:
    """One data-sheet figure of a GPU (a precision's TFLOPS, memory_tb_s or jpeg_decoders), None if unknown."""
    for key, figures in SPECS.items():
        if gpu_name and key in gpu_name:
            return figures.get(figure)
    return None


def peak_tflops(gpu_name: str | None, precision: str) -> float | None:
    return spec(gpu_name, precision)
